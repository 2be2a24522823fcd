"""Development sessions: ``nox`` runs the test matrix, lint, type checks and the docs build; ``nox -s demo`` the demo.

Interpreters that are not installed are skipped, not failed. On the project's CI machines the
extra Pythons live in pyenv; ``.ci/run`` exposes them through ``PYENV_VERSION``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "e2e", "lint", "typecheck", "docs"]
# Use the interpreters that are installed; never download one.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# The oldest releases we support, as declared in pyproject.toml. MLflow 3.0 to 3.3 fail to end
# spans with opentelemetry-sdk 1.45+ ('...SpanProcessor' object has no attribute '_shutdown'),
# whoever calls them, so the oldest set also pins OpenTelemetry of MLflow 3.0's time;
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
# ruff formats the signatures in the API reference.
# The real parts of the end-to-end tests: a browser driver, a Jupyter kernel, an OTLP exporter.
E2E_DEPS = [
    "playwright>=1.45",
    "nbclient>=0.10",
    "nbformat>=5.10",
    "ipykernel>=6.29",
    "opentelemetry-exporter-otlp-proto-http",
]
DOCS_DEPS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff>=0.6"]
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
    session.run("pytest", "--ignore=tests/e2e", *session.posargs)


@nox.session(python="3.11")
def e2e(session: nox.Session) -> None:
    """Real parts: an ``mlflow server`` process, the MLflow UI in Chromium, a Jupyter kernel, OTLP.

    Every part these tests use is installed here, so none may skip, with one exception: Chromium
    comes from the system (Debian's ``chromium``; Playwright's own download does not work on our
    machines). ``.ci/run`` installs it and sets ``MLFLOW_OLLAMA_REQUIRE_BROWSER=1``; elsewhere the
    browser tests skip, saying why, when no Chromium is found.
    """
    session.install("-e", ".[mlflow]", *TEST_DEPS, *E2E_DEPS)
    session.run("python", "-c", _PRINT_VERSIONS)
    # The lightweight install, mlflow-tracing without mlflow, in an environment of its own.
    tracing_only = Path(session.create_tmp()).resolve() / "tracing-only"
    session.run("python", "-m", "venv", "--clear", str(tracing_only))
    python = str(tracing_only / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    session.run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".", external=True)
    env = {"MLFLOW_OLLAMA_E2E_REQUIRED": "1", "MLFLOW_OLLAMA_TRACING_ONLY_PYTHON": python}
    session.run("pytest", "tests/e2e", *session.posargs, env=env)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    session.install("-e", ".[mlflow]", "mypy>=1.11", *TEST_DEPS, *E2E_DEPS, "nox")
    session.run("mypy", "mlflow_ollama", "tests", "noxfile.py", "docs/examples", "benchmarks")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The documentation, built with mkdocs --strict: any warning (a broken link, a bad docstring) fails."""
    session.install("-e", ".[mlflow]", *DOCS_DEPS)
    site = str(Path(session.create_tmp()) / "site")
    # NO_MKDOCS_2_WARNING: mkdocs-material's end-of-life banner, printed on every build.
    session.run("mkdocs", "build", "--strict", "--site-dir", site, *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


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
    unreachable = "docs/benchmarks/unreachable.md"
    session.run("python", "benchmarks/unreachable_server.py", "--output", unreachable)


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


@nox.session(python="3.11")
@nox.parametrize("deps", list(PINS))
def bench_floor(session: nox.Session, deps: str) -> None:
    """MLflow's own cost per span on each MLflow release of the matrix; writes docs/benchmarks/floor.md."""
    exporter = "opentelemetry-exporter-otlp-proto-http"
    if deps == "oldest":  # the exporter of the pinned OpenTelemetry release
        exporter += "==" + next(p.split("==")[1] for p in OLDEST if p.startswith("opentelemetry-sdk=="))
    peers = BENCH_PEERS if deps == "latest" else []  # the peers' releases need a recent OpenTelemetry
    session.install("-e", ".[mlflow]", exporter, *peers, *PINS[deps])
    session.run("python", "-c", _PRINT_VERSIONS)
    session.run(
        "python",
        "benchmarks/mlflow_floor.py",
        "--record",
        "docs/benchmarks/floor.json",
        "--output",
        "docs/benchmarks/floor.md",
    )
