"""OTLP: with ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set, MLflow exports our spans to any OpenTelemetry
backend. Here the backend is a loopback OTLP/HTTP receiver, and the app a separate process."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble

from .parts import OtlpReceiver, run_app

SCENARIOS = ["chat", "chat_stream", "tool_loop", "generate", "embed"]


@pytest.fixture(scope="module")
def exported(server: OllamaDouble) -> tuple[OtlpReceiver, dict[str, Any]]:
    """Spans the receiver got from the app, and the same app's traces in a local sqlite store."""
    local_uri = f"sqlite:///{Path(tempfile.mkdtemp(prefix='mlflow-ollama-otlp-')) / 'mlflow.db'}"
    with OtlpReceiver() as receiver:
        env = {
            "MLFLOW_TRACKING_URI": local_uri,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        }
        run_app(server, env, SCENARIOS, expect_trace_ids=False)  # the exporter flushes when the app exits
    baseline = run_app(server, {"MLFLOW_TRACKING_URI": local_uri}, SCENARIOS)
    client = MlflowClient(tracking_uri=local_uri)
    return receiver, {name: client.get_trace(tid) for name, tid in baseline.trace_ids.items()}


def test_otlp_receives_every_span(exported: tuple[OtlpReceiver, dict[str, Any]]) -> None:
    receiver, local = exported
    names = sorted(span.name for span in receiver.spans)
    expected = sorted(span.name for trace in local.values() for span in trace.data.spans)
    assert names == expected


def test_otlp_spans_carry_the_chat_attributes(exported: tuple[OtlpReceiver, dict[str, Any]]) -> None:
    receiver, _ = exported
    chats = [receiver.attributes(s) for s in receiver.spans if s.name == "ollama.chat"]
    assert len(chats) == 4  # chat, chat_stream, and the two calls of the tool loop
    for attributes in chats:
        assert json.loads(attributes["mlflow.spanType"]) == "CHAT_MODEL"
        messages = json.loads(attributes["mlflow.chat.messages"])
        assert messages[-1]["role"] == "assistant"
        usage = json.loads(attributes["mlflow.chat.tokenUsage"])
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    with_tools = [a for a in chats if "mlflow.chat.tools" in a]
    assert len(with_tools) == 2
    assert json.loads(with_tools[0]["mlflow.chat.tools"])[0]["function"]["name"] == "get_weather"
    streamed = [a for a in chats if "ollama.stream.chunks" in a]
    assert len(streamed) == 1
    assert json.loads(streamed[0]["ollama.stream.end"]) == "complete"


def test_otlp_attributes_equal_the_stored_ones(exported: tuple[OtlpReceiver, dict[str, Any]]) -> None:
    """Apart from ids and timings, every attribute that reaches an OTLP backend is what the MLflow store keeps."""
    receiver, local = exported
    volatile = {"mlflow.traceRequestId", "ollama.time_to_first_token_ns"}

    def comparable(name: str, attributes: dict[str, Any]) -> str:
        return json.dumps([name, sorted((k, v) for k, v in attributes.items() if k not in volatile)], sort_keys=True)

    got = sorted(
        comparable(s.name, {k: json.loads(v) for k, v in receiver.attributes(s).items() if isinstance(v, str)})
        for s in receiver.spans
    )
    stored = sorted(comparable(s.name, s.attributes) for t in local.values() for s in t.data.spans)
    assert got == stored


@pytest.fixture(scope="module")
def semconv(server: OllamaDouble) -> OtlpReceiver:
    """Spans the receiver got from the app with MLflow's GenAI semantic-convention export on."""
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "MLFLOW_ENABLE_OTEL_GENAI_SEMCONV": "true",
        }
        run_app(server, env, ["chat", "chat_stream", "tool_loop", "generate"], expect_trace_ids=False)
    return receiver


def _genai(receiver: OtlpReceiver, operation: str) -> list[dict[str, Any]]:
    spans = [receiver.attributes(s) for s in receiver.spans]
    return [a for a in spans if a.get("gen_ai.operation.name") == operation]


def test_genai_semconv_spans_carry_the_reply_and_the_finish_reason(semconv: OtlpReceiver) -> None:
    pytest.importorskip("mlflow.tracing.export.genai_semconv.translator")  # MLflow 3.15+
    chats = _genai(semconv, "chat")
    assert len(chats) == 4  # chat, chat_stream, the tool loop's two calls
    assert {s.name for s in semconv.spans if s.name.startswith("chat ")} == {"chat llama3.2"}
    replies = []
    for attributes in chats:
        assert attributes["gen_ai.provider.name"] == "ollama"
        assert attributes["gen_ai.request.model"] == "llama3.2"
        assert attributes["gen_ai.usage.input_tokens"] > 0
        [reply] = json.loads(attributes["gen_ai.output.messages"])
        assert reply["role"] == "assistant"
        assert attributes["gen_ai.response.finish_reasons"] == [reply["finish_reason"]]
        assert json.loads(attributes["gen_ai.input.messages"])[0]["role"] == "user"
        replies.append(reply)
    texts = sorted(p["content"] for r in replies for p in r["parts"] if p["type"] == "text")
    assert "You said: Why is the sky blue?" in texts
    assert any(t.startswith("According to get_weather: 22") for t in texts)
    [asked] = [r for r in replies if r["finish_reason"] == "tool_call"]
    [call] = asked["parts"]
    assert call["type"] == "tool_call"
    assert call["name"] == "get_weather"
    assert call["arguments"] == {"city": "Tokyo"}
    [system] = {a["gen_ai.system_instructions"] for a in chats if "gen_ai.system_instructions" in a}
    assert json.loads(system) == [{"type": "text", "content": "Answer in one line."}]
    [generate] = _genai(semconv, "generate_content")
    assert json.loads(generate["gen_ai.output.messages"])[0]["parts"][0]["content"].startswith("You said:")
