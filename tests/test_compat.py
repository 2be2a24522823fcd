"""Known-broken library combinations are named at autolog() time."""

from __future__ import annotations

import importlib.metadata
import logging

import pytest

import mlflow_ollama
from mlflow_ollama import _compat
from mlflow_ollama._compat import known_problem


@pytest.mark.parametrize(
    ("versions", "broken"),
    [
        ({"mlflow-tracing": "3.3.2", "opentelemetry-sdk": "1.45.0"}, True),
        ({"mlflow-tracing": "3.0.0", "opentelemetry-sdk": "1.45.2"}, True),
        ({"mlflow": "3.1.0", "opentelemetry-sdk": "1.46.0rc1"}, True),
        ({"mlflow-tracing": "3.3.2", "opentelemetry-sdk": "1.44.0"}, False),
        ({"mlflow-tracing": "3.4.0", "opentelemetry-sdk": "1.45.2"}, False),
        ({"mlflow-tracing": "3.10.1", "opentelemetry-sdk": "1.45.2"}, False),  # 3.10 is newer than 3.4
        ({"mlflow-tracing": "3.4.0rc1", "opentelemetry-sdk": "1.45.2"}, False),
        ({"mlflow-tracing": "3.3rc1", "opentelemetry-sdk": "1.45.0"}, True),  # 3.3, not 3.31
        ({"mlflow-tracing": "3.3.2"}, False),
        ({}, False),
    ],
)
def test_known_problem(versions: dict[str, str], broken: bool) -> None:
    problem = known_problem(versions)
    assert (problem is not None) == broken
    if problem:
        assert "opentelemetry-sdk<1.45" in problem
        assert versions["opentelemetry-sdk"] in problem


def test_autolog_warns_once_about_a_broken_combination(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = {"mlflow-tracing": "3.2.0", "opentelemetry-sdk": "1.45.1"}

    def version(name: str) -> str:
        if name in fake:
            return fake[name]
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    _compat.check_installed.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
            mlflow_ollama.autolog()
            mlflow_ollama.revert()
            mlflow_ollama.autolog()
    finally:
        _compat.check_installed.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if "fails to end spans" in r.getMessage()]
    assert len(warnings) == 1
    assert "MLflow 3.2.0 with opentelemetry-sdk 1.45.1" in warnings[0]


def test_autolog_is_quiet_about_the_versions_under_test(caplog: pytest.LogCaptureFixture) -> None:
    """Every dependency set of the test matrix is a supported one."""
    _compat.check_installed.cache_clear()
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        mlflow_ollama.autolog()
    assert not [r for r in caplog.records if "fails to end spans" in r.getMessage()]
