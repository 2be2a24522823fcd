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

import pytest
from agno.agent import Agent as AgnoAgent
from agno.models.ollama import Ollama as AgnoOllama
from haystack import Pipeline
from haystack.dataclasses import ChatMessage
from haystack_integrations.components.embedders.ollama import OllamaTextEmbedder
from haystack_integrations.components.generators.ollama import OllamaChatGenerator
from strands import Agent as StrandsAgent
from strands.models.ollama import OllamaModel

from frame import autolog_switch, check, reply
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, only_trace, traces


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One event loop for the test: an AsyncClient keeps connections bound to the loop it met.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


# Haystack ---------------------------------------------------------------------------------------


haystack_autolog = autolog_switch("haystack")


def test_haystack_pipeline_chat(haystack_autolog: bool, server: OllamaDouble) -> None:
    pipeline = Pipeline()
    pipeline.add_component("llm", OllamaChatGenerator(model=MODEL, url=server.url))
    result = pipeline.run({"llm": {"messages": [ChatMessage.from_user("Hello pipeline")]}})
    assert result["llm"]["replies"][0].text == "You said: Hello pipeline"
    span = check(haystack_autolog, only_trace(), ["OllamaChatGenerator", "haystack.pipeline.run"])
    assert reply(span)["content"] == "You said: Hello pipeline"


def test_haystack_pipeline_run_async(
    haystack_autolog: bool, server: OllamaDouble, loop: asyncio.AbstractEventLoop
) -> None:
    pipeline = Pipeline()
    pipeline.add_component("llm", OllamaChatGenerator(model=MODEL, url=server.url))
    loop.run_until_complete(pipeline.run_async({"llm": {"messages": [ChatMessage.from_user("Hello async")]}}))
    span = check(haystack_autolog, only_trace(), ["OllamaChatGenerator", "haystack.pipeline.run"])
    assert reply(span)["content"] == "You said: Hello async"


def test_haystack_pipeline_embedding(haystack_autolog: bool, server: OllamaDouble) -> None:
    pipeline = Pipeline()
    pipeline.add_component("embedder", OllamaTextEmbedder(model="nomic-embed-text", url=server.url))
    assert pipeline.run({"embedder": {"text": "hello"}})["embedder"]["embedding"]
    under = ["OllamaTextEmbedder", "haystack.pipeline.run"] if haystack_autolog else []
    check(haystack_autolog, only_trace(), under, name="ollama.embed")


def test_haystack_component_alone_is_ours_alone(haystack_autolog: bool, server: OllamaDouble) -> None:
    # MLflow's Haystack autolog traces pipelines; a component run on its own is our span alone.
    OllamaChatGenerator(model=MODEL, url=server.url).run(messages=[ChatMessage.from_user("Hello component")])
    span = check(False, only_trace(), [])
    assert reply(span)["content"] == "You said: Hello component"


# Agno -------------------------------------------------------------------------------------------


agno_autolog = autolog_switch("agno")


@pytest.fixture
def agno_agent(server: OllamaDouble) -> AgnoAgent:
    return AgnoAgent(model=AgnoOllama(id=MODEL, host=server.url), telemetry=False)


def test_agno_run(agno_autolog: bool, agno_agent: AgnoAgent) -> None:
    assert agno_agent.run("Hello agent").content == "You said: Hello agent"
    span = check(agno_autolog, only_trace(), ["Ollama.invoke", "Agent.run"])
    assert reply(span)["content"] == "You said: Hello agent"


def test_agno_run_stream(agno_autolog: bool, agno_agent: AgnoAgent) -> None:
    for _ in agno_agent.run("Hello stream", stream=True):
        pass
    span = check(agno_autolog, only_trace(), ["Ollama.invoke_stream", "Agent.run"])
    assert reply(span)["content"] == "You said: Hello stream"


def test_agno_arun(agno_autolog: bool, agno_agent: AgnoAgent, loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(agno_agent.arun("Hello arun")).content == "You said: Hello arun"
    span = check(agno_autolog, only_trace(), ["Ollama.ainvoke", "Agent.arun"])
    assert reply(span)["content"] == "You said: Hello arun"


def test_agno_arun_stream(agno_autolog: bool, agno_agent: AgnoAgent, loop: asyncio.AbstractEventLoop) -> None:
    async def consume() -> None:
        async for _ in agno_agent.arun("Hello astream", stream=True):
            pass

    loop.run_until_complete(consume())
    span = check(agno_autolog, only_trace(), ["Ollama.ainvoke_stream", "Agent.arun"])
    assert reply(span)["content"] == "You said: Hello astream"


# Strands Agents ---------------------------------------------------------------------------------


strands_autolog = autolog_switch("strands")


@pytest.fixture
def strands_agent(server: OllamaDouble) -> StrandsAgent:
    return StrandsAgent(model=OllamaModel(server.url, model_id=MODEL), callback_handler=None)


STRANDS_UNDER = ["chat", "execute_event_loop_cycle", "invoke_agent Strands Agents"]


def test_strands_call(strands_autolog: bool, strands_agent: StrandsAgent) -> None:
    assert str(strands_agent("Hello agent")).strip() == "You said: Hello agent"
    span = check(strands_autolog, only_trace(), STRANDS_UNDER)
    assert reply(span)["content"] == "You said: Hello agent"


def test_strands_invoke_async(
    strands_autolog: bool, strands_agent: StrandsAgent, loop: asyncio.AbstractEventLoop
) -> None:
    result = loop.run_until_complete(strands_agent.invoke_async("Hello async"))
    assert str(result).strip() == "You said: Hello async"
    span = check(strands_autolog, only_trace(), STRANDS_UNDER)
    assert reply(span)["content"] == "You said: Hello async"


def test_strands_second_call_counts_its_own_usage(strands_autolog: bool, strands_agent: StrandsAgent) -> None:
    # Strands' agent span adds up the usage of every call the agent has made; each trace still
    # totals its own call's usage once.
    strands_agent("Hello first")
    strands_agent("Hello second")
    found = traces()
    assert len(found) == 2
    for trace in found:
        check(strands_autolog, trace, STRANDS_UNDER)
