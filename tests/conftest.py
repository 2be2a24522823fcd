"""Shared fixtures: a loopback Ollama server, a real MLflow sqlite store, and clean patch state.

Every test talks to the real ``ollama`` client over real HTTP and reads its traces back from a
real MLflow store in a temp dir. Strict mode is on, so a failure inside the plugin fails the
test instead of being logged; tests of the never-break guarantee turn it off.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before anything imports mlflow or ollama: a private store, and no catalog lookups over the
# network (this machine has none; the explicit zero cost should make them unnecessary anyway).
_STORE = Path(tempfile.mkdtemp(prefix="mlflow-ollama-tests-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STORE / 'mlflow.db'}"
os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""
# Export each trace when its root span ends, instead of through MLflow's background queue, whose
# flush costs about a second per test. The default asynchronous path is exercised by the tests
# that run in subprocesses (test_lifecycle.py) with the user's defaults.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
# Synchronous export means every thread of a concurrency test writes to sqlite at once; MLflow's
# default pool (5 + 10 overflow, 30 s wait) then drops traces. Size it for 32 writers.
os.environ["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] = "40"
os.environ["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] = "10"
os.environ["MLFLOW_OLLAMA_STRICT"] = "true"
os.environ.pop("MLFLOW_OLLAMA_AUTOLOG", None)
os.environ.pop("OLLAMA_API_KEY", None)

import mlflow  # noqa: E402
import pytest  # noqa: E402

import mlflow_ollama  # noqa: E402
from mlflow_ollama import _model_details, _model_loads  # noqa: E402
from mlflow_ollama.testing import OllamaDouble  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[OllamaDouble]:
    """One Ollama double for the whole run; tests script it with ``enqueue`` when they need to."""
    with OllamaDouble() as double:
        # The module-level client was built when ollama was imported; point it at the double.
        import ollama

        ollama._client._client.base_url = double.url
        yield double


@pytest.fixture(autouse=True)
def _clean_state(server: OllamaDouble) -> Iterator[None]:
    """Each test starts unpatched, with an empty script, in an experiment of its own."""
    mlflow_ollama.revert()
    server._script.clear()
    # No model loaded on the double, none remembered by the plugin: each test's first call loads.
    server.scheduler.unload_all()
    _model_loads.history.clear()
    _model_details.details.clear()
    server.gpu_fraction = 1.0
    server.errors.clear()
    # Artifacts in the temp store too: MLflow before 3.4 otherwise writes trace files to ./mlruns.
    name = f"test-{uuid.uuid4().hex}"
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(name, artifact_location=(_STORE / name).as_uri()))
    yield
    mlflow_ollama.revert()
    server._script.clear()


@pytest.fixture
def client(server: OllamaDouble) -> Any:
    import ollama

    return ollama.Client(host=server.url)


@pytest.fixture
def async_client(server: OllamaDouble) -> Any:
    import ollama

    return ollama.AsyncClient(host=server.url)
