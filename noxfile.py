"""Development sessions: ``nox`` runs the test matrix, lint and type checks; ``nox -s demo`` the demo.

Interpreters that are not installed are skipped, not failed. On the project's CI machines the
extra Pythons live in pyenv; ``.ci/run`` exposes them through ``PYENV_VERSION``.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "lint", "typecheck"]
# Use the interpreters that are installed; never download one.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# The oldest releases we support, as declared in pyproject.toml. MLflow 3.0 to 3.3 fail to end
# spans with the opentelemetry-sdk of today ('...SpanProcessor' object has no attribute
# '_shutdown'), whoever calls them, so the oldest set also pins OpenTelemetry of MLflow 3.0's time;
# and MLflow 3.0's sqlite store imports a pool class that SQLAlchemy 2.1 removed.
OLDEST = [
    "ollama==0.4.0",
    "mlflow==3.0.0",
    "mlflow-skinny==3.0.0",
    "mlflow-tracing==3.0.0",
    "opentelemetry-api==1.33.1",
    "opentelemetry-sdk==1.33.1",
    "sqlalchemy<2.1",
    "wrapt==1.17.0",
]
# A release in between: thinking and embed dimensions exist (ollama 0.5.4), MLflow has the llm.*
# attribute constants but not yet trace attachments (3.10), wrapt is 2.x.
MIDDLE = [
    "ollama==0.5.4",
    "mlflow==3.10.1",
    "mlflow-skinny==3.10.1",
    "mlflow-tracing==3.10.1",
    "wrapt==2.0.0",
]
PINS = {"oldest": OLDEST, "middle": MIDDLE, "latest": []}
TEST_DEPS = ["pytest>=8"]
_PRINT_VERSIONS = (
    "import importlib.metadata as m; "
    "print(*(f'{d} {m.version(d)}' for d in ('ollama', 'mlflow', 'mlflow-tracing', 'wrapt', 'opentelemetry-sdk')))"
)


@nox.session(python=PYTHONS)
@nox.parametrize("deps", list(PINS))
def tests(session: nox.Session, deps: str) -> None:
    """The test suite, against the oldest supported releases, one in between, or the newest."""
    session.install("-e", ".[mlflow]", *TEST_DEPS, *PINS[deps])
    session.run("python", "-c", _PRINT_VERSIONS)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    session.install("-e", ".[mlflow]", "mypy>=1.11", *TEST_DEPS, "nox")
    session.run("mypy", "mlflow_ollama", "tests", "noxfile.py", "docs/examples", "benchmarks")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """Three traced scenarios against Ollama at OLLAMA_HOST, or the loopback double if none answers."""
    session.install("-e", ".[mlflow]")
    session.run("python", "docs/examples/demo.py", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks; their results are written into docs/benchmarks/."""
    session.install("-e", ".[mlflow]")
    session.run("python", "benchmarks/stream_overhead.py", "--output", "docs/benchmarks/streaming.md", *session.posargs)
    soak = "docs/benchmarks/soak.md"
    if os.path.exists(soak):
        os.remove(soak)  # the soak appends one table per run
    session.run("python", "benchmarks/soak.py", "--seconds", "60", "--output", soak)
    session.run("python", "benchmarks/soak.py", "--seconds", "60", "--pause", "0.25", "--output", soak)


# Benchmark-only dependencies: the peer instrumentations and the OTLP/HTTP exporter they and
# MLflow export through. Installed in this session only.
BENCH_PEERS = [
    "opentelemetry-instrumentation-ollama",
    "openinference-instrumentation-ollama",
    "opentelemetry-exporter-otlp-proto-http",
]


@nox.session(python="3.11")
def bench_peers(session: nox.Session) -> None:
    """Tracing overhead against the peer instrumentations; writes docs/benchmarks/peers.md."""
    session.install("-e", ".[mlflow]", *BENCH_PEERS)
    session.run("python", "-c", _PRINT_VERSIONS)
    session.run("python", "benchmarks/peers.py", "--output", "docs/benchmarks/peers.md", *session.posargs)
