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

import mlflow_ollama
from mlflow_ollama import _model_details as md
from mlflow_ollama import _signals as s
from mlflow_ollama._config import load_threshold_ns
from mlflow_ollama._model_loads import history
from mlflow_ollama.testing import OllamaDouble

# The final line of a generate reply, with the request that asked for it (num_ctx set).
INPUTS: dict[str, Any] = {"model": "llama3.2", "prompt": "Describe a rabbit", "options": {"num_ctx": 4096}}
REPLY: dict[str, Any] = {
    "done_reason": "stop",
    "context": {"length": 60},
    "total_duration": 7632288875,
    "load_duration": 3380045000,
    "prompt_eval_count": 17,
    "prompt_eval_duration": 1595137958,
    "eval_count": 45,
    "eval_duration": 2651183208,
}
KEY = ("http://127.0.0.1:11434", "llama3.2:latest")


def _signals_alone() -> None:
    """What a span does for the always-on signals: note the call, read the reply, end the visit."""
    visit = history.begin(KEY, s.load_options(INPUTS), INPUTS.get("keep_alive"))
    found: dict[str, Any] = {}
    load = s.model_load(REPLY, load_threshold_ns())
    if load is not None:
        found[s.MODEL_LOAD] = load
        if load:
            found[s.MODEL_LOAD_REASON] = visit.reason()
    found.update(s.context_signals(INPUTS, REPLY))
    found[s.PROMPT_TRUNCATED] = s.prompt_truncated("generate", INPUTS, REPLY)
    found[s.OTHER_DURATION] = s.other_duration(REPLY)
    history.end(visit)


def _per_call_us(function: Any, number: int, repeats: int) -> float:
    return statistics.median(timeit.repeat(function, number=number, repeat=repeats)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows = [("always-on signals, alone", _per_call_us(_signals_alone, args.number, args.repeats))]

    with OllamaDouble() as double:
        client = ollama.Client(host=double.url)
        lookup = md.Lookup.of(client, double.url, "llama3.2")
        assert lookup is not None
        md.details.attributes(lookup, loaded=True)  # looked up once: from now on, the cache
        rows.append(
            (
                "model details, cached, alone",
                _per_call_us(lambda: md.details.attributes(lookup, loaded=False), args.number, args.repeats),
            )
        )
        mlflow.set_experiment("bench-signals")
        mlflow_ollama.autolog()
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
        "What the signals of [why was this call slow](../signals.md) add to a traced call. The first two",
        "rows time the added work alone, as the span does it (median of "
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
