"""The per-call shortcuts record exactly what the plain paths would (issue 7). No timing here."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from typing import Any

import mlflow
import pytest

import mlflow_ollama
from mlflow_ollama import _config, _spans
from mlflow_ollama import _mapping as m
from support import MODEL, chat_spans, only_trace, user


def _otel_attributes(span: Any) -> dict[str, Any]:
    return dict(span._span.attributes)


def test_attributes_set_in_one_pass_are_the_text_mlflow_writes() -> None:
    values: dict[str, Any] = {
        "mlflow.chat.messages": [{"role": "user", "content": "héllo ✓ 日本"}, {"role": "assistant", "content": None}],
        "mlflow.llm.cost": {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0},
        "ollama.output_tokens_per_second": 12.5,
        "ollama.total_duration_ns": 10**12,
        "ollama.done_reason": "stop",
        "flag": True,
        "odd": datetime.date(2026, 1, 1),  # not JSON-ready: goes through MLflow's own encoder
    }
    fast = mlflow.start_span_no_context(name="fast")
    plain = mlflow.start_span_no_context(name="plain")
    try:
        _spans._set_attributes(fast, values)
        plain.set_attributes(values)
        fast_attributes, plain_attributes = _otel_attributes(fast), _otel_attributes(plain)
    finally:
        fast.end()
        plain.end()
    for key in values:
        assert fast_attributes[key] == plain_attributes[key], key


ODD_VALUES: list[Any] = [
    "plain",
    'héllo ✓ 日本 \n\t"quoted"',
    "",
    0,
    -3,
    10**30,
    2.5,
    True,
    None,
    [],
    {},
    [1, "two", [3.0, {"four": None}], {"é": ["x"]}],
    {"nested": {"deeper": {"deepest": [True, False, None]}}},
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_the_encoder_made_once_writes_what_json_dumps_writes(value: Any) -> None:
    import json

    assert _spans._encode(value) == json.dumps(value, ensure_ascii=False)


def test_inputs_reusing_the_tools_text_are_the_text_of_the_whole() -> None:
    import json

    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    inputs = {"model": MODEL, "messages": [{"role": "user", "content": "hé"}], "tools": tools, "options": {"seed": 1}}
    known = {id(tools): _spans._encode(tools)}
    assert _spans._encode_fields(inputs, known) == json.dumps(inputs, ensure_ascii=False)
    assert _spans._encode_fields({}, known) == "{}"


@pytest.mark.parametrize(
    "value",
    [
        {"role": "user", "content": "x" * (m.MAX_TEXT_CHARS + 5)},  # cut
        {"role": "user", "content": "lone \ud800 surrogate"},  # replaced
        {1: "int key", None: "none key", "k": float("nan")},  # keys as text, NaN as a string
        {"deep": [[[[{"a": [1]}]]]]},
        {"tuple": (1, 2), "bytes": b"abc", "set": {1}},
    ],
)
def test_the_plain_dict_fast_path_records_what_the_general_walk_records(value: Any) -> None:
    slow = {m._text(str(k)): m._dump(v, 1) for k, v in value.items()}  # the general walk, one item at a time
    assert m._dump(value) == slow


def test_a_function_tools_schema_is_read_once_and_still_exact() -> None:
    def lookup(city: str) -> str:
        """Look a city up.

        Args:
          city: The city
        """
        return city

    first = m.tool_definitions([lookup])
    again = m.tool_definitions([lookup])
    assert first == again
    assert first[0] is again[0]  # cached
    import ollama._utils

    assert first == [m._dump(ollama._utils.convert_function_to_tool(lookup))]


def test_attributes_on_a_span_that_is_not_mlflows_live_span_go_through_its_own_method() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.got: dict[str, Any] = {}

        def set_attributes(self, attributes: dict[str, Any]) -> None:
            self.got.update(attributes)

    recorder = Recorder()
    _spans._set_attributes(recorder, {"a": 1})
    assert recorder.got == {"a": 1}


@pytest.mark.parametrize(("raw", "expected"), [("Off", False), (" NO ", False), ("1", True), ("yes", True)])
def test_env_switch_read_from_the_raw_environment(raw: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config.settings, "active", True)
    monkeypatch.setenv(_config.AUTOLOG_ENV, raw)
    assert _config.tracing_enabled() is expected
    monkeypatch.delenv(_config.AUTOLOG_ENV)
    assert _config.tracing_enabled() is True


def test_env_switch_works_when_os_environ_is_a_plain_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config.settings, "active", True)
    monkeypatch.setattr(os, "environ", {_config.AUTOLOG_ENV: "false"})
    assert _config.tracing_enabled() is False


def test_dump_walks_a_shared_object_each_time_and_still_catches_cycles() -> None:
    shared = {"k": "v"}
    assert m._dump({"a": shared, "b": [shared, shared]}) == {"a": {"k": "v"}, "b": [{"k": "v"}, {"k": "v"}]}
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    assert m._dump(loop) == {"name": "loop", "self": "<recursive reference>"}


def test_inputs_and_outputs_written_directly_are_the_text_mlflow_writes() -> None:
    inputs = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "héllo ✓"}, {"role": "assistant", "content": "", "tool_calls": []}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "options": {"temperature": 0.2, "seed": 7},
    }
    outputs = {"message": {"role": "assistant", "content": "ok"}, "done": True, "eval_count": 3}
    fast = mlflow.start_span_no_context(name="fast")
    plain = mlflow.start_span_no_context(name="plain")
    try:
        _spans._set_attributes(fast, {_spans._INPUTS: inputs, _spans._OUTPUTS: outputs})
        plain.set_inputs(inputs)
        plain.set_outputs(outputs)
        fast_attributes, plain_attributes = _otel_attributes(fast), _otel_attributes(plain)
        assert (fast.inputs, fast.outputs) == (plain.inputs, plain.outputs) == (inputs, outputs)
    finally:
        fast.end()
        plain.end()
    for key in (_spans._INPUTS, _spans._OUTPUTS):
        assert fast_attributes[key] == plain_attributes[key], key


def test_a_data_uri_in_message_text_is_recorded_as_the_text_ollama_got(client: Any) -> None:
    # MLflow's set_inputs() would, in recent releases, turn this text into an attachment reference;
    # Ollama takes images only through ``images``, so for it this is text, and is recorded as such.
    text = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    mlflow_ollama.autolog()
    client.chat(model=MODEL, messages=user(text))
    [span] = chat_spans(only_trace())
    assert span.inputs["messages"] == user(text)
    assert span.get_attribute("mlflow.chat.messages")[0]["content"] == text


def test_env_switches_work_when_the_environment_was_empty_at_import() -> None:
    # An empty os.environ at import (env -i, subprocess env={}) must still be the mapping read.
    code = (
        "import os; os.environ.clear(); from mlflow_ollama import _config as c; c.settings.active = True; "
        "os.environ[c.AUTOLOG_ENV] = 'false'; os.environ[c.LOG_CONTENT_ENV] = 'false'; "
        "print(c.tracing_enabled(), c.content_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
