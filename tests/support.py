"""Helpers for reading traces back from the MLflow store in tests."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import mlflow

MODEL = "llama3.2"


def traces() -> list[Any]:
    """Every trace of the current test's experiment, oldest first, after flushing async export."""
    mlflow.flush_trace_async_logging()
    experiment = mlflow.tracking.fluent._get_experiment_id()
    found = mlflow.search_traces(experiment_ids=[experiment], return_type="list")  # 3.x-wide spelling
    return sorted(found, key=lambda t: t.info.timestamp_ms)


def trace_token_usage(trace: Any) -> dict[str, int] | None:
    """The trace-level token usage MLflow aggregates from the spans.

    Read through ``TraceInfo.token_usage`` where the installed MLflow has it, else from the trace
    metadata it is stored in (``mlflow.trace.tokenUsage``), which every MLflow 3 release writes:
    the mlflow-skinny 3.0.0 snapshot, for one, has no such property.
    """
    if hasattr(type(trace.info), "token_usage"):
        return trace.info.token_usage  # type: ignore[no-any-return]
    raw = trace.info.trace_metadata.get("mlflow.trace.tokenUsage")
    return json.loads(raw) if raw else None


def only_trace() -> Any:
    found = traces()
    assert len(found) == 1, f"expected one trace, got {len(found)}"
    return found[0]


def base_name(span: Any) -> str:
    """The span's name without the ``_1``, ``_2`` suffix that MLflow before 3.4 adds to repeats."""
    return re.sub(r"_\d+$", "", span.name) if span.name.startswith("ollama.") else str(span.name)


def chat_spans(trace: Any) -> list[Any]:
    return sorted((s for s in trace.data.spans if base_name(s) == "ollama.chat"), key=lambda s: s.start_time_ns)


def sdk_accepts(parameter: str) -> bool:
    """Whether the installed ollama SDK's ``chat`` has this parameter (``think`` is 0.5+, ...)."""
    import ollama

    return parameter in inspect.signature(ollama.Client.chat).parameters


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def sdk_takes_schema_format() -> bool:
    """Whether the installed SDK accepts a JSON schema as ``format`` (ollama 0.4.3+)."""
    from ollama._types import ChatRequest

    try:
        ChatRequest(model=MODEL, format={"type": "object"})
    except ValueError:
        return False
    return True
