"""Tracing into a tracking server that is down: what the calls cost, and what the app's exit costs.

Each configuration runs in its own process (MLflow reads its settings at start), making ``--calls``
plain chats against the loopback double in another process, after 5 warm-up calls. The child
reports the median and p90 latency per call; the parent measures how long the child takes to exit
after its last call, which is where MLflow flushes its export queue and retries the uploads.

Configurations: untraced; traced into a local sqlite store; traced into a server whose port
refuses connections, and into one that accepts but never answers (a hung server or a firewall that
drops packets), each with MLflow's default HTTP retries, with no retries and a 5 s timeout, and
with those and mlflow-ollama's exit bound (``MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT=10``).

    python benchmarks/unreachable_server.py [--calls 200] [--output docs/benchmarks/unreachable.md]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

# MLflow's defaults are 7 retries with backoff factor 2 and a 120 s timeout. docs/remote.md
# recommends no retries and a 5 s timeout, the settings measured here (and the doctor's).
NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# And mlflow-ollama's bound on the exit flush, which the same page recommends with them.
BOUNDED = {**NO_RETRIES, "MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT": "10"}
EXIT_CAP = 300.0  # seconds we wait for a child to exit before killing it


def child(host: str, calls: int, traced: bool) -> None:
    """Make the calls; print latencies as JSON. Runs in the configured process."""
    if traced:
        import mlflow_ollama

        mlflow_ollama.autolog()
    import ollama

    client = ollama.Client(host=host)
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    for _ in range(5):
        client.chat(model="llama3.2", messages=messages)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        client.chat(model="llama3.2", messages=messages)
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    result = {"median_ms": 1e3 * statistics.median(seconds), "p90_ms": 1e3 * seconds[int(0.9 * len(seconds))]}
    print(json.dumps(result), flush=True)


def run(name: str, env: dict[str, str], host: str, calls: int, traced: bool = True) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", host, "--calls", str(calls)] + ([] if traced else ["--untraced"])
    full_env = {**os.environ, "MLFLOW_MODEL_CATALOG_URI": "", **env}
    process = subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    calls_done = time.perf_counter()
    try:
        _, stderr = process.communicate(timeout=EXIT_CAP)
        exit_s: float | None = time.perf_counter() - calls_done
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        exit_s = None
    if not line:
        raise RuntimeError(f"{name}: the child failed:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(line)
    result.update(name=name, exit_s=exit_s, rc=process.returncode, warnings=stderr.count("Failed to send trace"))
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--output")
    parser.add_argument("--child")
    parser.add_argument("--untraced", action="store_true")
    options = parser.parse_args()
    if options.child:
        child(options.child, options.calls, traced=not options.untraced)
        return

    double = subprocess.Popen([sys.executable, "-m", "mlflow_ollama.testing"], stdout=subprocess.PIPE, text=True)
    assert double.stdout is not None
    host = double.stdout.readline().strip()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(1024)  # accepts into the backlog, never reads or answers
    refused_uri = f"http://127.0.0.1:{refused.getsockname()[1]}"
    blackhole_uri = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    sqlite_uri = f"sqlite:///{tempfile.mkdtemp()}/unreachable.db"
    try:
        rows = [
            run("untraced", {}, host, options.calls, traced=False),
            run("traced, local sqlite store", {"MLFLOW_TRACKING_URI": sqlite_uri}, host, options.calls),
            run(
                "server refuses connections, MLflow defaults", {"MLFLOW_TRACKING_URI": refused_uri}, host, options.calls
            ),
            run(
                "server refuses connections, no retries, 5 s timeout",
                {"MLFLOW_TRACKING_URI": refused_uri, **NO_RETRIES},
                host,
                options.calls,
            ),
            run("server never answers, MLflow defaults", {"MLFLOW_TRACKING_URI": blackhole_uri}, host, options.calls),
            run(
                "server never answers, no retries, 5 s timeout",
                {"MLFLOW_TRACKING_URI": blackhole_uri, **NO_RETRIES},
                host,
                options.calls,
            ),
            run(
                "server refuses connections, no retries, 5 s timeout, exit bound 10 s",
                {"MLFLOW_TRACKING_URI": refused_uri, **BOUNDED},
                host,
                options.calls,
            ),
            run(
                "server never answers, no retries, 5 s timeout, exit bound 10 s",
                {"MLFLOW_TRACKING_URI": blackhole_uri, **BOUNDED},
                host,
                options.calls,
            ),
        ]
    finally:
        double.terminate()
        refused.close()
        blackhole.close()
    report = render(rows, options.calls)
    print(report)
    if options.output:
        with open(options.output, "w", encoding="utf-8") as out:
            out.write(report)


def render(rows: list[dict[str, Any]], calls: int) -> str:
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "ollama", "mlflow-ollama"))
    lines = [
        "# Benchmark: a tracking server that is down",
        "",
        f"Written by `benchmarks/unreachable_server.py` on {datetime.date.today()}: Python "
        f"{platform.python_version()}, {versions}, {os.cpu_count()} CPUs. {calls} plain chats per "
        "configuration against the loopback double, each configuration in its own process, after 5 "
        f"warm-up chats (so {calls + 5} traces to send). "
        f"'Exit' is the time from the last call to the end of the process (capped at {EXIT_CAP:.0f} s). "
        f"'No retries, 5 s timeout': {', '.join(f'`{k}={v}`' for k, v in NO_RETRIES.items())}; "
        "'exit bound 10 s': `MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT=10` as well.",
        "",
        "| configuration | median per call | p90 per call | exit after last call | exit code | "
        "'Failed to send trace' warnings |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        exit_s = f"{row['exit_s']:.1f} s" if row["exit_s"] is not None else f"> {EXIT_CAP:.0f} s (killed)"
        lines.append(
            f"| {row['name']} | {row['median_ms']:.2f} ms | {row['p90_ms']:.2f} ms | {exit_s} | {row['rc']} | "
            f"{row['warnings']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
