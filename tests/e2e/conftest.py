"""End-to-end fixtures: a real ``mlflow server``, started once per run (see ``parts.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .parts import MlflowServer, start_mlflow_server
from .test_ui import page  # noqa: F401 - the Chromium page, for the other modules' browser checks too


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on a free loopback port, backed by sqlite in a temp dir."""
    with start_mlflow_server() as running:
        yield running
