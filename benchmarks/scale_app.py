"""One app process of the scale benchmark: paced chats against ``OLLAMA_HOST``, traced by mlflow-ollama.

Configured like a user's service, only through the environment: ``MLFLOW_TRACKING_URI`` (a server
or a sqlite file), the ``OTEL_EXPORTER_OTLP_TRACES_*`` variables for the OTLP route, and
``APP_EXPERIMENT_ID``. ``SCALE_TRACED=false`` runs the same calls untraced (the CPU baseline).

Each of ``--threads`` threads keeps to a fixed schedule (open loop): call ``k`` of thread ``i`` is due
at ``start + (i + k * threads) / rate``; a thread that falls behind makes its calls at once, never
skips one, so a process that cannot keep up shows as fewer calls than scheduled. Every other call
(``--stream-every 2``) is a streamed chat; each call is its own trace. After ``--seconds`` the app
flushes MLflow's export (its async queue and every span processor, the OTLP one included), then
prints one JSON line: calls, errors, the flush time, and the process's CPU time over all threads.

    python benchmarks/scale_app.py --rate 20 --seconds 20 [--threads 4] [--stream-every 2]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any

TRACED = os.environ.get("SCALE_TRACED", "true").lower() not in ("0", "false", "no", "off")
if TRACED:
    import mlflow_ollama

    mlflow_ollama.autolog()

import mlflow  # noqa: E402
import ollama  # noqa: E402

MODEL = "llama3.2"
WARM_UP = 4
"""Calls made before the clock starts (traced, and counted): connections, experiment, exporter set up."""


def flush(how: str = "all") -> None:
    """Export what is still queued: ``all`` of it, or only what ``mlflow`` flushes, or ``none``.

    ``mlflow.flush_trace_async_logging()`` drains MLflow's own processors and its async queue; the
    OTLP route's ``BatchSpanProcessor`` is not among them (MLflow 3.17.2), so ``all`` also flushes
    the tracer provider. With ``mlflow`` or ``none``, what is left is exported at interpreter exit,
    where OpenTelemetry gives its processor 30 s and then drops the rest without a word.
    """
    if how == "none":
        return
    mlflow.flush_trace_async_logging()
    if how == "mlflow":
        return
    from mlflow.tracing import provider as tracing

    holder = getattr(tracing, "provider", None)
    current: Any = holder.get() if holder is not None else None
    if current is not None and hasattr(current, "force_flush"):
        current.force_flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, required=True, help="calls per second, this process")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--stream-every", type=int, default=2, help="every n-th call is streamed (0: none)")
    parser.add_argument("--flush", choices=["all", "mlflow", "none"], default="all", help="after the calls")
    options = parser.parse_args()
    if experiment := os.environ.get("APP_EXPERIMENT_ID"):
        mlflow.set_experiment(experiment_id=experiment)
    host = os.environ["OLLAMA_HOST"]
    messages = [{"role": "user", "content": "Why is the sky blue?"}]

    def call(client: ollama.Client, n: int) -> None:
        if options.stream_every and n % options.stream_every == options.stream_every - 1:
            for _ in client.chat(model=MODEL, messages=messages, stream=True):
                pass
        else:
            client.chat(model=MODEL, messages=messages)

    warm = ollama.Client(host=host)
    for n in range(WARM_UP):
        call(warm, n)
    flush()

    made = [0] * options.threads
    failed = [0] * options.threads
    lag = [0.0] * options.threads
    start = time.monotonic() + 0.05
    end = start + options.seconds
    cpu_start = time.process_time()

    def work(index: int) -> None:
        client = ollama.Client(host=host)
        k = 0
        while (due := start + (index + k * options.threads) / options.rate) < end:
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            else:
                lag[index] = max(lag[index], -wait)
            try:
                call(client, k)
            except Exception:
                failed[index] += 1
            made[index] += 1
            k += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(options.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls_seconds = time.monotonic() - start
    calls_ended = time.time()
    cpu_calls = time.process_time() - cpu_start
    flushed = time.monotonic()
    flush(options.flush)
    flush_seconds = time.monotonic() - flushed
    cpu = time.process_time() - cpu_start
    result = {
        "calls": sum(made) + WARM_UP,
        "timed_calls": sum(made),
        "errors": sum(failed),
        "seconds": calls_seconds,
        "calls_ended": calls_ended,
        "max_lag": max(lag),
        "flush_seconds": flush_seconds,
        "cpu_seconds": cpu,
        "cpu_calls_seconds": cpu_calls,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
