"""LangChain's ChatOllama and OllamaEmbeddings (``langchain-ollama``), with MLflow's LangChain autolog on and off.

The real packages drive the real ``ollama`` client against the loopback double. With
``mlflow.langchain.autolog()`` on, each LangChain call is one trace: LangChain's span, ours beneath
it. Off, each call is our span alone, with our previews.
"""

from __future__ import annotations

import asyncio

import mlflow
import pydantic
import pytest
from langchain_ollama import ChatOllama, OllamaEmbeddings

import mlflow_ollama
from frame import assert_usage_counted_once, autolog_switch, check, ours, path_to_root, previews_are_ours, reply
from mlflow_ollama.testing import OllamaDouble, Reply
from support import MODEL, only_trace

framework_autolog = autolog_switch("langchain")


@pytest.fixture
def llm(server: OllamaDouble) -> ChatOllama:
    return ChatOllama(model=MODEL, base_url=server.url)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


class City(pydantic.BaseModel):
    city: str


def test_invoke(framework_autolog: bool, llm: ChatOllama) -> None:
    llm.invoke("Hello there")
    span = check(framework_autolog, only_trace(), ["ChatOllama"])
    assert reply(span)["content"] == "You said: Hello there"


def test_stream(framework_autolog: bool, llm: ChatOllama) -> None:
    text = "".join(str(chunk.content) for chunk in llm.stream("Hello stream"))
    span = check(framework_autolog, only_trace(), ["ChatOllama"])
    assert reply(span)["content"] == text == "You said: Hello stream"


def test_bind_tools_shows_the_tool_call(framework_autolog: bool, llm: ChatOllama) -> None:
    message = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    trace = only_trace()
    span = check(framework_autolog, trace, ["ChatOllama"])
    [call] = reply(span)["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert span.attributes["mlflow.chat.tools"][0]["function"]["name"] == "get_weather"
    if framework_autolog:  # the framework's root: MLflow previews LangChain's output, not ours
        assert trace.info.response_preview != "get_weather(city='Paris')"


def test_with_structured_output(framework_autolog: bool, llm: ChatOllama, server: OllamaDouble) -> None:
    server.enqueue(Reply(content='{"city": "Paris"}'))
    assert llm.with_structured_output(City).invoke("Which city?") == City(city="Paris")
    # LangChain's chain: the model, then the parser, under one RunnableSequence.
    check(framework_autolog, only_trace(), ["ChatOllama", "RunnableSequence"])


def test_embeddings_are_ours_alone(framework_autolog: bool, server: OllamaDouble) -> None:
    # MLflow's LangChain autolog traces runnables and chat models; OllamaEmbeddings is neither.
    OllamaEmbeddings(model="nomic-embed-text", base_url=server.url).embed_query("hello")
    trace = only_trace()
    span = ours(trace, "ollama.embed")
    assert span.parent_id is None
    assert previews_are_ours(trace, span)


def test_ainvoke(framework_autolog: bool, llm: ChatOllama) -> None:
    # MLflow's LangChain tracer runs as a synchronous callback handler in an executor, with a copy
    # of the context, so its span is never current where the SDK is called: found by LangChain's
    # run instead (mlflow_ollama/_frameworks.py), ours nests as for invoke.
    asyncio.run(llm.ainvoke("Hello async"))
    span = check(framework_autolog, only_trace(), ["ChatOllama"])
    assert reply(span)["content"] == "You said: Hello async"


def test_astream(framework_autolog: bool, llm: ChatOllama) -> None:
    async def consume() -> str:
        return "".join([str(chunk.content) async for chunk in llm.astream("Hello async stream")])

    assert asyncio.run(consume()) == "You said: Hello async stream"
    span = check(framework_autolog, only_trace(), ["ChatOllama"])
    assert reply(span)["content"] == "You said: Hello async stream"


def test_an_app_span_around_an_async_call(llm: ChatOllama) -> None:
    # The app's own span is current where the SDK is called; LangChain's, beneath it, is the nearer
    # parent: ours goes under LangChain's, and the usage is counted once.
    mlflow_ollama.autolog()
    mlflow.langchain.autolog()
    try:

        async def answer() -> None:
            with mlflow.start_span("answer"):
                await llm.ainvoke("Hello async")

        asyncio.run(answer())
    finally:
        mlflow.langchain.autolog(disable=True)
    trace = only_trace()
    span = ours(trace)
    assert path_to_root(trace, span) == ["ChatOllama", "answer"]
    assert_usage_counted_once(trace, span)
