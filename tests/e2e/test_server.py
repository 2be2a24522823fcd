"""A real ``mlflow server``: traces made by a separate app process are read back through its REST API.

"Intact" is checked two ways: the same app, run once against the server and once against a local
sqlite store, must yield the same spans (names, types, nesting, inputs, outputs and every
attribute but the timings); and the attributes the MLflow UI needs are asserted directly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble
from support import trace_token_usage

from .parts import MlflowServer, need, run_app

SCENARIOS = ["chat", "chat_async", "chat_stream", "chat_stream_async", "tool_loop", "generate", "embed"]
# Measured per run, so they differ between two runs of the same app.
_VOLATILE = {"mlflow.traceRequestId", "ollama.time_to_first_token_ns"}


def shape(trace: Any) -> list[dict[str, Any]]:
    """A trace's spans without ids and timings, in start order: what must survive the round trip."""
    spans = sorted(trace.data.spans, key=lambda s: s.start_time_ns)
    names = {s.span_id: s.name for s in spans}
    return [
        {
            "name": s.name,
            "type": s.span_type,
            "parent": names.get(s.parent_id),
            "status": str(s.status.status_code),
            "inputs": s.inputs,
            "outputs": s.outputs,
            "attributes": {k: v for k, v in s.attributes.items() if k not in _VOLATILE},
        }
        for s in spans
    ]


@pytest.fixture(scope="module")
def both_stores(mlflow_server: MlflowServer, server: OllamaDouble) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same app run against the server and against a local sqlite store; traces of each."""
    experiment = mlflow_server.new_experiment()
    remote = run_app(server, {"MLFLOW_TRACKING_URI": mlflow_server.url, "APP_EXPERIMENT_ID": experiment})
    local_uri = f"sqlite:///{Path(tempfile.mkdtemp(prefix='mlflow-ollama-local-')) / 'mlflow.db'}"
    local = run_app(server, {"MLFLOW_TRACKING_URI": local_uri})
    remote_client, local_client = mlflow_server.client, MlflowClient(tracking_uri=local_uri)
    return (
        {name: remote_client.get_trace(tid) for name, tid in remote.trace_ids.items()},
        {name: local_client.get_trace(tid) for name, tid in local.trace_ids.items()},
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_server_round_trip_keeps_every_span_and_attribute(
    both_stores: tuple[dict[str, Any], dict[str, Any]], scenario: str
) -> None:
    remote, local = both_stores
    assert shape(remote[scenario]) == shape(local[scenario])
    assert remote[scenario].info.state.name == "OK"


def _only(trace: Any, name: str) -> Any:
    found = [s for s in trace.data.spans if s.name == name]
    assert len(found) == 1, [s.name for s in trace.data.spans]
    return found[0]


def test_server_chat_span_has_what_the_ui_needs(both_stores: tuple[dict[str, Any], dict[str, Any]]) -> None:
    remote, _ = both_stores
    span = _only(remote["chat"], "ollama.chat")
    assert span.span_type == "CHAT_MODEL"
    messages = span.attributes["mlflow.chat.messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == "You said: Why is the sky blue?"
    usage = span.attributes["mlflow.chat.tokenUsage"]
    # The double counts one prompt token per word: 4 in the system message, 5 in the user's.
    assert usage["input_tokens"] == 9
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert span.inputs["options"] == {"temperature": 0.2, "seed": 7}
    assert trace_token_usage(remote["chat"]) == usage


def test_server_tool_loop_keeps_tree_tools_and_tool_calls(both_stores: tuple[dict[str, Any], dict[str, Any]]) -> None:
    remote, _ = both_stores
    trace = remote["tool_loop"]
    by_start = sorted(trace.data.spans, key=lambda s: s.start_time_ns)
    assert [(s.name, s.span_type) for s in by_start] == [
        ("tool_loop", "CHAIN"),
        ("ollama.chat", "CHAT_MODEL"),
        ("weather_tool", "TOOL"),
        ("ollama.chat", "CHAT_MODEL"),
    ]
    first, second = by_start[1], by_start[3]
    assert [t["function"]["name"] for t in first.attributes["mlflow.chat.tools"]] == ["get_weather"]
    (call,) = first.attributes["mlflow.chat.messages"][-1]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert '"Tokyo"' in call["function"]["arguments"]
    roles = [m["role"] for m in second.attributes["mlflow.chat.messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    tool_message = second.attributes["mlflow.chat.messages"][2]
    assert tool_message["tool_call_id"] == call["id"]


@pytest.mark.parametrize("scenario", ["chat_stream", "chat_stream_async"])
def test_server_streamed_spans_keep_stream_attributes(
    both_stores: tuple[dict[str, Any], dict[str, Any]], scenario: str
) -> None:
    remote, _ = both_stores
    span = _only(remote[scenario], "ollama.chat")
    assert span.attributes["ollama.stream.end"] == "complete"
    assert span.attributes["ollama.stream.chunks"] >= 3
    assert span.attributes["ollama.time_to_first_token_ns"] > 0
    assert span.attributes["mlflow.chat.messages"][-1]["role"] == "assistant"


def test_tracing_only_install_sends_traces_to_the_server(mlflow_server: MlflowServer, server: OllamaDouble) -> None:
    """The lightweight install (``mlflow-tracing``, no full ``mlflow``) traces into a server."""
    python = os.environ.get("MLFLOW_OLLAMA_TRACING_ONLY_PYTHON", "")
    need(bool(python), "no tracing-only interpreter (MLFLOW_OLLAMA_TRACING_ONLY_PYTHON); `nox -s e2e` makes one")
    experiment = mlflow_server.new_experiment()
    run = run_app(
        server,
        {"MLFLOW_TRACKING_URI": mlflow_server.url, "APP_EXPERIMENT_ID": experiment},
        ["chat", "chat_stream", "tool_loop"],
        python=python,
    )
    for scenario, trace_id in run.trace_ids.items():
        trace = mlflow_server.client.get_trace(trace_id)
        assert trace.info.state.name == "OK", scenario
        assert any(s.name == "ollama.chat" and "mlflow.chat.messages" in s.attributes for s in trace.data.spans)
