"""Helpers for reading traces back from the MLflow store in tests."""

from __future__ import annotations

from typing import Any

import mlflow

MODEL = "llama3.2"


def traces() -> list[Any]:
    """Every trace of the current test's experiment, oldest first, after flushing async export."""
    mlflow.flush_trace_async_logging()
    experiment = mlflow.tracking.fluent._get_experiment_id()
    found = mlflow.search_traces(experiment_ids=[experiment], return_type="list")  # 3.x-wide spelling
    return sorted(found, key=lambda t: t.info.timestamp_ms)


def only_trace() -> Any:
    found = traces()
    assert len(found) == 1, f"expected one trace, got {len(found)}"
    return found[0]


def chat_spans(trace: Any) -> list[Any]:
    return [s for s in trace.data.spans if s.name == "ollama.chat"]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
