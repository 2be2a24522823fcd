"""Known-broken combinations of the libraries we sit on, found at ``autolog()`` time, not per call.

These are bugs of the combination, not of this plugin; a clear warning at startup beats traces
that silently never arrive. The same list is in pyproject.toml and docs/limitations.md.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import re

from mlflow_ollama._safety import warn

__all__ = ["check_installed", "known_problem"]


def _release(version: str) -> tuple[int, ...]:
    """``"3.3.2"`` -> ``(3, 3, 2)``; ``"3.4.0rc1"`` -> ``(3, 4, 0)``: the leading numbers only."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def known_problem(versions: dict[str, str]) -> str | None:
    """A warning for a known-broken set of installed versions (distribution -> version), or None."""
    mlflow = versions.get("mlflow-tracing") or versions.get("mlflow-skinny") or versions.get("mlflow")
    otel = versions.get("opentelemetry-sdk")
    if mlflow and otel and _release(mlflow) < (3, 4) and _release(otel) >= (1, 45):
        return (
            f"mlflow-ollama: MLflow {mlflow} with opentelemetry-sdk {otel} fails to end spans with a local "
            "store (\"'MlflowV3SpanProcessor' object has no attribute '_shutdown'\"), so no trace is stored, "
            "with or without this plugin. Upgrade MLflow to 3.4 or newer, or pin opentelemetry-sdk<1.45."
        )
    return None


@functools.cache  # once per process: the installed versions do not change under us
def check_installed() -> None:
    """Warn once about a known-broken combination of installed versions."""
    versions = {}
    for name in ("mlflow-tracing", "mlflow-skinny", "mlflow", "opentelemetry-sdk"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    if problem := known_problem(versions):
        warn(problem)
