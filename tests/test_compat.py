"""A mixed or too old MLflow install is named once at autolog() time, with the command that fixes it.

The same check runs against real venvs in ``nox -s install`` (tests/install/check.py).
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from pathlib import Path
from typing import Any

import ollama
import pytest
from mlflow.entities import LiveSpan

import mlflow_ollama
from mlflow_ollama import _compat
from mlflow_ollama._compat import OLDEST_MLFLOW, mixed_install, problems, too_old
from support import chat_spans, only_trace, user

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("versions", "fix"),
    [
        # Full MLflow 3.1 with the mlflow-tracing a plain `pip install mlflow-ollama` brings.
        (
            {"mlflow": "3.1.0", "mlflow-skinny": "3.1.0", "mlflow-tracing": "3.17.2"},
            'uninstall -y mlflow mlflow-skinny mlflow-tracing && python -m pip install "mlflow==3.17.2"',
        ),
        # A supported full MLflow keeps its version: the user chose it.
        (
            {"mlflow": "3.10.1", "mlflow-skinny": "3.10.1", "mlflow-tracing": "3.17.2"},
            'uninstall -y mlflow mlflow-skinny mlflow-tracing && python -m pip install "mlflow==3.10.1"',
        ),
        # No full MLflow: the same two distributions, at the newest installed version.
        (
            {"mlflow-skinny": "3.0.0", "mlflow-tracing": "3.17.2"},
            'uninstall -y mlflow-skinny mlflow-tracing && python -m pip install "mlflow-skinny==3.17.2" '
            '"mlflow-tracing==3.17.2"',
        ),
        # Nothing installed is new enough: the oldest supported release.
        (
            {"mlflow-skinny": "3.0.0", "mlflow-tracing": "3.1.0"},
            f'"mlflow-skinny=={OLDEST_MLFLOW}" "mlflow-tracing=={OLDEST_MLFLOW}"',
        ),
    ],
)
def test_a_mixed_install_is_named_with_its_fix(versions: dict[str, str], fix: str) -> None:
    message = mixed_install(versions)
    assert message is not None
    for name, version in versions.items():
        assert f"{name} {version}" in message
    assert fix in message
    assert too_old(versions) is None  # one warning per install, not two


@pytest.mark.parametrize(
    "versions",
    [
        {"mlflow": "3.17.2", "mlflow-skinny": "3.17.2", "mlflow-tracing": "3.17.2"},
        {"mlflow-tracing": "3.17.2"},
        {"mlflow-skinny": OLDEST_MLFLOW, "mlflow-tracing": OLDEST_MLFLOW},
        {"mlflow-tracing": "3.4.0rc1"},  # a pre-release of the floor counts as the floor
        {"mlflow-tracing": "3.10.0"},  # 3.10 is newer than 3.4, not older
        {},
    ],
)
def test_a_consistent_supported_install_is_quiet(versions: dict[str, str]) -> None:
    assert problems(versions) == []


@pytest.mark.parametrize("version", ["3.0.0", "3.3.2", "3.3rc1"])
def test_an_install_older_than_the_floor_is_named(version: str) -> None:
    versions = {"mlflow": version, "mlflow-skinny": version}
    [message] = problems(versions)
    assert f"MLflow {version} is older than the oldest supported release, {OLDEST_MLFLOW}" in message
    assert "opentelemetry-sdk 1.45" in message  # why: the old otel pairing is one of the reasons
    assert f'python -m pip install "mlflow=={OLDEST_MLFLOW}"' in message


def _fake_metadata(monkeypatch: pytest.MonkeyPatch, fake: dict[str, str]) -> None:
    def version(name: str) -> str:
        if name in fake:
            return fake[name]
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


def test_autolog_warns_once_about_a_mixed_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_metadata(monkeypatch, {"mlflow": "3.1.0", "mlflow-skinny": "3.1.0", "mlflow-tracing": "3.17.2"})
    _compat.check_installed.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
            mlflow_ollama.autolog()
            mlflow_ollama.revert()
            mlflow_ollama.autolog()
    finally:
        _compat.check_installed.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if "not one version" in r.getMessage()]
    assert len(warnings) == 1
    assert "(mlflow 3.1.0, mlflow-skinny 3.1.0, mlflow-tracing 3.17.2)" in warnings[0]


def test_autolog_is_quiet_about_the_versions_under_test(caplog: pytest.LogCaptureFixture) -> None:
    """Every dependency set of the test matrix is one consistent, supported MLflow."""
    _compat.check_installed.cache_clear()
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        mlflow_ollama.autolog()
    assert [r.getMessage() for r in caplog.records if r.name == "mlflow_ollama"] == []
    assert len(set(_compat.installed_versions().values())) == 1


def test_the_floor_is_the_same_everywhere_it_is_written() -> None:
    """pyproject.toml (dependency and extra), the oldest nox set and the docs name one floor."""
    floor = re.escape(OLDEST_MLFLOW.removesuffix(".0"))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'"mlflow-tracing>={floor}(\.0)?"', pyproject)
    assert re.search(rf'mlflow = \["mlflow>={floor}(\.0)?"\]', pyproject)
    assert f'"mlflow=={OLDEST_MLFLOW}"' in (ROOT / "noxfile.py").read_text()
    for page in ("README.md", "docs/index.md", "docs/limitations.md"):
        assert f"MLflow {OLDEST_MLFLOW.removesuffix('.0')} and newer" in (ROOT / page).read_text(), page


def test_errors_are_recorded_where_mlflow_has_no_record_exception(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mlflow-skinny 3.0.0 snapshot's LiveSpan has no record_exception; the error event still lands."""
    monkeypatch.delattr(LiveSpan, "record_exception")
    mlflow_ollama.autolog()
    with pytest.raises(ollama.ResponseError):
        client.chat(model="missing-model", messages=user("x"))
    monkeypatch.undo()
    [span] = chat_spans(only_trace())
    assert span.status.status_code == "ERROR"
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ResponseError"
    assert "missing-model" in event.attributes["exception.message"]
