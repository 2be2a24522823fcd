"""What the local-model signals add to each traced call, with model details off and on.

The always-on signals (``ollama.model_load`` and its reason, the context's fill, a cut prompt, the
server's other time) are work done at the span's start and end: noting the call in the process's
memory of its models, then reading the reply. Model details, once looked up, are a cache read. A
whole traced call costs hundreds of µs and varies by tens from run to run, so this times the
added work alone, as the span does it, on a real reply's shape; and, for scale, a whole traced
chat against the loopback double with details off and on. Median of ``--repeats`` runs.

    python benchmarks/signals.py [--output docs/benchmarks/signals.md]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import tempfile
import timeit
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/bench.db")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")

import mlflow
import ollama
from peers import time_signals, traced_call

import mlflow_ollama
from mlflow_ollama import _model_details as md
from mlflow_ollama import _signals as s
from mlflow_ollama.testing import OllamaDouble


def _per_call_us(function: Any, number: int, repeats: int) -> float:
    return statistics.median(timeit.repeat(function, number=number, repeat=repeats)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with OllamaDouble() as double:
        client = ollama.Client(host=double.url)
        mlflow.set_experiment("bench-signals")
        mlflow_ollama.autolog()
        key = s.model_key(double.url, "llama3.2")
        assert key is not None
        cases = {
            "always-on signals, alone: a generate with num_ctx that loads (every signal set)": lambda: client.generate(
                model="llama3.2", prompt="Describe a rabbit", options={"num_ctx": 4096}
            ),
            "always-on signals, alone: a plain chat": lambda: client.chat(
                model="llama3.2", messages=[{"role": "user", "content": "hello"}]
            ),
        }
        for label, call in cases.items():
            double.scheduler.unload_all()
            traced, response = traced_call(call)
            rows.append((label, _per_call_us(time_signals(traced, response, key), args.number, args.repeats)))
        lookup = md.Lookup.of(client, double.url, "llama3.2")
        assert lookup is not None
        md.details.attributes(lookup, loaded=True)  # looked up once: from now on, the cache
        rows.append(
            (
                "model details, cached, alone",
                _per_call_us(lambda: md.details.attributes(lookup, loaded=False), args.number, args.repeats),
            )
        )
        messages = [{"role": "user", "content": "hello"}]

        def chat() -> None:
            client.chat(model="llama3.2", messages=messages)

        for label, details in (("a whole traced chat, details off", False), ("a whole traced chat, details on", True)):
            mlflow_ollama.autolog(model_details=details)
            chat()  # the lookups, made once
            runs = []
            for _ in range(args.repeats):
                runs.append(timeit.timeit(chat, number=args.calls) / args.calls * 1e6)
                mlflow.flush_trace_async_logging()
            rows.append((label, statistics.median(runs)))
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "ollama"))
    lines = [
        "# Benchmark: local-model signals",
        "",
        "What the signals of [why was this call slow](../signals.md) add to a traced call. The first three",
        "rows time the added work alone, the span's own code on a real reply of the double (median of "
        f"{args.repeats} runs of {args.number:,}); the last two a whole traced",
        f"chat against the loopback double (median of {args.repeats} runs of {args.calls} calls, the export",
        "drained between runs), for scale: the difference between them is within their run-to-run spread.",
        "Written by `benchmarks/signals.py`.",
        "",
        "| what | µs per call |",
        "|---|---:|",
        *(f"| {label} | {value:.1f} |" for label, value in rows),
        "",
        f"{versions}; Python {platform.python_version()}, {os.cpu_count()} CPUs; {datetime.date.today().isoformat()}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
