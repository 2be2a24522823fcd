"""What setting the trace previews ourselves costs, and what it spares MLflow when the root ends.

When a trace's root span ends, MLflow derives the request and response previews from the root's
inputs and outputs (``mlflow/tracing/utils/truncation.py::set_request_response_preview``): it
parses both back from their JSON text and looks for OpenAI shapes. When the plugin has set them,
MLflow skips that. This times, on real traces the plugin recorded (a short chat, a 20-message
history with 5 tools, a 1,000-chunk stream):

- ``mlflow_derives``: MLflow's ``set_request_response_preview`` with no previews set (before);
- ``mlflow_skips``: the same call with the previews already set (after);
- ``ours``: the plugin's own work for them (the two preview functions on the recorded inputs and
  outputs, and setting them on the trace MLflow holds in memory).

In process, medians of many repetitions; ``python benchmarks/previews.py --output FILE``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from peers import HISTORY, MODEL, SHORT, TOOLS

REPEATS = 2_000


def _median_us(run: Callable[[], Any], repeats: int = REPEATS) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()
        timings.append(time.perf_counter_ns() - started)
    return statistics.median(timings) / 1e3


def _traces() -> dict[str, Any]:
    """One real trace per case, recorded by the plugin against the loopback double."""
    import mlflow
    import ollama

    import mlflow_ollama
    from mlflow_ollama.testing import OllamaDouble, Reply

    mlflow.set_experiment("bench-previews")
    mlflow_ollama.autolog()
    found = {}
    with OllamaDouble() as server:
        client = ollama.Client(host=server.url)
        client.chat(model=MODEL, messages=SHORT)
        found["short chat"] = mlflow.get_last_active_trace_id()
        client.chat(model=MODEL, messages=HISTORY, tools=TOOLS)
        found["20-message history, 5 tools"] = mlflow.get_last_active_trace_id()
        server.enqueue(Reply(content="word " * 1_000, chunks=1_000))
        for _ in client.chat(model=MODEL, messages=SHORT, stream=True):
            pass
        found["1,000-chunk stream"] = mlflow.get_last_active_trace_id()
    mlflow_ollama.revert()
    return {name: mlflow.get_trace(trace_id) for name, trace_id in found.items()}


def _case(trace: Any) -> dict[str, float]:
    """The three timings for one recorded trace."""
    from mlflow.tracing.trace_manager import InMemoryTraceManager
    from mlflow.tracing.utils.truncation import set_request_response_preview

    from mlflow_ollama import _previews

    manager = InMemoryTraceManager.get_instance()  # type: ignore[no-untyped-call]
    info, data = trace.info, trace.data
    root = data.spans[0]
    inputs, outputs = root.inputs, root.outputs

    def derive() -> None:
        info.request_preview = info.response_preview = None
        set_request_response_preview(info, data)

    def skip() -> None:
        set_request_response_preview(info, data)

    def ours() -> None:
        request = _previews.request_preview("chat", inputs)
        response = _previews.response_preview("chat", outputs)
        with manager.get_trace(info.trace_id) as held:  # as _spans does (this trace is gone: None)
            if held is not None:
                held.info.request_preview, held.info.response_preview = request, response

    derived = _median_us(derive)
    info.request_preview, info.response_preview = "set", "set"
    return {
        "mlflow_derives": derived,
        "mlflow_skips": _median_us(skip),
        "ours": _median_us(ours),
        "input_json_chars": len(data.request or ""),
        "output_json_chars": len(data.response or ""),
    }


def measure() -> dict[str, dict[str, float]]:
    return {name: _case(trace) for name, trace in _traces().items()}


def report(results: dict[str, dict[str, float]]) -> str:
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "ollama"))
    lines = [
        "# Benchmark: trace previews",
        "",
        f"`python benchmarks/previews.py` on {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {versions}. In process, median of {REPEATS:,} repetitions each, on real "
        "traces the plugin recorded against the loopback double.",
        "",
        "| root span | JSON MLflow parses (in + out) | MLflow derives the previews (before) | "
        "MLflow, previews already set (after) | the plugin sets them | saved per trace |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        saved = r["mlflow_derives"] - r["mlflow_skips"] - r["ours"]
        lines.append(
            f"| {name} | {int(r['input_json_chars']):,} + {int(r['output_json_chars']):,} chars | "
            f"{r['mlflow_derives']:.1f} µs | {r['mlflow_skips']:.2f} µs | {r['ours']:.1f} µs | {saved:+.1f} µs |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", help="write the markdown report here too")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/previews.db")
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    text = report(measure())
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
