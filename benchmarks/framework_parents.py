"""What looking for a framework's span costs each traced call (``mlflow_ollama/_frameworks.py``).

Every span of ours starts by asking whether a framework keeps a span open for this call that is
not current. This times that question alone, from a 40-frame-deep caller, in three states: no
framework imported; LlamaIndex's and LangChain's MLflow autologs on with no framework span open
(the walk up the stack finds nothing); and while a LlamaIndex stream is open, between its chunks.
Median of ``--repeats`` runs of ``--number`` calls. Needs the frameworks (``nox -s frameworks``
installs them):

    .nox/frameworks/bin/python benchmarks/framework_parents.py --output docs/benchmarks/framework_parents.md
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/bench.db")

import mlflow

import mlflow_ollama
from mlflow_ollama import _frameworks
from mlflow_ollama.testing import OllamaDouble

DEPTH = 40


def _at_depth(depth: int, function: Callable[[], Any]) -> Any:
    return _at_depth(depth - 1, function) if depth else function()


def _time(number: int, repeats: int) -> float:
    """Microseconds per ``parent_span()`` call, asked from DEPTH frames down."""
    runs = [timeit.timeit(lambda: _at_depth(DEPTH, _frameworks.parent_span), number=number) for _ in range(repeats)]
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows = [("no framework imported", _time(args.number, args.repeats))]

    import langchain_core.callbacks.manager  # noqa: F401 - what an app using LangChain has imported
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.ollama import Ollama

    mlflow_ollama.autolog()
    mlflow.llama_index.autolog()
    mlflow.langchain.autolog()
    rows.append(("LlamaIndex and LangChain autologs on, no framework span open", _time(args.number, args.repeats)))

    inside: list[float] = []
    with OllamaDouble() as double:
        llm = Ollama(model="llama3.2", base_url=double.url)

        def measure_inside() -> None:
            inside.append(_time(max(1, args.number // 10), args.repeats))

        # Timed between two chunks: MLflow keeps the stream's span open, so the stream is looked for
        # (though it is not running on this stack, the most work the search does without a find).
        stream = llm.stream_chat([ChatMessage(role="user", content="hello")])
        for _ in stream:
            if not inside:
                measure_inside()
    rows.append(("a LlamaIndex stream open, asked between its chunks", inside[0]))

    versions = ", ".join(
        f"{d} {importlib.metadata.version(d)}" for d in ("mlflow", "llama-index-core", "langchain-core", "ollama")
    )
    lines = [
        "# Benchmark: finding a framework's span",
        "",
        "What each traced call pays to ask whether a framework keeps a span open for it that is not",
        f"current (`mlflow_ollama/_frameworks.py`), asked from {DEPTH} frames down; median of",
        f"{args.repeats} runs of {args.number:,} calls. Written by `benchmarks/framework_parents.py`.",
        "",
        "| state | µs per call |",
        "|---|---:|",
        *(f"| {label} | {value:.2f} |" for label, value in rows),
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
