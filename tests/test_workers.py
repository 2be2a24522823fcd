"""Worker processes, on every supported release: forked workers' traces reach the store, and no worker hangs.

The job (``tests/e2e/workers_app.py``) runs as a real process, 12 chats in 3 workers against the
loopback double, after a traced call in the parent whose export has started MLflow's export
threads: the case that left nothing, or hung, before. Export is asynchronous, MLflow's default from
3.12; older releases write each trace synchronously to an OSS store unless
``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=true``, which is set here so that every release runs the queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from e2e.parts import count_stored, run_workers_app

from mlflow_ollama._exit import EXIT_FLUSH_TIMEOUT_ENV, exit_flush_timeout
from mlflow_ollama.testing import OllamaDouble


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sqlite store for the module's jobs, each in an experiment of its own."""
    return tmp_path_factory.mktemp("workers") / "mlflow.db"


ASYNC = {"MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "true"}
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


@needs_fork
@pytest.mark.forks
@pytest.mark.parametrize(
    ("how", "ending"),
    [
        ("pool", "close"),  # workers leave through multiprocessing's finalizers and os._exit
        ("pool", "with"),  # terminate(): SIGTERM
        ("fork", "sys-exit"),  # a bare fork: atexit, where MLflow's own flush used to wait forever
    ],
)
def test_forked_workers_traces_are_stored(server: OllamaDouble, store: Path, how: str, ending: str) -> None:
    run = run_workers_app(server, how, "fork", ending, warm_up=True, env=ASYNC, store=store)
    assert run.killed == 0, f"a worker did not exit:\n{run.stderr[-3000:]}"
    assert (run.calls, run.stored) == (12, 12), run.stderr[-3000:]


_SIGNALS = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    import mlflow_ollama

    def report(_):
        handler = signal.getsignal(signal.SIGTERM)
        return getattr(handler, "__module__", None) or str(handler)

    def own(signum, frame):
        os._exit(0)  # an app's handler that ends the process (one that ignores SIGTERM hangs terminate())

    if __name__ == "__main__":
        mlflow_ollama.autolog()
        import ollama  # the patches go in
        if sys.argv[1] == "own":
            signal.signal(signal.SIGTERM, own)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            print(pool.map(report, [0])[0])
    """
)


@needs_fork
@pytest.mark.forks
@pytest.mark.parametrize(("parent", "expected"), [("default", "mlflow_ollama._workers"), ("own", "__main__")])
def test_sigterm_flush_only_replaces_the_default_action(parent: str, expected: str) -> None:
    """A worker gets the flush-then-die handler only where SIGTERM had its default action."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_OLLAMA_STRICT"}
    done = subprocess.run(
        [sys.executable, "-c", _SIGNALS, parent], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == expected, done.stdout


_BLOCKED_WORKER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, threading, time
    import mlflow, mlflow_ollama, ollama

    def work(lock):
        client = ollama.Client(host=os.environ["OLLAMA_HOST"])
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
        # SIGTERM reaches another thread of the worker while the main thread waits in C for a
        # lock (as a pool worker waits for the queue lock that terminate() holds): the kernel
        # is free to pick any thread that does not block the signal, MLflow's export threads too.
        def send():
            time.sleep(0.5)
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        threading.Thread(target=send).start()
        lock.acquire()

    if __name__ == "__main__":
        mlflow_ollama.autolog()
        mlflow.set_experiment(os.environ["APP_EXPERIMENT_NAME"])
        context = multiprocessing.get_context("fork")
        lock = context.Lock()
        lock.acquire()  # never released
        worker = context.Process(target=work, args=(lock,))
        worker.start()
        worker.join(30)
        print("hung" if worker.exitcode is None else worker.exitcode)
        if worker.exitcode is None:
            worker.kill()
    """
)


@needs_fork
@pytest.mark.forks
def test_sigterm_to_another_thread_ends_a_blocked_worker(server: OllamaDouble, tmp_path: Path) -> None:
    """The flush-then-die handler runs even when the kernel hands SIGTERM to a thread that is not the main one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    env.update(ASYNC, OLLAMA_HOST=server.url, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env["APP_EXPERIMENT_NAME"] = "blocked"
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_WORKER], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "-15", done.stderr[-3000:]  # died of SIGTERM, as before
    assert count_stored(tmp_path / "mlflow.db", "blocked") == 1


@pytest.mark.parametrize(("raw", "seconds"), [(None, 10.0), ("", 10.0), ("2.5", 2.5), ("0", 0.0)])
def test_exit_flush_timeout(monkeypatch: pytest.MonkeyPatch, raw: str | None, seconds: float) -> None:
    if raw is None:
        monkeypatch.delenv(EXIT_FLUSH_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(EXIT_FLUSH_TIMEOUT_ENV, raw)
    assert exit_flush_timeout() == seconds


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_exit_flush_timeout_invalid(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    monkeypatch.setenv(EXIT_FLUSH_TIMEOUT_ENV, raw)
    assert exit_flush_timeout() == 10.0
    assert f"Ignoring {EXIT_FLUSH_TIMEOUT_ENV}={raw!r}" in caplog.text
