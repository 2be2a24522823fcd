"""The package knows its version, from one place: pyproject.toml, through the installed metadata."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mlflow_ollama

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_version_is_the_installed_distributions() -> None:
    assert mlflow_ollama.__version__ == importlib.metadata.version("mlflow-ollama")
    assert re.fullmatch(r"\d+\.\d+\.\d+([abrc.]+\d+)?(\.dev\d+)?", mlflow_ollama.__version__)


def test_version_matches_pyproject() -> None:
    if not PYPROJECT.exists():  # running against an installed wheel, without the checkout
        return
    declared = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.MULTILINE)
    assert declared is not None
    assert mlflow_ollama.__version__ == declared.group(1)


def test_import_does_not_read_the_metadata() -> None:
    """The launcher and the bootstrap import the package; the version costs them nothing until asked for."""
    code = "import sys, mlflow_ollama; print('importlib.metadata' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        mlflow_ollama.no_such_thing  # noqa: B018
