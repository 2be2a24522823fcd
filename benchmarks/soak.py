"""Sustained load: calls made against traces stored, with MLflow's default asynchronous export.

Runs for ``--seconds`` (default 60) against the loopback double in another process, from
``--threads`` threads mixing plain and streamed chats, each call its own trace. Then flushes
MLflow's export queue and counts the traces in the store. Reports calls made, traces stored,
traces lost and the throughput, for MLflow's default queue and, with ``--queue-size``, another.

    python benchmarks/soak.py [--seconds 60] [--threads 8] [--output docs/benchmarks/soak.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

# Before MLflow is imported: its own defaults for export, a private store.
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/soak.db")
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")

import mlflow
import ollama

import mlflow_ollama


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each thread waits between calls")
    parser.add_argument("--output", help="also append the result to this file")
    options = parser.parse_args()

    process = subprocess.Popen([sys.executable, "-m", "mlflow_ollama.testing"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    experiment = mlflow.set_experiment("soak").experiment_id
    mlflow_ollama.autolog()
    made = [0] * options.threads
    failed = [0] * options.threads
    deadline = time.monotonic() + options.seconds

    def work(index: int) -> None:
        client = ollama.Client(host=url)
        messages = [{"role": "user", "content": f"soak from thread {index}"}]
        while time.monotonic() < deadline:
            try:
                if made[index] % 2:
                    list(client.chat(model="llama3.2", messages=messages, stream=True))
                else:
                    client.chat(model="llama3.2", messages=messages)
            except Exception:
                failed[index] += 1
            made[index] += 1
            if options.pause:
                time.sleep(options.pause)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(options.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    flush_started = time.monotonic()
    mlflow.flush_trace_async_logging()
    flush_seconds = time.monotonic() - flush_started
    process.terminate()
    process.wait()

    stored = 0
    token = None
    while True:
        page = mlflow.MlflowClient().search_traces(experiment_ids=[experiment], max_results=500, page_token=token)
        stored += len(page)
        token = page.token
        if not token:
            break
    calls = sum(made)
    lost = calls - stored
    queue = os.environ.get("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", "1000 (default)")
    text = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"mlflow {mlflow.__version__}; sqlite store, asynchronous export, queue size {queue}.",
            "",
            "| duration | threads | pause | calls made | call errors | traces stored | traces lost | calls/s "
            "| final flush |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {elapsed:.0f} s | {options.threads} | {options.pause} s | {calls:,} | {sum(failed)} | {stored:,} | "
            f"{lost:,} ({lost / max(calls, 1):.1%}) | {calls / elapsed:.0f} | {flush_seconds:.1f} s |",
        ]
    )
    print(text)
    if options.output:
        new = not os.path.exists(options.output)
        with open(options.output, "a", encoding="utf-8") as handle:
            handle.write((_HEADER if new else "") + text + "\n\n")


_HEADER = """# Benchmark: soak, a minute of calls into the local sqlite store

Written by `benchmarks/soak.py` (`nox -s bench`): threads making plain and streamed traced chats
against the loopback double for a minute, with MLflow's defaults (sqlite store, asynchronous
export), then how many traces were stored and how long the final flush took. One table per run.

"""
"""Written once, when the page is new: each run appends its table."""


if __name__ == "__main__":
    main()
