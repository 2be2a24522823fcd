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
from mlflow.tracing.export.mlflow_v3 import MlflowV3SpanExporter
from mlflow.tracing.trace_manager import InMemoryTraceManager

import mlflow_ollama
from mlflow_ollama import _mapping, _spans
from mlflow_ollama._safety import _reported
from support import MODEL, chat_spans, traces, user


class Boom(RuntimeError):
    pass


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise Boom("injected")


def _open_traces() -> set[str]:
    return set(InMemoryTraceManager.get_instance()._traces.keys())  # type: ignore[no-untyped-call]


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
    # Inputs, outputs and attributes are written as JSON text onto the OpenTelemetry span (issue 7).
    # (Not a fault in the OpenTelemetry span's set_attributes: MLflow 3.0's span start calls it too.)
    "encode": (_spans, "_encode"),
    "write to the span": (_spans, "_set_attributes"),
    "set attributes": (LiveSpan, "set_attributes"),
    "export": (MlflowV3SpanExporter, "export"),
    "span end": (LiveSpan, "end"),
}


# These never reach our guard: OpenTelemetry catches and logs exporter failures, and
# start_span_no_context, which sets attributes of its own, logs the failure and returns a no-op
# span. Both leave the trace in MLflow's in-memory trace manager, out of our reach; that cache is
# bounded (1,000 traces, an hour by default).
SWALLOWED_BY_MLFLOW = {"export", "set attributes"}


def _calls(client: Any, server: Any) -> dict[str, Callable[[], Any]]:
    """Each path, returning what its caller sees: the message, or every streamed chunk's."""

    async def async_stream() -> list[Any]:
        stream = await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user("x y z"), stream=True)
        return [part.message async for part in stream]

    # A fresh AsyncClient per call: its connection pool belongs to the event loop that used it.
    return {
        "sync": lambda: client.chat(model=MODEL, messages=user("x")).message,
        "module": lambda: ollama.chat(model=MODEL, messages=user("x")).message,
        "async": lambda: asyncio.run(ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user("x"))).message,
        "stream": lambda: [p.message for p in client.chat(model=MODEL, messages=user("x y z"), stream=True)],
        "async-stream": lambda: asyncio.run(async_stream()),
    }


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("path", ["sync", "module", "async", "stream", "async-stream"])
def test_a_fault_leaves_the_result_intact_and_warns_once(
    fault: str,
    path: str,
    client: Any,
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    untraced = _calls(client, server)[path]()
    before = _open_traces()
    owner, name = FAULTS[fault]
    monkeypatch.setattr(owner, name, _boom)
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        results = [_calls(client, server)[path]() for _ in range(3)]
    for result in results:
        assert result == untraced
    warnings = [r for r in caplog.records if r.name == "mlflow_ollama"]
    if fault in SWALLOWED_BY_MLFLOW:
        assert warnings == []
    else:
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "your Ollama call is unaffected" in warnings[0].getMessage()
    monkeypatch.undo()
    assert mlflow.get_current_active_span() is None
    if fault not in SWALLOWED_BY_MLFLOW:
        assert _open_traces() == before, "a fault left a trace open in MLflow's trace manager"


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


def test_a_stream_that_is_not_a_generator_still_reaches_the_caller(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test double of the user's may make ``_request`` return a list: tracing must cope."""
    mlflow_ollama.revert()
    chunks = [ollama.ChatResponse(model=MODEL, message=ollama.Message(role="assistant", content="a"), done=True)]
    monkeypatch.setattr(ollama.Client, "_request", lambda self, *a, **k: list(chunks))
    mlflow_ollama.autolog()
    assert list(client.chat(model=MODEL, messages=user("x"), stream=True)) == chunks
    monkeypatch.undo()
    [span] = chat_spans(traces()[0])
    assert span.attributes["ollama.stream.end"] == "complete"


def test_a_fault_after_the_span_opened_still_ends_it(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow_ollama import _spans

    before = _open_traces()
    monkeypatch.setattr(_spans, "_with_references", _boom)
    image = b"\x89PNG\r\n\x1a\n" + bytes(32)
    response = client.chat(model=MODEL, messages=[{"role": "user", "content": "x", "images": [image]}])
    assert response.message.content == "You said: x"
    assert _open_traces() == before
