"""System One (``systemone``, ollama 0.6.3+): a local model scores questions about a state; one LLM span per call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import mlflow
import ollama
import pytest
from mlflow.entities import SpanType

import mlflow_ollama
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, base_name, only_trace

pytestmark = pytest.mark.skipif(not hasattr(ollama.Client, "systemone"), reason="systemone arrived in ollama 0.6.3")

CANARY = "canary-7f3a"
STATE = f"The ticket says: my invoice is wrong ({CANARY})."
QUESTIONS: dict[str, Any] = {
    "team": {"type": "choice", "instructions": "Which team?", "criteria": {"billing": None, "support": "the rest"}},
    "urgency": {"type": "score", "instructions": "How urgent?", "criteria": ["low", "medium", f"high {CANARY}"]},
    "angry": {"type": "noul", "instructions": "Is the customer angry?"},
}


def _call(mode: str, server: OllamaDouble) -> Any:
    if mode == "sync":
        return ollama.Client(host=server.url).systemone(MODEL, state=STATE, questions=QUESTIONS, keep_alive="5m")
    if mode == "module":
        return ollama.systemone(MODEL, state=STATE, questions=QUESTIONS, keep_alive="5m")
    client = ollama.AsyncClient(host=server.url)
    return asyncio.run(client.systemone(MODEL, state=STATE, questions=QUESTIONS, keep_alive="5m"))


def _span() -> Any:
    [span] = [s for s in only_trace().data.spans if base_name(s) == "ollama.systemone"]
    return span


@pytest.mark.parametrize("mode", ["sync", "async", "module"])
def test_a_systemone_call_is_an_llm_span(mode: str, server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    response = _call(mode, server)
    span = _span()
    assert span.span_type == SpanType.LLM
    assert span.inputs["model"] == MODEL
    assert span.inputs["state"] == STATE
    assert span.inputs["questions"]["team"]["criteria"] == {"billing": None, "support": "the rest"}
    assert span.outputs["answers"]["team"]["choice"] == response.answers["team"].choice == "billing"
    assert span.outputs["answers"]["urgency"]["score"] == 1.0
    usage = {"input_tokens": response.usage.input_tokens, "output_tokens": 3}
    assert span.attributes["mlflow.chat.tokenUsage"] == {**usage, "total_tokens": usage["input_tokens"] + 3}
    assert span.attributes["mlflow.llm.model"] == MODEL


def test_with_content_off_no_state_question_or_legend_is_recorded(server: OllamaDouble) -> None:
    mlflow_ollama.autolog(log_content=False)
    _call("sync", server)
    trace = only_trace()
    span = _span()
    assert CANARY not in json.dumps(trace.to_dict())
    assert span.outputs["answers"]["urgency"]["probabilities"] == {"0": 0.0, "1": 1.0, "2": 0.0}  # numbers stay
    assert "mlflow.chat.tokenUsage" in span.attributes


def test_a_failed_systemone_call_is_an_error_span(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    with pytest.raises(ollama.ResponseError):
        ollama.Client(host=server.url).systemone("missing-model", state=STATE, questions=QUESTIONS)
    assert _span().status.status_code == "ERROR"


def test_revert_leaves_systemone_untraced(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    mlflow_ollama.revert()
    ollama.Client(host=server.url).systemone(MODEL, state=STATE, questions=QUESTIONS)
    mlflow.flush_trace_async_logging()
    experiment = mlflow.tracking.fluent._get_experiment_id()
    assert mlflow.search_traces(experiment_ids=[experiment], return_type="list") == []
