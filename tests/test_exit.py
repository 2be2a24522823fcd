"""The main process's exit: bounded when ``MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT`` is set, MLflow's own when not.

Each case runs a real app process: chats against the loopback double, traced into a real store
(a sqlite file, or a tracking server that accepts connections and never answers), and then the
interpreter's exit, where MLflow flushes its export. Export is asynchronous, MLflow's default from
3.12; older releases write each trace as its call ends unless ``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING``
is set, which it is here, so that every release has an exit flush to bound.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from e2e.parts import count_stored

from mlflow_ollama._exit import EXIT_FLUSH_TIMEOUT_ENV
from mlflow_ollama.testing import OllamaDouble

_APP = textwrap.dedent(
    """
    import os, sys
    import mlflow, ollama, mlflow_ollama

    if os.environ.get("APP_EXPERIMENT"):
        mlflow.set_experiment(os.environ["APP_EXPERIMENT"])
    mlflow_ollama.autolog()
    client = ollama.Client(host=sys.argv[1])
    for _ in range(int(sys.argv[2])):
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}])
    print("calls done", flush=True)
    """
)
# Python 3.12.0 and 3.12.1 start no thread at interpreter exit, so MLflow cannot export there.
_NO_THREADS_AT_EXIT = sys.version_info[:3] in ((3, 12, 0), (3, 12, 1))


def _run(server: OllamaDouble, calls: int, env: Mapping[str, str], timeout: float) -> tuple[int, str, float]:
    """Run the app; its exit status, its stderr, and the seconds from its last call to its end."""
    dropped = ("MLFLOW_OLLAMA_STRICT", EXIT_FLUSH_TIMEOUT_ENV, "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean |= {"MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "true", "MLFLOW_MODEL_CATALOG_URI": "", **env}
    app = subprocess.Popen(
        [sys.executable, "-c", _APP, server.url, str(calls)],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stdout is not None
    assert app.stdout.readline().strip() == "calls done", app.communicate(timeout=30)[1][-3000:]
    after_calls = time.monotonic()
    try:
        _, stderr = app.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        app.kill()
        _, stderr = app.communicate()
        pytest.fail(f"the app still had not exited {timeout:g} s after its calls:\n{stderr[-3000:]}")
    return app.returncode, stderr, time.monotonic() - after_calls


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A tracking server's address that accepts connections and never answers them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)  # connections wait in the backlog; nothing reads them
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.skipif(_NO_THREADS_AT_EXIT, reason="this Python starts no thread at exit: nothing can be exported")
def test_a_set_bound_ends_the_exit_when_the_server_never_answers(server: OllamaDouble, silent_server: str) -> None:
    # Unbounded, MLflow's exit flush sends the 40 traces one after another, each waiting out the
    # 2 s request timeout: 80 s at least. Bounded by 1 s, the exit waits the bound and the uploads
    # already under way.
    env = {
        "MLFLOW_TRACKING_URI": silent_server,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
        EXIT_FLUSH_TIMEOUT_ENV: "1",
    }
    status, stderr, _ = _run(server, 40, env, timeout=40)
    assert status == 0, stderr[-3000:]
    assert f"gave MLflow's trace export 1 s ({EXIT_FLUSH_TIMEOUT_ENV}) and leaves without at least" in stderr


@pytest.mark.skipif(_NO_THREADS_AT_EXIT, reason="this Python starts no thread at exit: nothing can be exported")
def test_a_set_bound_loses_nothing_when_the_store_keeps_up(server: OllamaDouble, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}", "APP_EXPERIMENT": "bounded", EXIT_FLUSH_TIMEOUT_ENV: "60"}
    status, stderr, _ = _run(server, 20, env, timeout=90)
    assert status == 0, stderr[-3000:]
    assert "mlflow-ollama" not in stderr
    assert count_stored(store, "bounded") == 20


def test_unset_the_exit_is_mlflows_own(server: OllamaDouble, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}", "APP_EXPERIMENT": "unbounded"}
    status, stderr, _ = _run(server, 5, env, timeout=90)
    assert status == 0, stderr[-3000:]
    if _NO_THREADS_AT_EXIT:
        # MLflow's export threads may have started during the run (a full batch of spans exports
        # at once): then they export at exit. If not, MLflow loses the traces without a word, and
        # the plugin says how many, and what to do. Either way, none is lost unsaid.
        stored, warned = count_stored(store, "unbounded"), "cannot export its last 5 trace(s)" in stderr
        assert (stored, warned) in ((5, False), (0, True)), stderr[-3000:]
        assert not warned or "mlflow.flush_trace_async_logging()" in stderr
    else:
        assert "mlflow-ollama" not in stderr
        assert count_stored(store, "unbounded") == 5
