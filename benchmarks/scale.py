"""Many app processes into one MLflow tracking server on PostgreSQL: the highest call rate with no trace lost.

Real parts, all started here and stopped at the end: PostgreSQL (Debian's, a data directory of its
own on a loopback port), ``mlflow server --backend-store-uri postgresql://... --workers N``, the
loopback Ollama double in a process of its own, and ``--processes`` app processes
(``benchmarks/scale_app.py``), each making paced plain and streamed chats, traced by mlflow-ollama.

Routes (``--routes``):

- ``default``: MLflow's default export to the server (``MLFLOW_TRACKING_URI=http://...``);
- ``otlp``: OTLP/HTTP to the server's own ``/v1/traces``, the experiment in ``x-mlflow-experiment-id``;
- ``sqlite``: the baseline, every app process writing MLflow's local sqlite store (one shared file);
- ``untraced``: the same calls with tracing off, for the CPU a call costs without a trace.

The method is ``METHOD`` below; it is written into the report too.

    python benchmarks/scale.py [--routes sqlite,default,otlp,untraced] [--rates 5,10,20,40,80,160,320,640]
        [--seconds 60] [--refine 3] [--processes 2] [--threads 4] [--server-workers 2]
        [--app-flush all|mlflow|none] [--env KEY=VALUE] [--output docs/benchmarks/scale.md]

The defaults are the full measurement (about an hour on 2 cores); for a quick check of the
benchmark itself, ``--seconds 5 --rates 10,50 --refine 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from e2e.parts import Postgres, postgres_bin, start_mlflow_server, start_postgres  # noqa: E402

APP = REPO / "benchmarks" / "scale_app.py"
# What MLflow and OpenTelemetry log when a trace or span is dropped, or an upload fails (matched
# without regard to case). OpenTelemetry logs each of its messages at most once per 20 s
# (DuplicateFilter, opentelemetry/sdk/_shared_internal), MLflow its queue warning once per 30 s: the
# counts below say that a message appeared, not how many traces it stands for.
DROP_MESSAGES = {
    "mlflow-queue-full": "Trace export queue is full, trace will be discarded",
    "mlflow-send-failed": "Failed to send trace to MLflow backend",
    "otel-queue-full": "Queue full, dropping Span",
    "otlp-export-failed": "Failed to export spans batch",
    "otlp-retrying": "encountered while exporting spans batch, retrying",
}
METHOD = """For each route, rates per process from `--rates` are tried in ascending order (a trial: every
app process at that rate for `--seconds`, each with a fresh experiment), then `--refine` bisection
steps between the highest rate that held and the lowest that did not. A rate *holds* when every
call's trace is stored with its spans, no call failed, the processes made at least 95% of the
scheduled calls, and the final flush took at most `--max-drain` seconds (a longer flush is a
backlog that a longer run would overflow). The ladder goes on up through rates that only left a
backlog, and stops after `--beyond` rates that lost traces, to show where and how loss starts.
Each app keeps to a fixed schedule (open loop: a thread that falls behind makes its late calls at
once, never skips one) with `--threads` threads, every `--stream-every`-th call streamed, each
call its own trace; after its calls it flushes MLflow's export (the OTLP span processor included)
and reports its CPU time over all threads, from the first timed call to the end of that flush.
Stored traces are counted in the store itself, with SQL (`trace_info` rows, and traces that have
rows in `spans`), after the count has been stable for a second. The tracking server's CPU (its
workers included) and PostgreSQL's are read from /proc before and after each trial, over the
traces stored. Each app's stderr is searched for the messages MLflow and OpenTelemetry log when
they drop spans or traces; both rate-limit them (MLflow's queue warning once per 30 s,
OpenTelemetry's messages once per 20 s), so a count says a message appeared, not how many traces
it stands for. The double, the server, PostgreSQL and the apps all share this machine's cores."""
VERSIONS = ("mlflow", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "ollama", "psycopg", "sqlalchemy")


@dataclass
class Trial:
    route: str
    rate: float
    """Calls per second, per process."""
    processes: int
    seconds: float
    calls: int = 0
    errors: int = 0
    scheduled: int = 0
    traces: int = 0
    """Traces in the store."""
    traces_with_spans: int = 0
    spans: int = 0
    flush_seconds: float = 0.0
    """The slowest process's final flush."""
    exit_seconds: float = 0.0
    """From the end of the calls to the last process's exit."""
    cpu_ms_per_call: float = 0.0
    server_cpu_ms_per_trace: float | None = None
    """The tracking server's processes (workers included), from the trial's start to the final count."""
    db_cpu_ms_per_trace: float | None = None
    """PostgreSQL's processes, the same way."""
    messages: dict[str, int] = field(default_factory=dict)
    holds: bool = False
    why: str = ""

    @property
    def lost(self) -> int:
        return self.calls - self.traces_with_spans if self.route != "untraced" else 0


def _versions() -> str:
    found = []
    for name in VERSIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    bindir = postgres_bin()
    if bindir is not None and (bindir / "postgres").exists():
        found.append(
            subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
        )
    return f"Python {platform.python_version()}; " + ", ".join(found)


def _machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.1f} {:.1f} {:.1f} at the start".format(*os.getloadavg())
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({model}){memory}{load}"


@contextlib.contextmanager
def _double() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "mlflow_ollama.testing"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait()


@dataclass
class Target:
    """Where a route's traces go: the app environment for an experiment, and how to count what is stored."""

    env: Callable[[str], dict[str, str]]
    new_experiment: Callable[[], str]
    count: Callable[[str], tuple[int, int, int]]
    pids: dict[str, int] = field(default_factory=dict)
    """Processes whose CPU is measured per trial: ``server`` and ``db``."""


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its live descendants, with what they reaped; from /proc (Linux)."""
    parents: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (name) ": state, ppid, ...
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(cpu.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


_COUNT = (
    "SELECT (SELECT count(*) FROM trace_info WHERE experiment_id = {p}),"
    " (SELECT count(DISTINCT trace_id) FROM spans WHERE experiment_id = {p}),"
    " (SELECT count(*) FROM spans WHERE experiment_id = {p})"
)


def _server_target(url: str, postgres: Postgres, server_pid: int, otlp: bool) -> Target:
    from mlflow import MlflowClient

    def env(experiment: str) -> dict[str, str]:
        base = {"MLFLOW_TRACKING_URI": url, "APP_EXPERIMENT_ID": experiment}
        if not otlp:
            return base
        return {
            **base,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}",
        }

    def count(experiment: str) -> tuple[int, int, int]:
        (row,) = postgres.query(_COUNT.format(p="%s"), *([int(experiment)] * 3))
        return int(row[0]), int(row[1]), int(row[2])

    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    return Target(
        env,
        lambda: str(MlflowClient(url).create_experiment(f"scale-{time.time_ns()}")),
        count,
        {"server": server_pid, "db": postmaster},
    )


def _sqlite_target(root: Path) -> Target:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"

    def count(experiment: str) -> tuple[int, int, int]:
        with contextlib.closing(sqlite3.connect(root / "mlflow.db", timeout=60)) as connection:
            row = connection.execute(_COUNT.format(p="?"), [int(experiment)] * 3).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def new_experiment() -> str:
        name = f"scale-{time.time_ns()}"
        return str(MlflowClient(uri).create_experiment(name, artifact_location=(root / name).as_uri()))

    return Target(lambda e: {"MLFLOW_TRACKING_URI": uri, "APP_EXPERIMENT_ID": e}, new_experiment, count)


def _untraced_target() -> Target:
    return Target(lambda e: {"SCALE_TRACED": "false"}, lambda: "", lambda e: (0, 0, 0))


def run_trial(route: str, target: Target, double: str, rate: float, options: argparse.Namespace, logs: Path) -> Trial:
    trial = Trial(route, rate, options.processes, options.seconds)
    experiment = target.new_experiment()
    cpu_before = {name: tree_cpu(pid) for name, pid in target.pids.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    env.update({"OLLAMA_HOST": double, **target.env(experiment), **dict(options.env)})
    command = [sys.executable, str(APP), "--rate", str(rate), "--seconds", str(options.seconds)]
    command += ["--threads", str(options.threads), "--stream-every", str(options.stream_every)]
    command += ["--flush", options.app_flush]
    stem = f"{route}-{rate:g}"
    stderr_paths = [logs / f"{stem}-{i}.stderr" for i in range(options.processes)]
    stdout_paths = [logs / f"{stem}-{i}.stdout" for i in range(options.processes)]
    processes = []
    for out_path, err_path in zip(stdout_paths, stderr_paths, strict=True):
        with out_path.open("wb") as out, err_path.open("wb") as err:
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=err))
    exited: dict[int, float] = {}
    deadline = time.monotonic() + options.seconds + options.app_timeout
    while len(exited) < len(processes) and time.monotonic() < deadline:
        for i, process in enumerate(processes):
            if i not in exited and process.poll() is not None:
                exited[i] = time.time()
        time.sleep(0.1)
    for i, process in enumerate(processes):
        if i not in exited:
            process.kill()
            process.wait()
            trial.why = f"an app did not finish within {options.app_timeout:.0f} s after its calls"
    results = []
    for i, path in enumerate(stdout_paths):
        lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
        if lines:
            results.append(json.loads(lines[-1]))
            if i in exited:
                trial.exit_seconds = max(trial.exit_seconds, exited[i] - results[-1]["calls_ended"])
    if len(results) < len(processes) and not trial.why:
        trial.why = "an app process failed (see its stderr)"
    trial.calls = sum(r["calls"] for r in results)
    trial.errors = sum(r["errors"] for r in results)
    timed = sum(r["timed_calls"] for r in results)
    trial.scheduled = options.processes * math.ceil(rate * options.seconds)
    trial.flush_seconds = max((r["flush_seconds"] for r in results), default=0.0)
    trial.cpu_ms_per_call = 1000 * sum(r["cpu_seconds"] for r in results) / max(timed, 1)
    # The apps flushed before they printed, so what the server acknowledged is committed. Wait
    # anyway until the count is stable for a second: what is still arriving is counted, not lost.
    counts, settle = target.count(experiment), time.monotonic() + 30
    while time.monotonic() < settle:
        time.sleep(1)
        again = target.count(experiment)
        if again == counts:
            break
        counts = again
    trial.traces, trial.traces_with_spans, trial.spans = counts
    cpu = {name: 1000 * (tree_cpu(pid) - cpu_before[name]) / max(trial.traces, 1) for name, pid in target.pids.items()}
    trial.server_cpu_ms_per_trace, trial.db_cpu_ms_per_trace = cpu.get("server"), cpu.get("db")
    for path in stderr_paths:
        text = path.read_text(errors="replace")
        for name, message in DROP_MESSAGES.items():
            if found := len(re.findall(re.escape(message), text, flags=re.IGNORECASE)):
                trial.messages[name] = trial.messages.get(name, 0) + found
    problems = []
    if trial.why:
        problems.append(trial.why)
    if trial.lost:
        problems.append(f"{trial.lost:,} traces lost")
    if trial.errors:
        problems.append(f"{trial.errors} call errors")
    if timed < 0.95 * trial.scheduled:
        problems.append(f"only {timed:,} of {trial.scheduled:,} scheduled calls made")
    # With the apps' own flush partial (--app-flush), the backlog is exported at exit: judge that.
    drain, what = (trial.flush_seconds, "final flush") if options.app_flush == "all" else (trial.exit_seconds, "exit")
    if drain > options.max_drain:
        problems.append(f"backlog: {what} {drain:.1f} s")
    trial.holds = not problems
    trial.why = "; ".join(problems)
    print(
        f"{route:>8} {rate:>7g}/s x {options.processes}: {trial.calls:,} calls, {trial.traces_with_spans:,} traces "
        f"stored, flush {trial.flush_seconds:.1f} s, CPU {trial.cpu_ms_per_call:.2f} ms/call, "
        f"server {_ms(trial.server_cpu_ms_per_trace)}/trace, db {_ms(trial.db_cpu_ms_per_trace)}/trace, "
        f"{'holds' if trial.holds else trial.why} {trial.messages or ''}",
        flush=True,
    )
    return trial


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def search(route: str, target: Target, double: str, options: argparse.Namespace, logs: Path) -> list[Trial]:
    """Ascending rates until ``--beyond`` rates have lost traces (a backlog alone goes on up), then bisection."""
    trials: list[Trial] = []
    for rate in options.rates:
        trials.append(run_trial(route, target, double, rate, options, logs))
        if sum(t.lost > 0 for t in trials) >= options.beyond or (route == "untraced" and not trials[-1].holds):
            break
    for _ in range(options.refine):
        held = [t.rate for t in trials if t.holds]
        above = [t.rate for t in trials if not t.holds and t.rate > max(held, default=0)]
        if not held or not above:
            break
        rate = round(math.sqrt(max(held) * min(above)), 1)
        if rate in (max(held), min(above)):
            break
        trials.append(run_trial(route, target, double, rate, options, logs))
    return sorted(trials, key=lambda t: t.rate)


ROUTE_LABELS = {
    "sqlite": "local sqlite store, every process writing one file (baseline)",
    "default": "MLflow's default export to the server (`MLFLOW_TRACKING_URI=http://...`)",
    "otlp": "OTLP/HTTP to the server's `/v1/traces`",
    "untraced": "untraced (the calls alone)",
}


def report(trials: dict[str, list[Trial]], options: argparse.Namespace, started: str) -> str:
    p = options.processes
    lines = [
        "# Benchmark: many processes into one tracking server on PostgreSQL",
        "",
        *([options.note, ""] if options.note else []),
        f"Measured {started} on {_machine()}.",
        "",
        f"Versions: {_versions()}.",
        "",
        f"Parameters: `{' '.join(_arguments())}`: {p} app processes x {options.threads} threads, "
        f"{options.seconds:g} s per trial, one call in {options.stream_every} streamed, apps flush "
        f"`{options.app_flush}`; server `--workers {options.server_workers}`"
        + (", job execution on" if options.server_jobs else ", job execution off")
        + f"; a rate holds with no trace lost and a final flush of at most {options.max_drain:g} s."
        + (f" Extra app environment: `{' '.join(f'{k}={v}' for k, v in options.env)}`." if options.env else ""),
        "",
        "| route | highest rate that held (all processes) | client CPU per call there | first rate that did not hold |",
        "|---|---|---|---|",
    ]
    for route, runs in trials.items():
        held = [t for t in runs if t.holds]
        best = max(held, key=lambda t: t.rate) if held else None
        first_bad = min(
            (t for t in runs if not t.holds and (best is None or t.rate > best.rate)),
            key=lambda t: t.rate,
            default=None,
        )
        best_text = f"{best.rate * p:g} calls/s" if best else "none of the rates tried"
        cpu = f"{best.cpu_ms_per_call:.2f} ms" if best else "-"
        bad = f"{first_bad.rate * p:g} calls/s: {first_bad.why}" if first_bad else "none up to the highest rate tried"
        lines.append(f"| {ROUTE_LABELS[route]} | {best_text} | {cpu} | {bad} |")
    lines += [
        "",
        'Every trial (rates are per process; "stored" counts traces with their spans, read from the store with SQL):',
        "",
        "| route | rate | calls | stored | lost | call errors | final flush | exit after calls | app CPU per call "
        "| server CPU per trace | PostgreSQL CPU per trace | drop messages in the apps' stderr | holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route, runs in trials.items():
        for t in runs:
            messages = ", ".join(f"{DROP_MESSAGES[k]!r} x{n}" for k, n in t.messages.items()) or "none"
            stored = "-" if route == "untraced" else f"{t.traces_with_spans:,}"
            if t.traces != t.traces_with_spans and route != "untraced":
                stored += f" ({t.traces:,} trace rows)"
            lost = "-" if route == "untraced" else f"{t.lost:,} ({t.lost / max(t.calls, 1):.1%})"
            holds = "yes" if t.holds else f"no: {t.why}"
            lines.append(
                f"| {route} | {p} x {t.rate:g}/s | {t.calls:,} | {stored} | {lost} | {t.errors} "
                f"| {t.flush_seconds:.1f} s | {t.exit_seconds:.1f} s | {t.cpu_ms_per_call:.2f} ms "
                f"| {_ms(t.server_cpu_ms_per_trace)} | {_ms(t.db_cpu_ms_per_trace)} | {messages} | {holds} |"
            )
    lines += ["", "## Method", "", METHOD, "", "Drop messages searched for:", ""]
    lines += [f"- `{name}`: {message!r}" for name, message in DROP_MESSAGES.items()]
    return "\n".join(lines) + "\n"


def _arguments() -> list[str]:
    """This run's command-line arguments, without the note (it heads the report already)."""
    arguments, skip = [], False
    for argument in sys.argv[1:]:
        if skip or argument.startswith("--note="):
            skip = False
            continue
        skip = argument == "--note"
        if not skip:
            arguments.append(argument)
    return arguments


def _env_pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--routes", default="sqlite,default,otlp,untraced")
    parser.add_argument("--rates", default="5,10,20,40,80,160,320,640", help="calls per second per process, ascending")
    parser.add_argument("--seconds", type=float, default=60.0, help="per trial")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per process")
    parser.add_argument("--stream-every", type=int, default=2)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument(
        "--app-flush",
        choices=["all", "mlflow", "none"],
        default="all",
        help="what the apps flush after their calls: everything (default), only mlflow.flush_trace_async_logging()"
        " as most apps would, or nothing (left to the exit)",
    )
    parser.add_argument("--server-jobs", action="store_true", help="leave the server's job runners on")
    parser.add_argument("--refine", type=int, default=3, help="bisection steps after the ladder")
    parser.add_argument("--beyond", type=int, default=1, help="stop the ladder after this many rates lost traces")
    parser.add_argument("--max-drain", type=float, default=5.0, help="seconds of final flush a holding rate may take")
    parser.add_argument("--app-timeout", type=float, default=600.0, help="seconds an app may take after its calls")
    parser.add_argument("--env", type=_env_pair, action="append", default=[], help="KEY=VALUE for the apps")
    parser.add_argument("--output", help="write the markdown report here")
    parser.add_argument("--note", help="a paragraph put at the top of the report")
    parser.add_argument("--json", help="write every trial as JSON here")
    options = parser.parse_args()
    options.rates = [float(r) for r in options.rates.split(",")]
    routes = options.routes.split(",")
    unknown = set(routes) - set(ROUTE_LABELS)
    if unknown:
        parser.error(f"unknown routes: {', '.join(sorted(unknown))}")
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    machine = _machine()
    print(machine, flush=True)
    trials: dict[str, list[Trial]] = {}
    logs = Path(tempfile.mkdtemp(prefix="mlflow-ollama-scale-"))
    print(f"app logs in {logs}", flush=True)
    with contextlib.ExitStack() as stack:
        server_url, server_pid, postgres = "", 0, None
        if {"default", "otlp"} & set(routes):
            postgres = stack.enter_context(start_postgres())
            jobs = {} if options.server_jobs else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
            server = stack.enter_context(start_mlflow_server(postgres.uri, options.server_workers, jobs))
            server_url, server_pid = server.url, server.process.pid
        for route in routes:
            with _double() as double:
                if route == "sqlite":
                    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlflow-ollama-scale-sqlite-")))
                    target = _sqlite_target(root)
                elif route == "untraced":
                    target = _untraced_target()
                else:
                    assert postgres is not None
                    target = _server_target(server_url, postgres, server_pid, otlp=route == "otlp")
                trials[route] = search(route, target, double, options, logs)
    text = report(trials, options, started)
    print(text)
    if options.output:
        Path(options.output).write_text(text, encoding="utf-8")
    if options.json:
        raw = {route: [{**asdict(t), "lost": t.lost} for t in runs] for route, runs in trials.items()}
        Path(options.json).write_text(json.dumps(raw, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
