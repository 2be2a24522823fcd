"""What reaches the store when an Ollama batch job runs its calls in worker processes.

Runs ``tests/e2e/workers_app.py`` (12 chats in 3 workers against the loopback double) once per way
of running work in other processes: ``multiprocessing`` pools by fork, spawn and forkserver, each
ended with ``close()`` + ``join()`` and with the ``with`` form (``terminate()``),
``ProcessPoolExecutor``, and plain ``os.fork()`` children ending with ``sys.exit`` or ``os._exit``;
each with and without a traced warm-up call in the parent, by MLflow's default export (a sqlite
store) and by OTLP (a loopback receiver). Each case is traced two ways:

- ``mlflow``: MLflow alone (``mlflow.start_span`` around each call, no mlflow-ollama): MLflow's own
  behaviour, what any of its autologgers gets;
- ``ours``: ``mlflow_ollama.autolog()`` in the parent (``initializer=`` for spawned workers).

It counts the workers' traces that were stored (the warm-up's excluded), the seconds the workers took
to finish and exit, and the workers killed because they did not exit within ``--exit-timeout``.

    python benchmarks/workers.py --output docs/benchmarks/workers.md [--json FILE] [--only ours]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from e2e.parts import run_workers_app  # noqa: E402

from mlflow_ollama.testing import OllamaDouble  # noqa: E402

CASES: list[tuple[str, str, str, str]] = [
    *((f"pool {start}, close+join", "pool", start, "close") for start in ("fork", "spawn", "forkserver")),
    *((f"pool {start}, with", "pool", start, "with") for start in ("fork", "spawn", "forkserver")),
    ("ProcessPoolExecutor fork", "executor", "fork", "with"),
    ("ProcessPoolExecutor spawn", "executor", "spawn", "with"),
    ("os.fork, sys.exit", "fork", "fork", "sys-exit"),
    ("os.fork, os._exit", "fork", "fork", "os-exit"),
    ("os.fork, killed (SIGKILL) after the calls", "fork", "fork", "kill"),
]
"""(label, --how, --start, --ending)."""


@dataclass
class Result:
    case: str
    tracer: str
    route: str
    warm_up: bool
    calls: int
    stored: int
    workers_seconds: float
    killed: int
    error: str = ""


def run_case(
    double: OllamaDouble, case: tuple[str, str, str, str], tracer: str, route: str, warm_up: bool, options: Any
) -> Result:
    """One run of the job, with a store (or receiver) of its own."""
    label, how, start, ending = case
    try:
        run = run_workers_app(double, how, start, ending, tracer, route, warm_up, options.calls, options.exit_timeout)
    except (AssertionError, subprocess.TimeoutExpired) as error:
        return Result(label, tracer, route, warm_up, options.calls, -1, -1, 0, str(error)[-400:])
    return Result(label, tracer, route, warm_up, run.calls, run.stored, run.workers_seconds, run.killed)


_PER_CALL = """
import os, statistics, sys, time
import mlflow, mlflow_ollama
mlflow_ollama.autolog()
import ollama
mlflow.set_experiment("cost")
client = ollama.Client(host=os.environ["OLLAMA_HOST"])
timings = []
for i in range(int(sys.argv[1])):
    started = time.perf_counter()
    client.chat(model="llama3.2", messages=[{"role": "user", "content": f"Summarise document {i}."}])
    timings.append(time.perf_counter() - started)
print(statistics.median(timings[5:]) * 1000, statistics.quantiles(timings[5:], n=10)[-1] * 1000)
"""


def export_cost(double: OllamaDouble, calls: int = 105) -> dict[str, tuple[float, float]]:
    """Median and p90 ms per traced call, as the caller sees it, with MLflow's export asynchronous and synchronous."""
    found = {}
    for name, value in (("asynchronous (default)", "true"), ("synchronous", "false")):
        tmp = Path(tempfile.mkdtemp(prefix="mlflow-ollama-cost-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
        env.update({"OLLAMA_HOST": double.url, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"})
        env["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = value
        done = subprocess.run(
            [sys.executable, "-c", _PER_CALL, str(calls)], env=env, capture_output=True, text=True, check=True
        )
        median, p90 = (float(x) for x in done.stdout.split())
        found[name] = (median, p90)
    return found


def table(results: list[Result], tracer: str) -> list[str]:
    lines = [
        "| how the work is run | warm-up in parent | export | stored | workers finish and exit | killed (hung) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        if r.tracer != tracer:
            continue
        stored = f"{r.stored} of {r.calls}" if r.stored >= 0 else f"failed: {r.error[:80]}"
        seconds = f"{r.workers_seconds:.2f} s" if r.workers_seconds >= 0 else "-"
        route = "MLflow's default (sqlite)" if r.route == "mlflow" else "OTLP"
        lines.append(
            f"| {r.case} | {'yes' if r.warm_up else 'no'} | {route} | {stored} | {seconds} | {r.killed or ''} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", help="write the Markdown report here")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--exit-timeout", type=float, default=20, help="kill a worker still there after this")
    parser.add_argument("--only", choices=["ours", "mlflow"], help="one tracer only")
    parser.add_argument("--routes", default="mlflow,otlp")
    parser.add_argument("--cases", help="comma-separated substrings of case labels to run")
    options = parser.parse_args()
    tracers = [options.only] if options.only else ["mlflow", "ours"]
    cases = [c for c in CASES if not options.cases or any(s in c[0] for s in options.cases.split(","))]
    results = []
    with OllamaDouble() as double:
        cost = export_cost(double)
        print(json.dumps(cost), flush=True)
        for tracer in tracers:
            for route in options.routes.split(","):
                for case in cases:
                    for warm_up in (False, True):
                        r = run_case(double, case, tracer, route, warm_up, options)
                        results.append(r)
                        print(json.dumps(asdict(r)), flush=True)
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "ollama", "opentelemetry-sdk"))
    lines = [
        "# Worker processes: what is stored",
        "",
        f"`python benchmarks/workers.py` ({options.calls} chats in 3 workers against the loopback double; "
        f"Python {platform.python_version()}, {versions}; a worker still there {options.exit_timeout:.0f} s "
        "after the calls is killed and counted as hung). Method and meaning: `docs/workers.md`.",
    ]
    for tracer in tracers:
        title = "MLflow alone (no mlflow-ollama)" if tracer == "mlflow" else "With mlflow-ollama"
        lines += ["", f"## {title}", "", *table(results, tracer)]
    lines += [
        "",
        "## What synchronous export costs a call",
        "",
        "`MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=false` writes each trace before the traced call returns, so a",
        "worker killed outright (SIGKILL) loses nothing it finished. Per traced chat against the double,",
        "as the caller sees it (100 calls after 5 warm-ups, sqlite store, one process):",
        "",
        "| MLflow's export | median | p90 |",
        "|---|---:|---:|",
        *(f"| {name} | {median:.1f} ms | {p90:.1f} ms |" for name, (median, p90) in cost.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if options.output:
        Path(options.output).write_text(text)
    if options.json:
        Path(options.json).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")


if __name__ == "__main__":
    main()
