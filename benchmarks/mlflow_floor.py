"""MLflow's own cost per span, release by release: the floor under any MLflow-based tracing.

Run by ``nox -s bench_floor`` once per MLflow release of the test matrix (oldest, middle, latest).
Each run measures, in one process, a short ``Client.chat`` with the SDK's HTTP client replaced
by a stub returning a canned response (so no network noise), exporting over OTLP/HTTP to a
loopback sink:

- the SDK call alone;
- the call inside a bare MLflow span that records nothing (``start_span_no_context`` + ``end``):
  MLflow's floor;
- the call traced by ``mlflow_ollama``;
- where they are installed (the latest set only), the call traced by OpenLLMetry and by
  OpenInference, exporting through a BatchSpanProcessor to the same sink. Each peer runs in a
  child process of its own, untraced blocks first and instrumented blocks after (their
  ``uninstrument()`` leaves wrappers behind, so the two cannot alternate in one process).

Calls run in short blocks with a pause after each, so MLflow's background exporter is idle while
a block is timed: this is the caller-thread cost, without the exporter's contention for the GIL
(which the side-by-side benchmark, ``peers.py``, includes). The result is merged into a JSON file
keyed by MLflow version, and the markdown table is rewritten from it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers import MODEL, SHORT, _mlflow_drain, _peer_tracer_provider, _Sink, export_to_sink, in_bare_span, stub_client

PEERS = {
    "openllmetry": "opentelemetry.instrumentation.ollama",
    "openinference": "openinference.instrumentation.ollama",
}
BLOCKS = 40
CALLS_PER_BLOCK = 20
PAUSE_S = 0.2


def _blocks(run: Callable[[], Any], blocks: list[float]) -> None:
    timings = []
    for _ in range(CALLS_PER_BLOCK):
        started = time.perf_counter_ns()
        run()
        timings.append(time.perf_counter_ns() - started)
    blocks.append(statistics.median(timings) / 1e3)


def measure_peer(name: str, sink: _Sink) -> dict[str, float]:
    """A peer in a process of its own (its ``uninstrument()`` does not undo everything): the SDK
    call untraced, then instrumented, each in blocks with the exporter idle in between."""

    client = stub_client()
    provider = _peer_tracer_provider(sink.url)

    def sdk() -> Any:
        return client.chat(model=MODEL, messages=SHORT)

    results: dict[str, list[float]] = {"sdk": [], name: []}
    for key in results:
        if key == name:
            importlib.import_module(PEERS[name]).OllamaInstrumentor().instrument()
        for _ in range(BLOCKS + 2):
            _blocks(sdk, results[key])
            provider.force_flush()
            time.sleep(PAUSE_S / 4)
        del results[key][:2]  # warm-up blocks
    return {key: statistics.median(values) for key, values in results.items()}


def _peers() -> dict[str, float]:
    """Each installed peer's added µs, measured in a child process."""
    added = {}
    for name, module in PEERS.items():
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:  # a parent package is missing
            continue
        out = subprocess.run([sys.executable, __file__, "--peer", name], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        added[f"{name}_added"] = result[name] - result["sdk"]
    return added


def measure() -> dict[str, float]:
    """Median per-call µs of each path, over interleaved blocks."""
    import mlflow

    import mlflow_ollama

    mlflow.set_experiment("bench-floor")
    client = stub_client()

    def sdk() -> Any:
        return client.chat(model=MODEL, messages=SHORT)

    paths: dict[str, Callable[[], Any]] = {"sdk": sdk, "bare_span": in_bare_span(sdk), "mlflow_ollama": sdk}
    blocks: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(BLOCKS + 2):  # two warm-up blocks
        order = list(paths)
        random.shuffle(order)
        for name in order:
            if name == "mlflow_ollama":
                mlflow_ollama.autolog()
            _blocks(paths[name], blocks[name])
            mlflow_ollama.revert()
            _mlflow_drain()
            time.sleep(PAUSE_S)
    for values in blocks.values():
        del values[:2]  # warm-up blocks
    return {name: statistics.median(values) for name, values in blocks.items()}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _release(version: str) -> list[int]:
    return [int(p) for p in version.split(".")[:3] if p.isdigit()]


def markdown(results: dict[str, Any]) -> str:
    from mlflow_ollama._compat import OLDEST_MLFLOW

    rows = sorted(results.values(), key=lambda r: _release(r["mlflow"]))
    # Rows of releases below today's floor stay, as what was measured then; the page says so.
    retired = [r["mlflow"] for r in rows if _release(r["mlflow"]) < _release(OLDEST_MLFLOW)]
    note = (
        f" MLflow {', '.join(retired)} {'is' if len(retired) == 1 else 'are'} no longer supported (the oldest "
        f"supported release is {OLDEST_MLFLOW}); {'its row is' if len(retired) == 1 else 'their rows are'} kept "
        "as what was measured."
        if retired
        else ""
    )
    lines = [
        "# MLflow's floor, release by release",
        "",
        "Written by `benchmarks/mlflow_floor.py` (`nox -s bench_floor`, once per MLflow release of the",
        "test matrix). One process per release; a short chat with the SDK's HTTP client stubbed; OTLP/HTTP",
        f"export to a loopback sink, the exporter idle while timing ({BLOCKS} interleaved blocks of "
        f"{CALLS_PER_BLOCK} calls, medians of block medians). Method: [../performance.md](../performance.md).{note}",
        "",
        "| MLflow | opentelemetry-sdk | Python | measured | SDK call (µs) | bare MLflow span, added (µs) "
        "| `mlflow_ollama`, added (µs) | `mlflow_ollama` over the floor (µs) | OpenLLMetry, added (µs) "
        "| OpenInference, added (µs) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def added(r: dict[str, Any], name: str) -> str:
        return f"{r[name + '_added']:+.1f}" if name + "_added" in r else "not installed"

    for r in rows:
        bare, ours = r["bare_span"] - r["sdk"], r["mlflow_ollama"] - r["sdk"]
        lines.append(
            f"| {r['mlflow']} | {r['otel']} | {r['python']} | {r['date']} | {r['sdk']:.1f} | {bare:+.1f} "
            f"| {ours:+.1f} | {ours - bare:+.1f} | {added(r, 'openllmetry')} | {added(r, 'openinference')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--record", type=Path, help="JSON file the result is merged into")
    parser.add_argument("--output", type=Path, help="markdown table rewritten from the JSON")
    parser.add_argument("--peer", choices=list(PEERS), help=argparse.SUPPRESS)
    options = parser.parse_args()
    sink = export_to_sink("floor")
    if options.peer:
        print(json.dumps(measure_peer(options.peer, sink)))
        return
    if options.record is None or options.output is None:
        parser.error("--record and --output are required")
    try:
        result: dict[str, Any] = measure()
    finally:
        sink.shutdown()
    result.update(_peers())
    mlflow_version = _version("mlflow-tracing") if _version("mlflow") == "not installed" else _version("mlflow")
    result.update(
        mlflow=mlflow_version,
        otel=_version("opentelemetry-sdk"),
        python=platform.python_version(),
        date=time.strftime("%Y-%m-%d", time.gmtime()),
    )
    print(json.dumps(result), file=sys.stderr)
    recorded: dict[str, Any] = json.loads(options.record.read_text()) if options.record.exists() else {}
    recorded[mlflow_version] = result
    options.record.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    options.output.write_text(markdown(recorded))


if __name__ == "__main__":
    main()
