"""Hostile input: the call behaves exactly as without tracing, and the span stays bounded."""

from __future__ import annotations

import contextlib
import datetime
import json
from typing import Any

import ollama
import pytest

import mlflow_ollama
from mlflow_ollama import _mapping
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, only_trace, traces

MB = 1024 * 1024
SPAN_BOUND = 2 * MB  # the largest inputs below are 10 MB and 50 MB


def _recursive() -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": 0.1}
    options["self"] = options
    return options


def _nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


CASES: dict[str, dict[str, Any]] = {
    "object in options": {"options": {"seed": object()}},
    "datetime in options": {"options": {"when": datetime.datetime(2026, 1, 1)}},
    "recursive options": {"options": _recursive()},
    "NaN and inf in options": {"options": {"temperature": float("nan"), "top_p": float("inf")}},
    "10 MB message": {"messages": [{"role": "user", "content": "x" * (10 * MB)}]},
    "50 MB image": {
        "messages": [{"role": "user", "content": "look", "images": [b"\x89PNG\r\n\x1a\n" + bytes(50 * MB)]}]
    },
    "surrogates": {"messages": [{"role": "user", "content": "half a pair: \ud800 and \udfff"}]},
    "odd unicode": {
        "messages": [{"role": "user", "content": "e\u0301 \u202ertl\u202c \u200b zero-width \U0001f600 \x00 nul"}]
    },
    "object as message content": {"messages": [{"role": "user", "content": object()}]},
    "deeply nested options": {"options": {"a": _nested(100)}},
}


def _outcome(client: Any, kwargs: dict[str, Any]) -> Any:
    arguments = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kwargs}
    try:
        return ("result", client.chat(**arguments).message.content)
    except Exception as exc:
        return ("error", type(exc))


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_changes_nothing_and_the_span_stays_bounded(case: str, server: OllamaDouble) -> None:
    client = ollama.Client(host=server.url)
    untraced = _outcome(client, CASES[case])
    mlflow_ollama.autolog()  # strict mode is on: a failure of the plugin itself fails this test
    traced = _outcome(client, CASES[case])
    assert traced[0] == untraced[0]
    if traced[0] == "error":
        assert traced[1] is untraced[1]
    else:  # the toy model echoes its input: compare lengths, the text itself can be megabytes
        assert len(traced[1]) == len(untraced[1])
    trace = only_trace()
    exported = trace.to_json()
    assert len(exported) < SPAN_BOUND, f"{len(exported):,} bytes"
    json.loads(exported, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name} in the trace"))
    exported.encode("utf-8")  # no lone surrogates: the store and exporters need valid UTF-8


def test_a_long_message_is_cut_with_a_marker(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    ollama.Client(host=server.url).chat(model=MODEL, messages=[{"role": "user", "content": "y" * 300_000}])
    content = only_trace().data.spans[0].inputs["messages"][0]["content"]
    assert content.startswith("y" * 1000)
    assert content.endswith(f"...[{300_000 - _mapping.MAX_TEXT_CHARS:,} more characters]")


def test_nan_options_are_recorded_as_strings(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    # httpx refuses NaN in a JSON body (and says so); the span still records what was passed.
    with contextlib.suppress(ValueError):
        ollama.Client(host=server.url).chat(model=MODEL, messages=[], options={"temperature": float("nan")})
    assert traces()[0].data.spans[0].inputs["options"] == {"temperature": "nan"}
