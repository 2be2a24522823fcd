"""MLflow's own cost per span, release by release: the floor under any MLflow-based tracing.

Run by ``nox -s bench_floor`` once per MLflow release of the test matrix (oldest, middle, latest).
Each run measures, in one process, a short ``Client.chat`` with the SDK's HTTP client replaced
by a stub returning a canned response (so no network noise), exporting over OTLP/HTTP to a
loopback sink:

- the SDK call alone;
- the call inside a bare MLflow span that records nothing (``start_span_no_context`` + ``end``):
  MLflow's floor;
- the call traced by ``mlflow_ollama``.

Calls run in short blocks with a pause after each, so MLflow's background exporter is idle while
a block is timed: this is the caller-thread cost, without the exporter's contention for the GIL
(which the side-by-side benchmark, ``peers.py``, includes). The result is merged into a JSON file
keyed by MLflow version, and the markdown table is rewritten from it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers import _CANNED, MODEL, SHORT, _Sink, _StubHttp

BLOCKS = 40
CALLS_PER_BLOCK = 20
PAUSE_S = 0.2


def _configure_export() -> _Sink:
    sink = _Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{sink.url}/v1/traces"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/floor.db"
    return sink


def _flush() -> None:
    """Export every ended span now, on any MLflow 3 release (the provider moved in 3.x)."""
    from mlflow.tracing import provider as tracing

    holder = getattr(tracing, "provider", None)
    current = holder.get() if holder is not None else getattr(tracing, "_MLFLOW_TRACER_PROVIDER", None)
    getattr(current, "force_flush", lambda: None)()


def measure() -> dict[str, float]:
    """Median per-call µs of each path, over interleaved blocks."""
    import mlflow
    import ollama
    from mlflow.entities import SpanType

    import mlflow_ollama

    mlflow.set_experiment("bench-floor")
    client = ollama.Client(host="http://127.0.0.1:11434")
    client._client = _StubHttp(client._client.base_url, _CANNED)

    def sdk() -> Any:
        return client.chat(model=MODEL, messages=SHORT)

    def bare_span() -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type=SpanType.CHAT_MODEL)
        result = sdk()
        span.end()
        return result

    paths: dict[str, Callable[[], Any]] = {"sdk": sdk, "bare_span": bare_span, "mlflow_ollama": sdk}
    blocks: dict[str, list[float]] = {name: [] for name in paths}
    for block in range(BLOCKS + 2):  # two warm-up blocks
        order = list(paths)
        random.shuffle(order)
        for name in order:
            if name == "mlflow_ollama":
                mlflow_ollama.autolog()
            timings = []
            for _ in range(CALLS_PER_BLOCK):
                started = time.perf_counter_ns()
                paths[name]()
                timings.append(time.perf_counter_ns() - started)
            mlflow_ollama.revert()
            _flush()
            time.sleep(PAUSE_S)
            if block >= 2:
                blocks[name].append(statistics.median(timings) / 1e3)
    return {name: statistics.median(values) for name, values in blocks.items()}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def markdown(results: dict[str, Any]) -> str:
    rows = sorted(results.values(), key=lambda r: [int(p) for p in r["mlflow"].split(".")[:3] if p.isdigit()])
    lines = [
        "# MLflow's floor, release by release",
        "",
        "Written by `benchmarks/mlflow_floor.py` (`nox -s bench_floor`, once per MLflow release of the",
        "test matrix). One process per release; a short chat with the SDK's HTTP client stubbed; OTLP/HTTP",
        f"export to a loopback sink, the exporter idle while timing ({BLOCKS} interleaved blocks of "
        f"{CALLS_PER_BLOCK} calls, medians of block medians). Method: [../performance.md](../performance.md).",
        "",
        "| MLflow | opentelemetry-sdk | Python | measured | SDK call (µs) | bare MLflow span, added (µs) "
        "| `mlflow_ollama`, added (µs) | `mlflow_ollama` over the floor (µs) |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        bare, ours = r["bare_span"] - r["sdk"], r["mlflow_ollama"] - r["sdk"]
        lines.append(
            f"| {r['mlflow']} | {r['otel']} | {r['python']} | {r['date']} | {r['sdk']:.1f} | {bare:+.1f} "
            f"| {ours:+.1f} | {ours - bare:+.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--record", type=Path, required=True, help="JSON file the result is merged into")
    parser.add_argument("--output", type=Path, required=True, help="markdown table rewritten from the JSON")
    options = parser.parse_args()
    sink = _configure_export()
    try:
        result: dict[str, Any] = measure()
    finally:
        sink.shutdown()
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
