"""Many framework calls at once, in threads and asyncio tasks: each span of ours joins its own call's trace.

Where the framework's span is not current (LlamaIndex streams, LangChain's async calls), ours finds
it on its own stack (``mlflow_ollama/_frameworks.py``); a wrong find would put a call's span under
another call's. Each call carries a token of its own in its prompt, and the test checks that our
span's parent is the framework span holding the same token, with one trace per call.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from langchain_ollama import ChatOllama
from llama_index.core.llms import ChatMessage
from llama_index.llms.ollama import Ollama

import mlflow_ollama
from frame import assert_usage_counted_once, ours
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, traces

N = 8
TOKEN = re.compile(r"tok_[a-z]+_\d+")


@pytest.fixture(autouse=True)
def _both_autologs() -> Iterator[None]:
    mlflow_ollama.autolog()
    mlflow.llama_index.autolog()
    mlflow.langchain.autolog()
    yield
    mlflow.llama_index.autolog(disable=True)
    mlflow.langchain.autolog(disable=True)


def _tokens(value: Any) -> set[str]:
    return set(TOKEN.findall(json.dumps(value, default=str)))


def _assert_each_call_is_one_trace(expected: int) -> None:
    found = traces()
    assert len(found) == expected
    for trace in found:
        span = ours(trace)
        parent = next(s for s in trace.data.spans if s.span_id == span.parent_id)
        mine = _tokens(span.inputs)
        assert len(mine) == 1
        assert _tokens(parent.inputs) == mine, (parent.name, parent.inputs, span.inputs)
        assert_usage_counted_once(trace, span)


def test_llama_index_streams_in_threads_never_cross(server: OllamaDouble) -> None:
    llm = Ollama(model=MODEL, base_url=server.url, request_timeout=60)
    together = threading.Barrier(N)

    def work(i: int) -> None:
        stream = llm.stream_chat([ChatMessage(role="user", content=f"say tok_thread_{i}")])
        together.wait()  # every stream opened before any is read: all N spans open at once
        for _ in stream:
            time.sleep(0.001)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_each_call_is_one_trace(N)


def test_langchain_async_calls_in_tasks_never_cross(server: OllamaDouble) -> None:
    llm = ChatOllama(model=MODEL, base_url=server.url)

    async def streamed(i: int) -> None:
        async for _ in llm.astream(f"say tok_astream_{i}"):
            await asyncio.sleep(0.001)

    async def everything() -> None:
        await asyncio.gather(*(llm.ainvoke(f"say tok_ainvoke_{i}") for i in range(N)), *(streamed(i) for i in range(N)))

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(everything())
    finally:
        loop.close()
    _assert_each_call_is_one_trace(2 * N)


def test_framework_internals_gone_mean_two_traces_not_an_error(
    server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The modules our search reads, as a future release might lay them out (the classes it looks
    # for gone); MLflow's and LangChain's own code keeps the modules it was built from. Each call
    # is then two traces, as without the search, and nothing raises (strict mode is on).
    for name in ("langchain_core.callbacks.manager", "mlflow.llama_index.tracer"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    llm = Ollama(model=MODEL, base_url=server.url, request_timeout=60)
    list(llm.stream_chat([ChatMessage(role="user", content="say tok_gone_1")]))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ChatOllama(model=MODEL, base_url=server.url).ainvoke("say tok_gone_2"))
    finally:
        loop.close()
    roots = sorted(s.name for t in traces() for s in t.data.spans if s.parent_id is None)
    assert roots == ["ChatOllama", "Ollama.stream_chat", "ollama.chat", "ollama.chat"]
