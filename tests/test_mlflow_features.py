"""MLflow's own trace features work on Ollama traces: sessions, switches, feedback, evaluation."""

from __future__ import annotations

import uuid
from typing import Any

import mlflow
import pytest

import mlflow_ollama
from support import MODEL, base_name, chat_spans, only_trace, traces, user

SESSION = "mlflow.trace.session"
USER = "mlflow.trace.user"


def _has_tracing_context() -> bool:
    import mlflow.tracing

    return hasattr(mlflow.tracing, "context")


@pytest.mark.skipif(not _has_tracing_context(), reason="mlflow.tracing.context() arrived in MLflow 3.12")
def test_tracing_context_groups_a_multi_turn_chat_into_one_session(client: Any) -> None:
    mlflow_ollama.autolog()
    session = f"session-{uuid.uuid4().hex[:8]}"
    history = user("Hi, I'm planning a trip.")
    with mlflow.tracing.context(session_id=session, user="ana", metadata={"app": "travel"}, tags={"team": "bots"}):
        for follow_up in ("Where to in May?", "And in June?"):
            reply = client.chat(model=MODEL, messages=history)
            history = [*history, reply.message.model_dump(exclude_none=True), *user(follow_up)]
        client.chat(model=MODEL, messages=history)
    client.chat(model=MODEL, messages=user("outside the session"))
    found = traces()
    assert len(found) == 4
    in_session = [t for t in found if t.info.trace_metadata.get(SESSION) == session]
    assert len(in_session) == 3
    for trace in in_session:
        assert trace.info.trace_metadata[USER] == "ana"
        assert trace.info.trace_metadata["app"] == "travel"
        assert trace.info.tags["team"] == "bots"
        assert [base_name(s) for s in trace.data.spans] == ["ollama.chat"]
    assert SESSION not in found[-1].info.trace_metadata
    # Searchable the way the UI's session view finds them.
    hits = mlflow.search_traces(filter_string=f"metadata.`{SESSION}` = '{session}'", return_type="list")
    assert len(hits) == 3


@pytest.mark.skipif(not _has_tracing_context(), reason="mlflow.tracing.context() arrived in MLflow 3.12")
def test_tracing_context_enabled_false_leaves_calls_untraced(client: Any) -> None:
    mlflow_ollama.autolog()
    with mlflow.tracing.context(enabled=False):
        reply = client.chat(model=MODEL, messages=user("quiet"))
    assert reply.message.content == "You said: quiet"
    assert traces() == []
    client.chat(model=MODEL, messages=user("loud"))
    assert len(traces()) == 1


def test_session_on_any_supported_mlflow_through_a_parent_span(client: Any) -> None:
    """Before MLflow 3.12: a span of the user's own around the turn, and update_current_trace()."""
    mlflow_ollama.autolog()
    for turn in ("first", "second"):
        with mlflow.start_span(name="turn"):
            mlflow.update_current_trace(metadata={SESSION: "s-1", USER: "ana"})
            client.chat(model=MODEL, messages=user(turn))
    found = traces()
    assert [t.info.trace_metadata.get(SESSION) for t in found] == ["s-1", "s-1"]
    assert [t.info.trace_metadata.get(USER) for t in found] == ["ana", "ana"]
    assert all(len(chat_spans(t)) == 1 for t in found)


def test_mlflow_tracing_disable_and_enable(client: Any) -> None:
    mlflow_ollama.autolog()
    mlflow.tracing.disable()
    try:
        reply = client.chat(model=MODEL, messages=user("while disabled"))
        streamed = [c.message.content for c in client.chat(model=MODEL, messages=user("a b"), stream=True)]
    finally:
        mlflow.tracing.enable()
    assert reply.message.content == "You said: while disabled"
    assert "".join(streamed) == "You said: a b"
    assert traces() == []
    client.chat(model=MODEL, messages=user("enabled again"))
    assert len(chat_spans(only_trace())) == 1


def test_last_active_trace_id_names_the_ollama_call_and_takes_feedback(client: Any) -> None:
    from mlflow.entities import AssessmentSource

    mlflow_ollama.autolog()
    client.chat(model=MODEL, messages=user("rate me"))
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    assert trace_id == only_trace().info.trace_id
    list(client.chat(model=MODEL, messages=user("streamed"), stream=True))
    streamed_id = mlflow.get_last_active_trace_id()
    assert streamed_id is not None
    assert streamed_id != trace_id
    mlflow.log_feedback(
        trace_id=trace_id,
        name="helpful",
        value=True,
        rationale="answered",
        source=AssessmentSource(source_type="HUMAN", source_id="ana"),
    )
    stored = mlflow.get_trace(trace_id)
    assert stored is not None
    [feedback] = [a for a in stored.info.assessments if a.name == "helpful"]
    assert feedback.value is True
    assert feedback.rationale == "answered"


def test_genai_evaluate_with_ollama_calls_inside_predict_fn(client: Any) -> None:
    pytest.importorskip("pandas")  # mlflow.genai.evaluate needs full mlflow
    from mlflow.genai.scorers import scorer

    mlflow_ollama.autolog()

    def predict_fn(question: str) -> str:
        return str(client.chat(model=MODEL, messages=user(question)).message.content)

    @scorer
    def echoes(inputs: dict[str, Any], outputs: str) -> bool:
        return outputs == f"You said: {inputs['question']}"

    @scorer
    def one_ollama_span(trace: Any) -> bool:
        return [base_name(s) for s in trace.data.spans if s.name.startswith("ollama.")] == ["ollama.chat"]

    data = [{"inputs": {"question": q}} for q in ("What is MLflow?", "What is Ollama?")]
    result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[echoes, one_ollama_span])
    assert result.metrics["echoes/mean"] == 1.0
    assert result.metrics["one_ollama_span/mean"] == 1.0
    # evaluate() keeps the trace predict_fn made (ours is its root) or wraps it in a span of its
    # own, depending on the release; either way each question's trace holds one Ollama chat.
    chats = [span for trace in traces() for span in chat_spans(trace)]
    replies = sorted(span.attributes["mlflow.chat.messages"][-1]["content"] for span in chats)
    assert replies == ["You said: What is MLflow?", "You said: What is Ollama?"]
