"""Haystack, Agno and Strands Agents calling Ollama through the SDK, with MLflow's autolog for each on and off.

The real ``ollama-haystack``, ``agno`` and ``strands-agents`` drive the real ``ollama`` client
against the loopback double. Their MLflow autologs trace them through OpenTelemetry: the
framework's span is current in OpenTelemetry's context, not in MLflow's, and ours finds it there
(mlflow_ollama/_frameworks.py). With the framework's autolog on, each framework call is one trace:
the framework's spans, ours beneath them, the usage counted once. Off, each call is our span alone,
with our previews.
"""

from __future__ import annotations

import os

# Before Haystack is imported: no anonymous usage data sent (this machine has no network).
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

import asyncio
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from agno.agent import Agent as AgnoAgent
from agno.models.ollama import Ollama as AgnoOllama
from haystack import Pipeline
from haystack.dataclasses import ChatMessage
from haystack_integrations.components.embedders.ollama import OllamaTextEmbedder
from haystack_integrations.components.generators.ollama import OllamaChatGenerator
from strands import Agent as StrandsAgent
from strands.models.ollama import OllamaModel

import mlflow_ollama
from frame import assert_usage_counted_once, ours, path_to_root, previews_are_ours, reply
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, only_trace, traces


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One event loop for the test: an AsyncClient keeps connections bound to the loop it met.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def _check(on: bool, trace: Any, under: list[str], name: str = "ollama.chat") -> Any:
    """Ours beneath the framework's spans (``under``, nearest first) or alone; the usage counted once."""
    span = ours(trace, name)
    if on:
        assert path_to_root(trace, span) == under
    else:
        assert span.parent_id is None
        assert previews_are_ours(trace, span)
    if name == "ollama.chat":
        assert_usage_counted_once(trace, span)
    return span


# Haystack ---------------------------------------------------------------------------------------


@pytest.fixture(params=["with-haystack-autolog", "alone"])
def haystack_autolog(request: pytest.FixtureRequest) -> Iterator[bool]:
    """MLflow's Haystack autolog on (``mlflow.autolog()`` switches it on) or off."""
    on = request.param == "with-haystack-autolog"
    mlflow_ollama.autolog()
    if on:
        mlflow.haystack.autolog()
    yield on
    mlflow.haystack.autolog(disable=True)


def test_haystack_pipeline_chat(haystack_autolog: bool, server: OllamaDouble) -> None:
    pipeline = Pipeline()
    pipeline.add_component("llm", OllamaChatGenerator(model=MODEL, url=server.url))
    result = pipeline.run({"llm": {"messages": [ChatMessage.from_user("Hello pipeline")]}})
    assert result["llm"]["replies"][0].text == "You said: Hello pipeline"
    span = _check(haystack_autolog, only_trace(), ["OllamaChatGenerator", "haystack.pipeline.run"])
    assert reply(span)["content"] == "You said: Hello pipeline"


def test_haystack_pipeline_run_async(
    haystack_autolog: bool, server: OllamaDouble, loop: asyncio.AbstractEventLoop
) -> None:
    pipeline = Pipeline()
    pipeline.add_component("llm", OllamaChatGenerator(model=MODEL, url=server.url))
    loop.run_until_complete(pipeline.run_async({"llm": {"messages": [ChatMessage.from_user("Hello async")]}}))
    span = _check(haystack_autolog, only_trace(), ["OllamaChatGenerator", "haystack.pipeline.run"])
    assert reply(span)["content"] == "You said: Hello async"


def test_haystack_pipeline_embedding(haystack_autolog: bool, server: OllamaDouble) -> None:
    pipeline = Pipeline()
    pipeline.add_component("embedder", OllamaTextEmbedder(model="nomic-embed-text", url=server.url))
    assert pipeline.run({"embedder": {"text": "hello"}})["embedder"]["embedding"]
    under = ["OllamaTextEmbedder", "haystack.pipeline.run"] if haystack_autolog else []
    _check(haystack_autolog, only_trace(), under, name="ollama.embed")


def test_haystack_component_alone_is_ours_alone(haystack_autolog: bool, server: OllamaDouble) -> None:
    # MLflow's Haystack autolog traces pipelines; a component run on its own is our span alone.
    OllamaChatGenerator(model=MODEL, url=server.url).run(messages=[ChatMessage.from_user("Hello component")])
    span = _check(False, only_trace(), [])
    assert reply(span)["content"] == "You said: Hello component"


# Agno -------------------------------------------------------------------------------------------


@pytest.fixture(params=["with-agno-autolog", "alone"])
def agno_autolog(request: pytest.FixtureRequest) -> Iterator[bool]:
    """MLflow's Agno autolog on (``mlflow.autolog()`` switches it on) or off."""
    on = request.param == "with-agno-autolog"
    mlflow_ollama.autolog()
    if on:
        mlflow.agno.autolog()
    yield on
    if on:  # disabling it when it was never on only logs a warning
        mlflow.agno.autolog(disable=True)


@pytest.fixture
def agno_agent(server: OllamaDouble) -> AgnoAgent:
    return AgnoAgent(model=AgnoOllama(id=MODEL, host=server.url), telemetry=False)


def test_agno_run(agno_autolog: bool, agno_agent: AgnoAgent) -> None:
    assert agno_agent.run("Hello agent").content == "You said: Hello agent"
    span = _check(agno_autolog, only_trace(), ["Ollama.invoke", "Agent.run"])
    assert reply(span)["content"] == "You said: Hello agent"


def test_agno_run_stream(agno_autolog: bool, agno_agent: AgnoAgent) -> None:
    for _ in agno_agent.run("Hello stream", stream=True):
        pass
    span = _check(agno_autolog, only_trace(), ["Ollama.invoke_stream", "Agent.run"])
    assert reply(span)["content"] == "You said: Hello stream"


def test_agno_arun(agno_autolog: bool, agno_agent: AgnoAgent, loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(agno_agent.arun("Hello arun")).content == "You said: Hello arun"
    span = _check(agno_autolog, only_trace(), ["Ollama.ainvoke", "Agent.arun"])
    assert reply(span)["content"] == "You said: Hello arun"


def test_agno_arun_stream(agno_autolog: bool, agno_agent: AgnoAgent, loop: asyncio.AbstractEventLoop) -> None:
    async def consume() -> None:
        async for _ in agno_agent.arun("Hello astream", stream=True):
            pass

    loop.run_until_complete(consume())
    span = _check(agno_autolog, only_trace(), ["Ollama.ainvoke_stream", "Agent.arun"])
    assert reply(span)["content"] == "You said: Hello astream"


# Strands Agents ---------------------------------------------------------------------------------


@pytest.fixture(params=["with-strands-autolog", "alone"])
def strands_autolog(request: pytest.FixtureRequest) -> Iterator[bool]:
    """MLflow's Strands autolog on (``mlflow.autolog()`` switches it on) or off."""
    on = request.param == "with-strands-autolog"
    mlflow_ollama.autolog()
    if on:
        mlflow.strands.autolog()
    yield on
    mlflow.strands.autolog(disable=True)


@pytest.fixture
def strands_agent(server: OllamaDouble) -> StrandsAgent:
    return StrandsAgent(model=OllamaModel(server.url, model_id=MODEL), callback_handler=None)


STRANDS_UNDER = ["chat", "execute_event_loop_cycle", "invoke_agent Strands Agents"]


def test_strands_call(strands_autolog: bool, strands_agent: StrandsAgent) -> None:
    assert str(strands_agent("Hello agent")).strip() == "You said: Hello agent"
    span = _check(strands_autolog, only_trace(), STRANDS_UNDER)
    assert reply(span)["content"] == "You said: Hello agent"


def test_strands_invoke_async(
    strands_autolog: bool, strands_agent: StrandsAgent, loop: asyncio.AbstractEventLoop
) -> None:
    result = loop.run_until_complete(strands_agent.invoke_async("Hello async"))
    assert str(result).strip() == "You said: Hello async"
    span = _check(strands_autolog, only_trace(), STRANDS_UNDER)
    assert reply(span)["content"] == "You said: Hello async"


def test_strands_second_call_counts_its_own_usage(strands_autolog: bool, strands_agent: StrandsAgent) -> None:
    # Strands' agent span adds up the usage of every call the agent has made; each trace still
    # totals its own call's usage once.
    strands_agent("Hello first")
    strands_agent("Hello second")
    found = traces()
    assert len(found) == 2
    for trace in found:
        _check(strands_autolog, trace, STRANDS_UNDER)
