"""A failure inside the plugin never changes the Ollama call: same result, same exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import mlflow
import ollama
import pytest
from mlflow.entities import LiveSpan

import mlflow_ollama
from mlflow_ollama import _mapping
from mlflow_ollama._safety import _reported
from support import MODEL, chat_spans, traces, user


class Boom(RuntimeError):
    pass


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise Boom("injected")


@pytest.fixture(autouse=True)
def _production_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """As users run it: no strict switch, even though pytest is running."""
    monkeypatch.delenv("MLFLOW_OLLAMA_STRICT")
    _reported.clear()
    mlflow_ollama.autolog()


FAULTS: dict[str, tuple[Any, str]] = {
    "span start": (mlflow, "start_span_no_context"),
    "request mapping": (_mapping, "request_inputs"),
    "response mapping": (_mapping, "response_outputs"),
    "chat view": (_mapping, "chat_messages"),
    "set outputs": (LiveSpan, "set_outputs"),
    "span end": (LiveSpan, "end"),
}


def _calls(client: Any, server: Any) -> dict[str, Callable[[], Any]]:
    # A fresh AsyncClient per call: its connection pool belongs to the event loop that used it.
    return {
        "sync": lambda: client.chat(model=MODEL, messages=user("x")),
        "module": lambda: ollama.chat(model=MODEL, messages=user("x")),
        "async": lambda: asyncio.run(ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user("x"))),
    }


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("path", ["sync", "module", "async"])
def test_a_fault_leaves_the_result_intact_and_warns_once(
    fault: str,
    path: str,
    client: Any,
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    untraced = _calls(client, server)[path]()
    owner, name = FAULTS[fault]
    monkeypatch.setattr(owner, name, _boom)
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        results = [_calls(client, server)[path]() for _ in range(3)]
    for result in results:
        assert isinstance(result, ollama.ChatResponse)
        assert result.message == untraced.message
    warnings = [r for r in caplog.records if r.name == "mlflow_ollama"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "your Ollama call is unaffected" in warnings[0].getMessage()
    monkeypatch.undo()
    assert mlflow.get_current_active_span() is None


@pytest.mark.parametrize("fault", ["response mapping", "chat view"])
def test_a_mapping_fault_still_ends_and_exports_the_span(
    fault: str, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(*FAULTS[fault], _boom)
    client.chat(model=MODEL, messages=user("x"))
    monkeypatch.undo()
    [trace] = traces()
    [span] = chat_spans(trace)
    assert span.end_time_ns is not None


def test_a_fault_while_recording_an_error_still_raises_the_sdks_exception(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LiveSpan, "record_exception", _boom)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="missing-model", messages=user("x"))
    assert caught.value.status_code == 404
    monkeypatch.undo()
    [span] = chat_spans(traces()[0])
    assert span.status.status_code == "ERROR"


def test_the_strict_switch_makes_faults_raise(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_OLLAMA_STRICT", "true")
    monkeypatch.setattr(_mapping, "request_inputs", _boom)
    with pytest.raises(Boom):
        client.chat(model=MODEL, messages=user("x"))


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "x", "images": b"\x89PNG not a list"}],
        [{"role": "user", "content": {"not": "a string"}}],
        [{"role": "assistant", "content": "", "tool_calls": [{"function": "not a dict"}]}],
        [{"role": 3, "content": "odd role"}],
    ],
)
def test_odd_inputs_never_break_the_call(messages: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the SDK makes of odd input, tracing changes nothing: same answer or same error."""
    monkeypatch.setenv("MLFLOW_OLLAMA_STRICT", "true")  # and the plugin itself must not fail
    mlflow_ollama.revert()
    try:
        expected: Any = client.chat(model=MODEL, messages=messages).message
    except Exception as exc:
        expected = type(exc)
    mlflow_ollama.autolog()
    try:
        got: Any = client.chat(model=MODEL, messages=messages).message
    except Exception as exc:
        got = type(exc)
    assert got == expected
    assert len(traces()) == 1
