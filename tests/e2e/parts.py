"""Real parts for the end-to-end tests: an ``mlflow server`` process, and the traced app run as a process.

These tests need more than the unit suite (a server, a browser, a Jupyter kernel); ``nox -s e2e``
installs all of it. Where a part is missing, its tests skip, unless ``MLFLOW_OLLAMA_E2E_REQUIRED``
is set (the nox session sets it), in which case they fail: CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble

APP = Path(__file__).with_name("app.py")
REQUIRED = os.environ.get("MLFLOW_OLLAMA_E2E_REQUIRED", "").lower() in ("1", "true", "yes")
# The app's environment starts from ours minus everything the unit suite set up for itself.
_OURS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING",
    "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE",
    "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)


def need(condition: bool, reason: str) -> None:
    """Skip when a part of the environment is missing; fail instead when the run requires it."""
    if condition:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (MLFLOW_OLLAMA_E2E_REQUIRED is set)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MlflowServer:
    """A running ``mlflow server``: its URL, and a client that reads through its REST API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.url)

    def new_experiment(self) -> str:
        return str(self.client.create_experiment(f"e2e-{uuid.uuid4().hex[:12]}"))


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def start_mlflow_server(
    backend_store_uri: str | None = None, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[MlflowServer]:
    """Start ``mlflow server`` on a free loopback port; stop it after.

    The store is ``backend_store_uri`` (say a ``postgresql://`` URI from :func:`start_postgres`),
    or by default a sqlite file in a temp dir; artifacts always go to the temp dir. ``workers`` is
    the server's ``--workers``; ``env`` is added to the server's environment.
    """
    mlflow_cli = shutil.which("mlflow", path=os.path.dirname(sys.executable))
    need(mlflow_cli is not None, "the full `mlflow` package (for `mlflow server`) is not installed")
    assert mlflow_cli is not None
    root = Path(tempfile.mkdtemp(prefix="mlflow-ollama-server-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    server_env = {**{k: v for k, v in os.environ.items() if k not in _OURS}, **(env or {})}
    store = backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
    command = [mlflow_cli, "server", "--backend-store-uri", store, "--artifacts-destination", str(root / "artifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        # A session of its own: the server's workers and the job runners it starts with a database
        # store (huey consumers) are stopped with it, as one process group.
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=server_env, cwd=root, start_new_session=True
        )
    try:
        _wait_healthy(url, process, log, timeout=180)
        yield MlflowServer(url=url, process=process, log=log)
    finally:
        stop_process_group(process)
        shutil.rmtree(root, ignore_errors=True)


def stop_process_group(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session=True``, and everything left in its group."""
    group = getattr(os, "killpg", None)
    if group is None:  # not POSIX
        process.terminate()
    else:
        with contextlib.suppress(ProcessLookupError):
            group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if group is not None:
        with contextlib.suppress(ProcessLookupError):
            group(process.pid, signal.SIGKILL)


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (``initdb``, ``pg_ctl``), or None.

    ``MLFLOW_OLLAMA_PG_BIN`` if set; else the newest Debian install (``/usr/lib/postgresql/<version>/bin``,
    which Debian keeps off the PATH); else where ``initdb`` on the PATH really lives.
    """
    if configured := os.environ.get("MLFLOW_OLLAMA_PG_BIN"):
        return Path(configured)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass
class Postgres:
    """A running PostgreSQL server: ``uri`` is its ``mlflow`` database, for SQLAlchemy (psycopg 3)."""

    uri: str
    port: int
    data: Path

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Run one statement in the ``mlflow`` database; its rows."""
        import psycopg  # only where PostgreSQL is used: the e2e and scale environments install it

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=mlflow") as connection:
            return connection.execute(sql, params).fetchall()


def _open_to_others(path: Path) -> bool:
    """Whether every directory from ``/`` down to ``path`` lets any user pass through (``o+x``)."""
    path = path.resolve()
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """Start PostgreSQL in a data directory of its own, on a free loopback port; stop it and delete it after.

    ``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user that
    Debian's package creates (or ``nobody`` where there is none), through ``setpriv``. Trust
    authentication: only this machine's loopback can reach it, and only while the test runs.
    """
    bindir = postgres_bin()
    if bindir is None:
        # Like Chromium, a system part: skipped where missing, unless the run requires it (.ci/run).
        reason = "PostgreSQL is not installed (Debian: apt-get install postgresql); .ci/run installs it"
        if os.environ.get("MLFLOW_OLLAMA_REQUIRE_POSTGRES", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}, and MLFLOW_OLLAMA_REQUIRE_POSTGRES is set")
        pytest.skip(reason)
    run_as: list[str] = []
    parent, owner = None, None
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        owner = (user.pw_uid, user.pw_gid)
        run_as = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
        # That user must be able to reach its directory: the temp dir nox gives us lives in the
        # checkout, and a checkout made with `mktemp -d` is closed to other users (0700).
        parent = tempfile.gettempdir() if _open_to_others(Path(tempfile.gettempdir())) else "/tmp"
    root = Path(tempfile.mkdtemp(prefix="mlflow-ollama-pg-", dir=parent))
    if owner:
        os.chown(root, *owner)
    data, log, port = root / "data", root / "postgres.log", free_port()

    def pg(*command: str) -> None:
        subprocess.run([*run_as, *command], check=True, capture_output=True, cwd=root, timeout=120)

    started = False
    try:
        try:
            pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
            started = True  # from here on, stop it whatever happens (stopping a stopped server is harmless)
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
            pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        except subprocess.CalledProcessError as error:
            detail = log.read_text()[-4000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL failed: {error}\n{error.stderr!r}\n{detail}") from error
        yield Postgres(uri=f"postgresql://postgres@127.0.0.1:{port}/mlflow", port=port, data=data)
    finally:
        if started:
            stop = [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(stop, check=False, capture_output=True, cwd=root, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


class OtlpReceiver:
    """A loopback OTLP/HTTP receiver: accepts protobuf ``POST /v1/traces`` and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
                pass

            def do_POST(self) -> None:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                    ExportTraceServiceResponse,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with receiver._lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            receiver.spans.extend(scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def attributes(self, span: Any) -> dict[str, Any]:
        """A received span's attributes as plain Python values (MLflow JSON-encodes its own)."""
        return {item.key: _any_value(item.value) for item in span.attributes}


def _any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value; arrays (``gen_ai.response.finish_reasons``) as lists."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class AppRun:
    trace_ids: dict[str, str]
    seconds: dict[str, float]
    flush_seconds: float
    stderr: str


def run_app(
    double: OllamaDouble,
    env: Mapping[str, str],
    scenarios: list[str] | None = None,
    python: str = sys.executable,
    timeout: float = 300,
    expect_trace_ids: bool = True,
    fresh_server: bool = True,
) -> AppRun:
    """Run ``app.py`` as a separate process, configured only through ``env``, like a user's app.

    With ``fresh_server`` (the default), the run meets a server with no model loaded, as a freshly
    started Ollama: runs compared with each other then load (and record) alike. Runs made at once
    share the server instead: load the model first and pass ``fresh_server=False``.
    """
    if fresh_server:
        double.scheduler.unload_all()
    full_env = {k: v for k, v in os.environ.items() if k not in _OURS}
    full_env.update({"OLLAMA_HOST": double.url, "MLFLOW_OLLAMA_STRICT": "true", **env})
    done = subprocess.run(
        [python, str(APP), *(scenarios or [])],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.mkdtemp(prefix="mlflow-ollama-app-"),
    )
    assert done.returncode == 0, f"app failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if expect_trace_ids:  # MLflow keeps no trace ids when it exports over OTLP
        assert all(result["trace_ids"].values()), f"a scenario left no trace: {result}"
    return AppRun(result["trace_ids"], result["seconds"], result["flush_seconds"], done.stderr)


WORKERS_APP = Path(__file__).with_name("workers_app.py")


@dataclass
class WorkersRun:
    """One run of ``workers_app.py``: the workers' calls, and how many of their traces were stored."""

    calls: int
    stored: int
    """The workers' traces that reached the store or the OTLP receiver (the parent's warm-up not counted)."""
    workers_seconds: float
    killed: int
    """Workers still there ``exit_timeout`` seconds after their calls, killed: they hung."""
    stderr: str


def count_stored(store: Path, experiment: str | None = None) -> int:
    """Traces in a sqlite store, or in one experiment of it; 0 when nothing wrote any (tables are made lazily)."""
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        found = db.execute("SELECT name FROM sqlite_master WHERE name = 'trace_info'").fetchone()
        if not found:
            return 0
        if experiment is None:
            return int(db.execute("SELECT count(*) FROM trace_info").fetchone()[0])
        query = "SELECT count(*) FROM trace_info JOIN experiments USING (experiment_id) WHERE experiments.name = ?"
        return int(db.execute(query, (experiment,)).fetchone()[0])


def run_workers_app(
    double: OllamaDouble,
    how: str,
    start: str = "fork",
    ending: str = "close",
    tracer: str = "ours",
    route: str = "mlflow",
    warm_up: bool = True,
    calls: int = 12,
    exit_timeout: float = 20,
    env: Mapping[str, str] | None = None,
    store: Path | None = None,
) -> WorkersRun:
    """Run the worker-process job (``workers_app.py``) in an experiment, or an OTLP receiver, of its own.

    ``store``: a sqlite file to share between runs (each run counts its own experiment), which spares
    each run the creation of MLflow's tables (seconds); by default, a new one.
    """
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-ollama-workers-"))
    store = store or tmp / "mlflow.db"
    experiment = f"workers-{uuid.uuid4().hex}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    full_env.update({"OLLAMA_HOST": double.url, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    full_env["APP_EXPERIMENT_NAME"] = experiment
    full_env.update(env or {})
    command = [sys.executable, str(WORKERS_APP), "--how", how, "--start", start, "--ending", ending]
    command += ["--tracer", tracer, "--calls", str(calls), "--exit-timeout", str(exit_timeout)]
    command += ["--warm-up"] if warm_up else []
    with contextlib.ExitStack() as stack:
        if route == "otlp":
            receiver = stack.enter_context(OtlpReceiver())
            full_env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.endpoint
            full_env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        done = subprocess.run(
            command, env=full_env, capture_output=True, text=True, cwd=tmp, timeout=exit_timeout + 180
        )
        assert done.returncode == 0, f"the job failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-6000:]}"
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if route == "otlp":
            time.sleep(0.2)  # the last export request may still be in the receiver's handler
            stored = len({bytes(s.trace_id) for s in receiver.spans if s.name in ("chat", "ollama.chat")})
        else:
            stored = count_stored(store, experiment)
    stored -= 1 if warm_up else 0
    return WorkersRun(report["calls"], stored, report["workers_seconds"], report["killed"], done.stderr)
