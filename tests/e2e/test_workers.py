"""Worker processes: an Ollama batch job run in multiprocessing pools, ProcessPoolExecutor and bare forks.

Each test runs ``workers_app.py`` as a real process (12 chats in 3 workers, against the loopback
double) and counts the workers' traces in a real sqlite store or a loopback OTLP receiver.
The unit matrix runs the fork cases on every supported release (``tests/test_workers.py``); these
add spawn and forkserver, the OTLP route, a worker killed outright, a flush that cannot finish,
and MLflow on its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlflow_ollama.testing import OllamaDouble

from .parts import run_workers_app

CASES = [
    # (how, start, ending, route, warm-up)
    ("pool", "spawn", "with", "mlflow", True),  # spawned workers get autolog() through initializer=
    ("pool", "forkserver", "close", "mlflow", True),
    ("executor", "fork", "with", "mlflow", True),
    ("pool", "fork", "close", "mlflow", False),
    ("pool", "fork", "with", "otlp", True),  # terminate(): the SIGTERM flush, through OpenTelemetry's processor
    ("fork", "fork", "sys-exit", "otlp", True),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sqlite store for the module's jobs, each in an experiment of its own."""
    return tmp_path_factory.mktemp("workers") / "mlflow.db"


@pytest.mark.parametrize(("how", "start", "ending", "route", "warm_up"), CASES)
def test_every_worker_trace_is_stored(
    server: OllamaDouble, store: Path, how: str, start: str, ending: str, route: str, warm_up: bool
) -> None:
    run = run_workers_app(server, how, start, ending, route=route, warm_up=warm_up, store=store)
    assert run.killed == 0, f"a worker did not exit:\n{run.stderr[-3000:]}"
    assert (run.calls, run.stored) == (12, 12), run.stderr[-3000:]


def test_killed_workers_keep_their_traces_with_synchronous_export(server: OllamaDouble, store: Path) -> None:
    """SIGKILL leaves no time to flush; exporting as each call ends (MLflow's own switch) keeps every trace."""
    env = {"MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"}
    run = run_workers_app(server, "fork", "fork", "kill", env=env, store=store)
    assert (run.calls, run.stored) == (12, 12), run.stderr[-3000:]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An OTLP endpoint that takes requests and never answers: an export that cannot finish."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
            pass

        def do_POST(self) -> None:
            release.wait(120)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_flush_that_cannot_finish_is_bounded_and_said(server: OllamaDouble, black_hole: str) -> None:
    """Workers whose export hangs still leave, after MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT, each saying so."""
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": black_hole,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT": "1",
    }
    run = run_workers_app(server, "pool", "fork", "close", warm_up=False, exit_timeout=120, env=env)
    assert run.calls == 12
    warnings = re.findall(r"mlflow-ollama: process (\d+) \(worker exit\) gave MLflow's trace export 1 s", run.stderr)
    assert warnings, run.stderr[-3000:]
    assert len(set(warnings)) == len(warnings)  # once per worker
    assert "MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT" in run.stderr


def test_mlflow_alone_still_loses_forked_workers_traces(server: OllamaDouble, store: Path) -> None:
    """The upstream behaviour (docs/workers.md#upstream): MLflow on its own, no mlflow-ollama.

    When this fails, MLflow keeps forked workers' traces by itself: check the reproduction in the
    docs, and whether mlflow_ollama/_workers.py is still needed on the releases that fixed it.
    """
    run = run_workers_app(server, "pool", "fork", "close", tracer="mlflow", warm_up=True, store=store)
    assert run.calls == 12
    assert run.stored < 12, "MLflow now stores forked pool workers' traces by itself"
