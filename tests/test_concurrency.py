"""Concurrency: threads and asyncio tasks mixing streamed and plain calls, no crosstalk, no leaks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import mlflow
import ollama
import pytest
from mlflow.tracing.trace_manager import InMemoryTraceManager

import mlflow_ollama
from mlflow_ollama.testing import OllamaDouble
from support import base_name, traces, user

THREADS, ROUNDS = 32, 2


def _check(found: list[Any], expected: dict[str, str]) -> None:
    """Each trace holds exactly its own parent and its own two calls, correctly nested."""
    assert len(found) == len(expected)
    for trace in found:
        tag = expected[trace.info.trace_id]
        spans = trace.data.spans
        [parent] = [s for s in spans if s.parent_id is None]
        assert parent.name == f"parent-{tag}"
        children = [s for s in spans if s.parent_id == parent.span_id]
        assert sorted(base_name(s) for s in children) == ["ollama.chat", "ollama.chat"]
        assert len(spans) == 3
        for child in children:
            assert child.inputs["messages"] == user(f"call {tag}")
            assert child.outputs["message"]["content"] == f"You said: call {tag}"
            assert child.status.status_code == "OK"
    assert len(InMemoryTraceManager.get_instance()._traces) == 0  # type: ignore[no-untyped-call]


def test_32_threads_mixing_streamed_and_plain_calls(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    client = ollama.Client(host=server.url)
    expected: dict[str, str] = {}
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(i: int) -> None:
        start.wait()
        for round_ in range(ROUNDS):
            tag = f"t{i}-{round_}"
            with mlflow.start_span(f"parent-{tag}") as parent:
                client.chat(model="m", messages=user(f"call {tag}"))
                list(client.chat(model="m", messages=user(f"call {tag}"), stream=True))
            with lock:
                expected[parent.trace_id] = tag

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _check(traces(), expected)


@pytest.mark.heavy  # ~70 s, nearly all of it MLflow writing 1,000 traces to sqlite
def test_1000_asyncio_tasks_mixing_streamed_and_plain_calls(server: OllamaDouble) -> None:
    mlflow_ollama.autolog()

    async def main() -> dict[str, str]:
        client = ollama.AsyncClient(host=server.url)
        limit = asyncio.Semaphore(100)  # the double is a thread per connection; 100 in flight at most

        async def one(i: int) -> tuple[str, str]:
            tag = f"a{i}"
            async with limit:
                with mlflow.start_span(f"parent-{tag}") as parent:
                    await client.chat(model="m", messages=user(f"call {tag}"))
                    async for _ in await client.chat(model="m", messages=user(f"call {tag}"), stream=True):
                        await asyncio.sleep(0)  # let other tasks interleave between chunks
            return parent.trace_id, tag

        return dict(await asyncio.gather(*(one(i) for i in range(1000))))

    expected = asyncio.run(main())
    _check(traces(), expected)
