"""Servers that fork their workers after the app is imported: gunicorn ``--preload`` and Celery's prefork pool.

Both apps call ``autolog()`` and make a warm-up call at import, in the master, whose export has
started MLflow's export threads before the fork: the case where a worker's traces used to stay
queued forever and its exit hang. The real gunicorn and Celery run as processes, against the
loopback double, with a sqlite store; each is stopped the way its docs say (SIGTERM: graceful
stop for gunicorn, warm shutdown for Celery), and every request's trace must be in the store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlflow_ollama.testing import OllamaDouble

from .parts import count_stored, free_port

HERE = Path(__file__).parent
CALLS = 12
# MLflow's batch span processor (3.12 and later, with asynchronous export) holds every span until
# the worker's exit flushes it, instead of a timer deciding (with its 5 s default, a Celery run on CI
# once lost one trace of 13 and passed other times): without the flush at exit, every trace a
# worker made is lost, every time.
HELD = {
    "MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE": "1000",
    "MLFLOW_ASYNC_TRACE_LOGGING_MAX_INTERVAL_MILLIS": "600000",
}


def _environment(double: OllamaDouble, store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    env.update({"OLLAMA_HOST": double.url, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", **extra})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _stop(process: subprocess.Popen[str], timeout: float = 120) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, errors = process.communicate()
        raise AssertionError(f"did not stop within {timeout} s of SIGTERM:\n{errors[-3000:]}") from None
    return errors


def test_gunicorn_preload_workers_keep_every_trace(server: OllamaDouble) -> None:
    store = Path(tempfile.mkdtemp(prefix="mlflow-ollama-gunicorn-")) / "mlflow.db"
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "gunicorn_app:application"],
        cwd=store.parent,  # MLflow writes the sqlite experiments' artifacts under ./mlruns
        env=_environment(server, store, **HELD),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # a TCP connection, not a request: a request would be a trace
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        pids = {urllib.request.urlopen(f"http://127.0.0.1:{port}/{i}", timeout=60).read() for i in range(CALLS)}
    finally:
        errors = _stop(process)
    assert pids, errors[-3000:]
    assert count_stored(store) == 1 + CALLS, errors[-3000:]  # the master's warm-up and every request


def test_celery_prefork_workers_keep_every_trace(server: OllamaDouble) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mlflow-ollama-celery-"))
    store = folder / "mlflow.db"
    worker_env = _environment(server, store, CELERY_APP_DIR=str(folder), CELERY_APP_ROLE="worker", **HELD)
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork"]
    worker = subprocess.Popen(
        [*command, "--concurrency", "2", "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip"],
        cwd=folder,  # MLflow writes the sqlite experiments' artifacts under ./mlruns
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        producer_env = _environment(server, folder / "unused.db", CELERY_APP_DIR=str(folder))
        sent = subprocess.run(
            [sys.executable, str(HERE / "celery_app.py"), str(CALLS)],
            env=producer_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        errors = _stop(worker)
    assert sent.returncode == 0, sent.stderr[-3000:] + errors[-3000:]
    assert sent.stdout.strip() == str(CALLS)
    assert count_stored(store) == 1 + CALLS, errors[-3000:]
