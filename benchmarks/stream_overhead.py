"""Streaming benchmark: what tracing adds per chunk, and the memory a traced stream keeps.

Three measurements, traced against untraced in the same run:

1. **Loopback HTTP.** 10,000-chunk streamed chats from the real ``ollama`` client against the
   loopback double running in another process, interleaved rounds, tracing toggled per call
   with ``MLFLOW_OLLAMA_AUTOLOG``. The honest end-to-end number, and the noisiest.
2. **Per chunk, isolated.** The same chunk objects pulled through the SDK-shaped generator
   directly and through our traced stream; this is our work per chunk without network noise.
3. **Peak memory** of a traced 100,000-chunk stream over an untraced one (``tracemalloc``), with
   chunks made on the fly as the SDK does, so only what tracing keeps is counted.

    python benchmarks/stream_overhead.py [--rounds 7] [--output docs/benchmarks/streaming.md]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/bench.db")
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")

import mlflow
import ollama

import mlflow_ollama
from mlflow_ollama import _patch, _spans, _stream

CHUNK = "tok "


def _chunk(text: str = CHUNK) -> ollama.ChatResponse:
    return ollama.ChatResponse(
        model="llama3.2",
        created_at="2026-01-01T00:00:00Z",
        message=ollama.Message(role="assistant", content=text),
        done=False,
    )


def _final() -> ollama.ChatResponse:
    return ollama.ChatResponse(
        model="llama3.2",
        created_at="2026-01-01T00:00:00Z",
        message=ollama.Message(role="assistant", content=""),
        done=True,
        done_reason="stop",
        prompt_eval_count=10,
        eval_count=10,
        total_duration=1,
        eval_duration=1,
    )


def _start_double() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "mlflow_ollama.testing"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _time(run: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def loopback(rounds: int, chunks: int) -> dict[str, float]:
    process, url = _start_double()
    try:
        client = ollama.Client(host=url)
        # The double echoes "You said: <message>" one word per chunk: size the message to match.
        words = " ".join(["tok"] * (chunks - 2))

        def stream() -> int:
            return sum(
                1 for _ in client.chat(model="llama3.2", messages=[{"role": "user", "content": words}], stream=True)
            )

        received = stream()  # warm up: connection, MLflow's first span
        traced, untraced = [], []
        for _ in range(rounds):
            os.environ["MLFLOW_OLLAMA_AUTOLOG"] = "false"
            untraced.append(_time(stream))
            os.environ["MLFLOW_OLLAMA_AUTOLOG"] = "true"
            traced.append(_time(stream))
            # MLflow writes each trace to its store on a background thread (~20 ms of CPU for a
            # 10,000-chunk reply); let it finish outside the timed region, or it lands in the next one.
            mlflow.flush_trace_async_logging()
        os.environ.pop("MLFLOW_OLLAMA_AUTOLOG")
    finally:
        process.terminate()
        process.wait()
    added = [(t - u) / received * 1e6 for t, u in zip(traced, untraced, strict=True)]
    return {
        "chunks": received,
        "untraced_ms": statistics.median(untraced) * 1e3,
        "traced_ms": statistics.median(traced) * 1e3,
        "added_us_per_chunk": statistics.median(added),
    }


_ENDPOINT: Any = None


def _call() -> Any:
    global _ENDPOINT
    if _ENDPOINT is None:
        _ENDPOINT = _patch._endpoint("chat", vars(ollama.Client)["chat"].__wrapped__)
    return _spans.start(_ENDPOINT, None, {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]})


def isolated(rounds: int, chunks: int) -> dict[str, float]:
    items = [_chunk() for _ in range(chunks)] + [_final()]

    def untraced() -> None:
        for _ in (c for c in items):
            pass

    def traced() -> None:
        for _ in _stream.traced_stream(_call(), (c for c in items)):
            pass

    def fixed() -> None:  # a span start and end with an empty stream: the per-call part
        for _ in _stream.traced_stream(_call(), (c for c in items[-1:])):
            pass

    for warm_up in (traced, untraced, fixed):
        warm_up()
    u = [_time(untraced) for _ in range(rounds)]
    t = [_time(traced) for _ in range(rounds)]
    f = [_time(fixed) for _ in range(rounds)]
    per_chunk = (statistics.median(t) - statistics.median(f) - statistics.median(u)) / chunks * 1e6
    return {
        "chunks": chunks,
        "untraced_ms": statistics.median(u) * 1e3,
        "traced_ms": statistics.median(t) * 1e3,
        "per_call_us": statistics.median(f) * 1e6,
        "added_us_per_chunk": per_chunk,
    }


def memory(chunks: int) -> dict[str, float]:
    held: list[int] = []

    def source() -> Iterator[ollama.ChatResponse]:
        for _ in range(chunks):
            yield _chunk()
        held.append(tracemalloc.get_traced_memory()[0])  # all text in, span not yet recorded
        yield _final()

    def peak(run: Callable[[], Any]) -> int:
        mlflow.flush_trace_async_logging()  # no earlier trace being exported in the background
        gc.collect()
        tracemalloc.start()
        run()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    def untraced() -> None:
        for _ in source():
            pass

    def traced() -> None:
        for _ in _stream.traced_stream(_call(), source()):
            pass

    runs = [(peak(untraced), peak(traced)) for _ in range(3)]  # the first pair also warms up caches
    base, with_tracing = min(r[0] for r in runs), min(r[1] for r in runs)
    while_streaming = min(held[1::2])  # the traced runs' readings
    return {
        "chunks": chunks,
        "text_kb": chunks * len(CHUNK) / 1024,
        "untraced_peak_kb": base / 1024,
        "held_kb": while_streaming / 1024,
        "held_bytes_per_chunk": while_streaming / chunks,
        "traced_peak_kb": with_tracing / 1024,
    }


def report(rounds: int) -> str:
    mlflow.set_experiment("stream-benchmark")
    mlflow_ollama.autolog()
    http = loopback(rounds, 10_000)
    alone = isolated(rounds, 10_000)
    mem = memory(100_000)
    versions = f"Python {platform.python_version()}, ollama {ollama_version()}, mlflow {mlflow.__version__}"
    return "\n".join(
        [
            "# Benchmark: streaming overhead per chunk",
            "",
            "Written by `benchmarks/stream_overhead.py` (`nox -s bench`); method in",
            "[../performance.md](../performance.md#streaming-benchmarksstream_overheadpy).",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, {platform.machine()}; {versions}.",
            f"Medians of {rounds} interleaved rounds.",
            "",
            "| measurement | untraced | traced | added per chunk |",
            "|---|---|---|---|",
            f"| {http['chunks']:,}-chunk stream over loopback HTTP | {http['untraced_ms']:.1f} ms | "
            f"{http['traced_ms']:.1f} ms | {http['added_us_per_chunk']:.2f} µs |",
            f"| {alone['chunks']:,} chunks through the generator alone | {alone['untraced_ms']:.2f} ms | "
            f"{alone['traced_ms']:.2f} ms | {alone['added_us_per_chunk']:.2f} µs (plus {alone['per_call_us']:.0f} µs "
            "per call for the span itself) |",
            "",
            f"Memory, {mem['chunks']:,}-chunk stream of {len(CHUNK)}-character chunks ({mem['text_kb']:.0f} KB of "
            f"text): untraced peak {mem['untraced_peak_kb']:.0f} KB; traced, held while streaming "
            f"{mem['held_kb']:.0f} KB ({mem['held_bytes_per_chunk']:.1f} bytes per chunk), and peak "
            f"{mem['traced_peak_kb']:.0f} KB when the span is recorded at the end (MLflow serialises the "
            "outputs and the chat view, each a copy of the text).",
        ]
    )


def ollama_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("ollama")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", help="also write the markdown table to this file")
    options = parser.parse_args()
    text = report(options.rounds)
    print(text)
    if options.output:
        with open(options.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
