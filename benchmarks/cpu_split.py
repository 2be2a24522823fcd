"""Where the CPU of a traced call goes, every thread counted, with MLflow's OTLP export running.

In one process, the SDK's HTTP client replaced by a stub that returns a canned response (no
network), MLflow exporting over OTLP/HTTP to a loopback sink in the background, as in production.
For a short chat and a 20-message history with 5 tools, interleaved rounds of these paths:

- ``sdk``: the SDK call, untraced;
- ``bare_span``: inside a bare MLflow span that records nothing (MLflow's floor);
- ``data_encoded``: the same span given exactly the attributes ``mlflow_ollama`` records, already
  JSON text, set in one call (what MLflow and OpenTelemetry do with our data, and its export);
- ``data_ours``: the same attributes as Python values, through the plugin's own writer (adds the
  JSON encoding);
- ``mlflow_ollama``: the call traced by the plugin (adds the mapping and the wrappers).

For each: the caller thread's CPU (``pthread_getcpuclockid``) while the calls run, and the
process's CPU (all threads) up to the end of a final flush of the export; the difference is the
background threads' (span processor, OTLP encoding and sending). The differences between the
paths split our added CPU into: MLflow's bare span; MLflow and OpenTelemetry handling what we set,
on the caller thread and in the export; our JSON encoding; and our own code. Then a profile of
every thread (yappi, CPU clock) of the traced calls, by package.

    python benchmarks/cpu_split.py [--calls 1000] [--rounds 5] [--output docs/benchmarks/cpu_split.md]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from peers import HISTORY, MODEL, SHORT, TOOLS, _mlflow_drain, export_to_sink, in_bare_span, stub_client

PATHS = ("sdk", "bare_span", "data_encoded", "data_ours", "mlflow_ollama")
CASES = ("short", "history")
Result = dict[str, dict[str, dict[str, float]]]
"""case -> path -> {"caller": µs, "process": µs} per call."""


def _calls(client: Any) -> dict[str, Callable[[], Any]]:
    return {
        "short": lambda: client.chat(model=MODEL, messages=SHORT),
        "history": lambda: client.chat(model=MODEL, messages=HISTORY, tools=TOOLS),
    }


def _recorded(call: Callable[[], Any]) -> dict[str, Any]:
    """Every attribute the plugin sets on this call's span, as Python values (MLflow's own excepted)."""
    import mlflow_ollama
    from mlflow_ollama import _spans

    written: list[dict[str, Any]] = []
    original = _spans._set_attributes

    def keep(span: Any, attributes: dict[str, Any]) -> None:
        written.append(dict(attributes))
        original(span, attributes)

    mlflow_ollama.autolog()
    _spans._set_attributes = keep
    try:
        call()
    finally:
        _spans._set_attributes = original
        mlflow_ollama.revert()
    return {k: v for attributes in written for k, v in attributes.items()}


def _paths(call: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    import mlflow
    from mlflow.entities import SpanType

    from mlflow_ollama import _spans

    attributes = _recorded(call)
    encoded = {k: _spans._encode(v) for k, v in attributes.items()}

    def data_encoded() -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type=SpanType.CHAT_MODEL)
        cast(Any, span)._span.set_attributes(encoded)
        result = call()
        span.end()
        return result

    def data_ours() -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type=SpanType.CHAT_MODEL)
        _spans._set_attributes(span, attributes)
        result = call()
        span.end()
        return result

    return {"sdk": call, "bare_span": in_bare_span(call), "data_encoded": data_encoded, "data_ours": data_ours}


def measure(calls: int, rounds: int) -> Result:
    import mlflow

    import mlflow_ollama

    mlflow.set_experiment("bench-cpu-split")
    me = time.pthread_getcpuclockid(threading.get_ident())
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    for case, call in _calls(stub_client()).items():
        paths = {**_paths(call), "mlflow_ollama": call}
        samples[case] = {p: {"caller": [], "process": []} for p in PATHS}
        for round_ in range(rounds + 1):  # round 0 warms up
            order = list(PATHS)
            random.shuffle(order)
            for path in order:
                if path == "mlflow_ollama":
                    mlflow_ollama.autolog()
                _mlflow_drain()
                gc.collect()
                process, caller = time.process_time_ns(), time.clock_gettime_ns(me)
                run = paths[path]
                for _ in range(calls):
                    run()
                caller = time.clock_gettime_ns(me) - caller
                _mlflow_drain()  # the export of these spans is part of their cost
                process = time.process_time_ns() - process
                if path == "mlflow_ollama":
                    mlflow_ollama.revert()
                if round_:
                    samples[case][path]["caller"].append(caller / calls / 1e3)
                    samples[case][path]["process"].append(process / calls / 1e3)
    return {
        case: {path: {k: statistics.median(v) for k, v in values.items()} for path, values in paths_.items()}
        for case, paths_ in samples.items()
    }


def profile(calls: int) -> dict[str, Any]:
    """yappi, CPU clock, every thread, over ``calls`` traced history calls: self time by package."""
    import yappi

    import mlflow_ollama

    call = _calls(stub_client())["history"]
    mlflow_ollama.autolog()
    for _ in range(100):
        call()
    _mlflow_drain()
    yappi.set_clock_type("cpu")
    yappi.clear_stats()
    yappi.start(builtins=True)
    for _ in range(calls):
        call()
    _mlflow_drain()
    yappi.stop()
    mlflow_ollama.revert()
    groups: dict[str, float] = {}
    rows = []
    for stat in yappi.get_func_stats():
        module = stat.module or ""
        group = next(
            (name for name, marker in _GROUPS if marker in module),
            "Python builtins and standard library",
        )
        groups[group] = groups.get(group, 0.0) + stat.tsub
        rows.append((stat.tsub, stat.ttot, stat.ncall, _relative(module), stat.lineno, stat.name))
    threads = {t.name: t.ttot for t in yappi.get_thread_stats()}
    rows.sort(reverse=True)
    return {"groups": groups, "top": rows[:25], "threads": threads, "calls": calls}


_GROUPS = (
    ("mlflow-ollama's code", "mlflow_ollama"),
    ("OTLP encoding and export", "opentelemetry/exporter"),
    ("OpenTelemetry SDK", "opentelemetry"),
    ("MLflow", "/mlflow/"),
    ("the Ollama SDK", "/ollama/"),
    ("pydantic, httpx", "pydantic"),
    ("pydantic, httpx", "httpx"),
    ("protobuf", "protobuf"),
)


def _relative(path: str) -> str:
    """A profiled file as a reader can find it: from site-packages, or from the repository's root."""
    if "site-packages/" in path:
        return path.split("site-packages/")[-1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/"
    return path.removeprefix(root)


def report(result: Result, prof: dict[str, Any], calls: int, rounds: int) -> str:
    versions = ", ".join(
        f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "ollama", "opentelemetry-sdk", "mlflow-ollama")
    )
    lines = [
        "# Benchmark: where a traced call's CPU goes, export included",
        "",
        f"`python benchmarks/cpu_split.py` ({calls:,} calls a path, {rounds} interleaved rounds, medians) on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {versions}. "
        "In one process, stub HTTP client, MLflow's OTLP export to a loopback sink running; method in the "
        "script's docstring.",
        "",
        "| per call, µs | short: caller thread | short: all threads | history: caller thread | history: all threads |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "sdk": "the SDK call, untraced",
        "bare_span": "+ a bare MLflow span",
        "data_encoded": "+ our attributes, already JSON, set in one call",
        "data_ours": "+ our attributes through our writer (JSON encoding)",
        "mlflow_ollama": "mlflow_ollama (mapping, wrappers)",
    }
    for path, label in labels.items():
        cells = [f"{result[c][path]['caller']:.0f} | {result[c][path]['process']:.0f}" for c in CASES]
        lines.append(f"| {label} | {' | '.join(cells)} |")

    def part(case: str, a: str, b: str, kind: str) -> float:
        return result[case][a][kind] - result[case][b][kind]

    lines += [
        "",
        "Split of the added CPU (all threads unless marked):",
        "",
        "<!-- table: split -->",  # docs/performance.md quotes this table (docs/reference_tables.py)
        "| part | short | history |",
        "|---|---:|---:|",
    ]
    split: dict[str, Callable[[str], float]] = {
        "MLflow's bare span (the floor)": lambda c: part(c, "bare_span", "sdk", "process"),
        "MLflow and OpenTelemetry taking our attributes, caller thread": lambda c: part(
            c, "data_encoded", "bare_span", "caller"
        ),
        "export of our attributes (span processor, OTLP encoding), background": lambda c: (
            part(c, "data_encoded", "bare_span", "process") - part(c, "data_encoded", "bare_span", "caller")
        ),
        "our JSON encoding": lambda c: part(c, "data_ours", "data_encoded", "process"),
        "our own code: mapping, wrappers, bookkeeping": lambda c: part(c, "mlflow_ollama", "data_ours", "process"),
        "**total added by mlflow_ollama**": lambda c: part(c, "mlflow_ollama", "sdk", "process"),
    }
    for label, value in split.items():
        lines.append(f"| {label} | {value('short'):+.0f} µs | {value('history'):+.0f} µs |")
    lines.append("<!-- end table -->")
    ratios = [part(c, "mlflow_ollama", "sdk", "process") / part(c, "bare_span", "sdk", "process") for c in CASES]
    floors = [part(c, "data_encoded", "sdk", "process") / part(c, "bare_span", "sdk", "process") for c in CASES]
    lines += [
        "",
        f"Our total as a multiple of a bare span's: short {ratios[0]:.2f}, history {ratios[1]:.2f}. With no code "
        f"of ours at all, the data alone (already JSON) would be: short {floors[0]:.2f}, history {floors[1]:.2f}.",
        "",
        f"## Every thread's profile: {prof['calls']:,} traced history calls (yappi, CPU clock)",
        "",
        "Under the profiler, which inflates Python-heavy code: read the shares, not the microseconds.",
        "",
        "| package | self time per call (µs) | share |",
        "|---|---:|---:|",
    ]
    total = sum(prof["groups"].values())
    for group, seconds in sorted(prof["groups"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {group} | {seconds / prof['calls'] * 1e6:.0f} | {seconds / total:.0%} |")
    lines += ["", "| thread | CPU per call (µs, profiled) |", "|---|---:|"]
    lines += [f"| {name} | {seconds / prof['calls'] * 1e6:.0f} |" for name, seconds in prof["threads"].items()]
    lines += ["", "Top functions by self time:", "", "```"]
    for tsub, ttot, ncall, module, lineno, name in prof["top"]:
        n = prof["calls"]
        cost = f"{tsub / n * 1e6:7.1f} µs self {ttot / n * 1e6:8.1f} µs total {ncall / n:6.1f}/call"
        lines.append(f"{cost}  {module}:{lineno} {name}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile-calls", type=int, default=1000)
    parser.add_argument("--output")
    options = parser.parse_args()
    export_to_sink("cpu")
    result = measure(options.calls, options.rounds)
    text = report(result, profile(options.profile_calls), options.calls, options.rounds)
    print(text)
    if options.output:
        with open(options.output, "w", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
