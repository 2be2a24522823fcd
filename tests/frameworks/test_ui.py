"""The framework traces in the MLflow UI, in a real browser: LangChain's and LlamaIndex's spans with ours beneath.

One LangChain tool call and one plain ``invoke`` (``mlflow.langchain.autolog()``), and one LlamaIndex
``chat``, ``stream_chat`` and ``astream_chat`` (``mlflow.llama_index.autolog()``), all through
``mlflow_ollama.autolog()``, are sent to a real ``mlflow server``; Chromium then opens them as a user
would: the experiment's traces list first (with its Trace name column on, which tells the frameworks'
traces from ours), then each trace's span tree with our ``ollama.chat`` selected and its chat view.

The browser parts are the end-to-end suite's (``tests/e2e/test_ui.py``): Debian's Chromium, skipped
where it is missing unless ``MLFLOW_OLLAMA_REQUIRE_BROWSER=1``. Screenshots go to ``.e2e-artifacts/``,
and with ``MLFLOW_OLLAMA_UPDATE_SCREENSHOTS=1`` to ``docs/images/frameworks-*.png`` as well.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import mlflow
import pytest
from e2e import test_ui as e2e_ui
from e2e.parts import MlflowServer, start_mlflow_server
from e2e.test_ui import open_trace, screenshot, shows, wait_shows
from langchain_ollama import ChatOllama
from llama_index.core.llms import ChatMessage
from llama_index.llms.ollama import Ollama

import mlflow_ollama
from mlflow_ollama.testing import OllamaDouble
from support import MODEL

# The end-to-end suite's Chromium page (module-scoped: one for this module), as a fixture of this module.
page = e2e_ui.page

TOOL_QUESTION = "What is the weather in Paris?"
PLAIN_QUESTION = "Why is the sky blue?"
LLAMA_QUESTION = "Hello from LlamaIndex"
STREAM_QUESTION = "Hello stream from LlamaIndex"
ASYNC_QUESTION = "Hello async stream from LlamaIndex"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@dataclass
class Sent:
    """The traces the frameworks sent to the server, read back through its REST API."""

    server: MlflowServer
    experiment: str
    langchain_tool: Any
    langchain_plain: Any
    llamaindex_chat: Any
    all: list[Any]


@pytest.fixture(scope="module")
def mlflow_server() -> Iterator[MlflowServer]:
    with start_mlflow_server() as running:
        yield running


@pytest.fixture(scope="module")
def sent(mlflow_server: MlflowServer, server: OllamaDouble) -> Sent:
    """The five framework calls, traced into an experiment of the server; the tracking URI restored after."""
    experiment = mlflow_server.new_experiment()
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        mlflow.set_experiment(experiment_id=experiment)
        mlflow_ollama.autolog()
        mlflow.langchain.autolog()
        mlflow.llama_index.autolog()
        chat_ollama = ChatOllama(model=MODEL, base_url=server.url)
        chat_ollama.bind_tools([get_weather]).invoke(TOOL_QUESTION)
        langchain_tool = mlflow.get_last_active_trace_id()
        chat_ollama.invoke(PLAIN_QUESTION)
        langchain_plain = mlflow.get_last_active_trace_id()
        llm = Ollama(model=MODEL, base_url=server.url, request_timeout=60)
        llm.chat([ChatMessage(role="user", content=LLAMA_QUESTION)])
        llamaindex_chat = mlflow.get_last_active_trace_id()
        "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content=STREAM_QUESTION)]))

        async def astream() -> str:
            chunks = await llm.astream_chat([ChatMessage(role="user", content=ASYNC_QUESTION)])
            return "".join([r.delta or "" async for r in chunks])

        # In a thread of its own: Playwright's event loop may already be running in this one.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, astream()).result()
        mlflow.flush_trace_async_logging()
    finally:
        mlflow.langchain.autolog(disable=True)
        mlflow.llama_index.autolog(disable=True)
        mlflow_ollama.revert()
        mlflow.set_tracking_uri(before)
    client = mlflow_server.client
    return Sent(
        server=mlflow_server,
        experiment=experiment,
        langchain_tool=client.get_trace(str(langchain_tool)),
        langchain_plain=client.get_trace(str(langchain_plain)),
        llamaindex_chat=client.get_trace(str(llamaindex_chat)),
        all=client.search_traces(experiment_ids=[experiment]),
    )


def _rows(page: Any, count: int, timeout: float = 30) -> tuple[list[str], list[list[str]]]:
    """The traces list's header and rows, each as its cells' text, once it shows ``count`` rows (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = page.get_by_role("row")
        table = [[cell.strip() for cell in str(found.nth(i).inner_text()).split("\n")] for i in range(found.count())]
        if len(table) == count + 1 or time.monotonic() > deadline:
            return (table[0] if table else []), table[1:]
        page.wait_for_timeout(250)


def test_traces_list_shows_each_framework_call_and_the_split_stream(page: Any, sent: Sent) -> None:
    """The first screen a user opens: a row per call, named by its root span; LlamaIndex's async stream in two."""
    assert len(sent.all) == 6  # five calls; astream_chat makes two traces
    page.set_viewport_size({"width": 1400, "height": 640})
    page.goto("about:blank")
    page.goto(f"{sent.server.url}/#/experiments/{sent.experiment}/traces")
    page.get_by_text(TOOL_QUESTION, exact=True).wait_for()
    got_it = page.get_by_text("Got it", exact=True)  # a one-time "Detect Issues" tip covers the list
    if got_it.count():
        got_it.click()
    # The root span's name tells the frameworks' traces from ours; the column is one click away.
    if not page.get_by_role("columnheader", name="Trace name").count():
        page.get_by_text("Display", exact=True).click()
        page.get_by_text("Columns", exact=True).click()
        page.get_by_text("Trace name", exact=True).click()
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
    page.get_by_role("columnheader", name="Trace name").wait_for()
    header, rows = _rows(page, len(sent.all))
    assert len(rows) == len(sent.all), rows
    name, question, answer = (header.index(column) for column in ("Trace name", "Input", "Output"))
    listed = [(row[name], row[question], row[answer]) for row in rows]
    # LangChain's: its ChatOllama span is the root, and MLflow previews its input as the question.
    assert ("ChatOllama", PLAIN_QUESTION, f"You said: {PLAIN_QUESTION}") in listed, listed
    [tool_call] = [row for row in listed if row[:2] == ("ChatOllama", TOOL_QUESTION)]
    assert "get_weather" in tool_call[2]
    # LlamaIndex's chat: its Ollama.chat span is the root (MLflow shows LlamaIndex's own JSON).
    assert [row[0] for row in listed if LLAMA_QUESTION in row[1] and STREAM_QUESTION not in row[1]] == ["Ollama.chat"]
    # Its stream_chat: one trace, ours beneath LlamaIndex's span (mlflow_ollama/_frameworks.py).
    assert [row[0] for row in listed if STREAM_QUESTION in row[1]] == ["Ollama.stream_chat"], listed
    # Its astream_chat, the known split (docs/frameworks.md): LlamaIndex's span, and ours alone with our previews.
    assert sorted(row[0] for row in listed if ASYNC_QUESTION in row[1]) == ["Ollama.astream_chat", "ollama.chat"]
    assert ("ollama.chat", ASYNC_QUESTION, f"You said: {ASYNC_QUESTION}") in listed, listed
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring on Display
    screenshot(page, "frameworks-traces-list.png")


def _open_and_select_ours(page: Any, sent: Sent, trace: Any, framework_span: str) -> str:
    """Open the trace; check the span tree is the framework's span with ours beneath; select ours; the page text."""
    page.set_viewport_size({"width": 1400, "height": 1200})  # tall enough for the span's chat view, outputs too
    page.goto("about:blank")  # a fresh load: from an open trace, a change of the URL's #part keeps its drawer
    open_trace(page, sent.server, trace)
    [ours] = [s for s in trace.data.spans if s.name == "ollama.chat"]
    [framework] = [s for s in trace.data.spans if s.name == framework_span]
    assert page.locator("[data-testid^='timeline-tree-node-']").count() == 2
    parent, child = (page.get_by_test_id(f"timeline-tree-node-{s.span_id}") for s in (framework, ours))
    assert str(parent.inner_text()).startswith(f"{framework_span}\n")
    assert str(child.inner_text()).startswith("ollama.chat\n")
    # Beneath it: the next row of the tree, indented one level.
    parent_icon, child_icon = (page.get_by_test_id(f"span-icon-{s.span_id}").bounding_box() for s in (framework, ours))
    assert child_icon["y"] > parent_icon["y"], (parent_icon, child_icon)
    assert child_icon["x"] > parent_icon["x"], (parent_icon, child_icon)
    child.click()
    # The selected span's header: its name, then its model (a row of the tree shows a duration instead).
    tokens = ours.attributes["mlflow.chat.tokenUsage"]["total_tokens"]
    header = ("ollama.chat", MODEL, f"{tokens} tokens")
    text = wait_shows(page, *header)
    assert shows(text, *header), text
    return text


def test_langchain_tool_call_shows_our_span_beneath_chat_ollama(page: Any, sent: Sent) -> None:
    text = _open_and_select_ours(page, sent, sent.langchain_tool, "ChatOllama")
    assert shows(text, "Tools", "(1)"), text
    assert shows(text, "User", TOOL_QUESTION), text
    assert shows(text, "Assistant", "Tool calls", "get_weather", "city", "Paris"), text
    screenshot(page, "frameworks-langchain.png")


def test_llamaindex_chat_shows_our_span_beneath_ollama_chat(page: Any, sent: Sent) -> None:
    text = _open_and_select_ours(page, sent, sent.llamaindex_chat, "Ollama.chat")
    assert shows(text, "User", LLAMA_QUESTION), text
    assert shows(text, "Assistant", f"You said: {LLAMA_QUESTION}"), text
    screenshot(page, "frameworks-llamaindex.png")
