"""Non-streamed chat, end to end: the real client over loopback HTTP, traces from a real store."""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import mlflow
import ollama
import pydantic
import pytest
from mlflow.entities import SpanType

import mlflow_ollama
from mlflow_ollama.testing import LOAD_NS, Failure, OllamaDouble, Reply
from support import MODEL, base_name, chat_spans, only_trace, sdk_accepts, trace_token_usage, traces, user

OLLAMA_VERSION = tuple(int(p) for p in importlib.metadata.version("ollama").split(".")[:2])
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return f"22C and sunny in {city}"


@pytest.fixture(autouse=True)
def _autolog() -> None:
    mlflow_ollama.autolog()


def test_client_chat_gives_one_chat_model_span_with_inputs_outputs_and_attributes(client: Any) -> None:
    response = client.chat(model=MODEL, messages=user("hello there"))
    [span] = only_trace().data.spans
    assert span.name == "ollama.chat"
    assert span.span_type == SpanType.CHAT_MODEL
    assert span.status.status_code == "OK"
    assert span.inputs == {"model": MODEL, "messages": user("hello there")}
    assert span.outputs == response.model_dump(mode="json", exclude_none=True)
    assert span.outputs["message"] == {"role": "assistant", "content": "You said: hello there"}
    attributes = span.attributes
    assert attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 2, "output_tokens": 4, "total_tokens": 6}
    assert attributes["mlflow.llm.model"] == MODEL
    assert attributes["mlflow.llm.provider"] == "ollama"
    assert attributes["mlflow.llm.cost"] == {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0}
    # The test's first call: the double's model loads (testing.LOAD_NS), then 1 ms of templating.
    assert attributes["ollama.load_duration_ns"] == LOAD_NS
    assert attributes["ollama.total_duration_ns"] == LOAD_NS + 20_000_000 + 40_000_000 + 1_000_000
    assert attributes["ollama.prompt_eval_duration_ns"] == 20_000_000
    assert attributes["ollama.eval_duration_ns"] == 40_000_000
    assert attributes["ollama.output_tokens_per_second"] == 100.0
    assert attributes["ollama.done_reason"] == "stop"
    assert attributes["mlflow.chat.messages"] == [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "You said: hello there"},
    ]


def test_trace_level_usage_and_cost_come_out_of_the_store(client: Any) -> None:
    client.chat(model="deepseek-r1", messages=user("price me"))
    trace = only_trace()
    assert trace_token_usage(trace) == {"input_tokens": 2, "output_tokens": 4, "total_tokens": 6}
    # A local model named like a paid one must not be priced from MLflow's catalog.
    cost = trace.data.spans[0].attributes.get("mlflow.llm.cost")
    assert cost == {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0}


def test_module_level_chat_is_traced(server: OllamaDouble) -> None:
    ollama.chat(model=MODEL, messages=user("module"))
    [span] = chat_spans(only_trace())
    assert span.inputs["messages"] == user("module")
    assert span.attributes["ollama.host"] == server.url


def test_async_client_chat_is_traced(async_client: Any) -> None:
    response = asyncio.run(async_client.chat(model=MODEL, messages=user("async")))
    [span] = chat_spans(only_trace())
    assert span.outputs["message"]["content"] == response.message.content == "You said: async"
    assert span.attributes["mlflow.chat.tokenUsage"]["output_tokens"] == 3


def test_positional_and_keyword_arguments_are_recorded_by_name(client: Any) -> None:
    client.chat(MODEL, user("positional"), keep_alive="5m", format="json")
    [span] = chat_spans(only_trace())
    assert span.inputs == {"model": MODEL, "messages": user("positional"), "keep_alive": "5m", "format": "json"}


def test_message_objects_are_recorded_as_dicts(client: Any) -> None:
    messages = [
        ollama.Message(role="system", content="be brief"),
        ollama.Message(role="user", content="hi"),
    ]
    client.chat(model=MODEL, messages=messages)
    [span] = chat_spans(only_trace())
    assert span.inputs["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert "Message(" not in json.dumps(span.to_dict())


def test_tools_given_as_functions_are_recorded_as_schemas_and_chat_tools(client: Any) -> None:
    response = client.chat(model=MODEL, messages=user("Weather in Paris?"), tools=[get_weather])
    [span] = chat_spans(only_trace())
    schema = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string", "description": "The name of the city"}},
            },
        },
    }
    assert span.inputs["tools"] == [schema]
    assert span.attributes["mlflow.chat.tools"] == [schema]
    assert response.message.tool_calls[0].function.arguments == {"city": "Paris"}
    assistant = span.attributes["mlflow.chat.messages"][-1]
    assert assistant["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]


@pytest.mark.skipif(not sdk_accepts("think"), reason="think= arrived in ollama 0.5")
def test_thinking_is_recorded_in_outputs_and_as_reasoning(client: Any) -> None:
    client.chat(model=MODEL, messages=user("think about it"), think=True)
    [span] = chat_spans(only_trace())
    assert span.inputs["think"] is True
    assert span.outputs["message"]["thinking"] == "The user wrote 3 words."
    assert span.attributes["mlflow.chat.messages"][-1] == {
        "role": "assistant",
        "content": "You said: think about it",
        "reasoning": "The user wrote 3 words.",
    }


def test_images_are_summaries_never_base64(client: Any, server: OllamaDouble, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)
    client.chat(model=MODEL, messages=[{"role": "user", "content": "what?", "images": [PNG, str(path)]}])
    [span] = chat_spans(only_trace())
    summaries = span.inputs["messages"][0]["images"]
    for summary in summaries:
        summary.pop("content", None)  # an attachment reference, with MLflow 3.11+ (test_surface.py)
    assert summaries == [
        {"type": "image", "media_type": "image/png", "size_bytes": len(PNG)},
        {"type": "image", "media_type": "image/png", "size_bytes": len(PNG), "path": str(path)},
    ]
    encoded = base64.b64encode(PNG).decode()
    assert encoded in json.dumps(server.requests[-1].body)  # the image really was sent...
    assert encoded[:64] not in only_trace().to_json()  # ...and is nowhere in the trace


def test_missing_counts_are_left_out_not_zero(client: Any, server: OllamaDouble) -> None:
    server.enqueue(Reply(content="cached", prompt_eval_count=None))
    client.chat(model=MODEL, messages=user("x"))
    [span] = chat_spans(only_trace())
    assert span.attributes["mlflow.chat.tokenUsage"] == {"output_tokens": 1}


@pytest.mark.skipif(not sdk_accepts("logprobs"), reason="logprobs= arrived in ollama 0.6.1")
def test_logprobs_and_options_are_kept(client: Any, server: OllamaDouble) -> None:
    logprob = {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}]}
    server.enqueue(Reply(content="Hi", logprobs=[logprob]))
    client.chat(model=MODEL, messages=user("x"), options=ollama.Options(temperature=0.1, seed=7), logprobs=True)
    [span] = chat_spans(only_trace())
    assert span.inputs["options"] == {"temperature": 0.1, "seed": 7}
    assert span.outputs["logprobs"] == [logprob]


# --- errors ---------------------------------------------------------------------------------------


class _Spy:
    """Sits under our wrapper, as the SDK's own method, and keeps what it returned or raised."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        mlflow_ollama.revert()
        original = vars(cls)["chat"]
        spy = self

        if asyncio.iscoroutinefunction(original):

            async def chat(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    spy.result = await original(self, *args, **kwargs)
                except BaseException as exc:
                    spy.error = exc
                    raise
                return spy.result

        else:

            def chat(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                try:
                    spy.result = original(self, *args, **kwargs)
                except BaseException as exc:
                    spy.error = exc
                    raise
                return spy.result

        monkeypatch.setattr(cls, "chat", chat)
        mlflow_ollama.autolog()


def _exception_event(span: Any) -> dict[str, Any]:
    [event] = [e for e in span.events if e.name == "exception"]
    return dict(event.attributes)


def test_a_response_error_reaches_the_caller_unchanged_and_the_span_is_error(
    server: OllamaDouble, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch, ollama.Client)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="missing-model", messages=user("x"))
    assert caught.value is spy.error
    assert caught.value.status_code == 404
    [span] = chat_spans(only_trace())
    assert span.status.status_code == "ERROR"
    assert _exception_event(span)["exception.type"] == "ResponseError"
    assert span.attributes["ollama.error.status_code"] == 404
    assert span.attributes["mlflow.chat.messages"] == user("x")
    assert span.outputs is None


def test_a_server_error_in_an_async_call_is_recorded(
    server: OllamaDouble, async_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch, ollama.AsyncClient)
    server.enqueue(Failure("out of memory", status=500))
    with pytest.raises(ollama.ResponseError) as caught:
        asyncio.run(async_client.chat(model=MODEL, messages=user("x")))
    assert caught.value is spy.error
    [span] = chat_spans(only_trace())
    assert span.status.status_code == "ERROR"
    assert "out of memory" in _exception_event(span)["exception.message"]


def test_connection_refused_is_recorded_and_re_raised() -> None:
    client = ollama.Client(host="http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises((ConnectionError, httpx.ConnectError)):
        client.chat(model=MODEL, messages=user("x"))
    [span] = chat_spans(only_trace())
    assert span.status.status_code == "ERROR"
    assert _exception_event(span)["exception.type"] in ("ConnectionError", "ConnectError")


def test_a_validation_error_before_any_request_is_recorded(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch, ollama.Client)
    with pytest.raises(pydantic.ValidationError) as caught:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "x", "tool_calls": "not a list"}])
    assert caught.value is spy.error
    [span] = chat_spans(only_trace())
    assert span.status.status_code == "ERROR"
    assert _exception_event(span)["exception.type"] == "ValidationError"


def test_the_result_is_the_very_object_the_sdk_returned(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch, ollama.Client)
    assert client.chat(model=MODEL, messages=user("x")) is spy.result


# --- secrets --------------------------------------------------------------------------------------


def test_no_secret_from_headers_env_or_host_reaches_the_trace(
    server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "canary-env-5f1c")
    host = server.url.replace("http://", "http://alice:canary-pass-77ab@")
    with_headers = ollama.Client(host=host, headers={"X-Api-Key": "canary-header-9d2e"})
    with_env = ollama.Client(host=server.url)
    with mlflow.start_span("app"):
        with_headers.chat(model=MODEL, messages=user("secret test"))
        with_env.chat(model=MODEL, messages=user("secret test"))
    exported = only_trace().to_json()
    for canary in ("canary-env-5f1c", "canary-pass-77ab", "canary-header-9d2e", "alice"):
        assert canary not in exported
    sent = [r.headers for r in server.requests[-2:]]
    assert sent[0]["x-api-key"] == "<redacted>"  # the secrets really were in play
    if OLLAMA_VERSION >= (0, 6):
        assert sent[1]["authorization"] == "<redacted>"


# --- nesting and concurrency ----------------------------------------------------------------------


@mlflow.trace(span_type=SpanType.TOOL)
def _weather_tool(city: str) -> str:
    return get_weather(city)


@mlflow.trace(span_type=SpanType.CHAIN, name="tool_loop")
def _tool_loop(question: str) -> str:
    """The tool-calling loop from MLflow's Ollama tracing blog post."""
    messages: list[Any] = user(question)
    response = ollama.chat(model=MODEL, messages=messages, tools=[get_weather])
    messages.append(response.message)
    for call in response.message.tool_calls or []:
        result = _weather_tool(**call.function.arguments)
        messages.append({"role": "tool", "content": result, "tool_name": call.function.name})
    final = ollama.chat(model=MODEL, messages=messages)
    return str(final.message.content)


def test_tool_calling_loop_is_one_trace_with_chain_chat_tool_chat() -> None:
    answer = _tool_loop("What is the weather in Tokyo?")
    # ollama before 0.5.2 drops tool_name, so the toy model cannot name the tool.
    tool = "get_weather" if "tool_name" in ollama.Message.model_fields else "the tool"
    assert answer == f"According to {tool}: 22C and sunny in Tokyo"
    trace = only_trace()
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.name == "tool_loop"
    assert root.span_type == SpanType.CHAIN
    children = sorted((s for s in trace.data.spans if s.parent_id == root.span_id), key=lambda s: s.start_time_ns)
    assert [(base_name(s), s.span_type) for s in children] == [
        ("ollama.chat", SpanType.CHAT_MODEL),
        ("_weather_tool", SpanType.TOOL),
        ("ollama.chat", SpanType.CHAT_MODEL),
    ]
    assert len(trace.data.spans) == 4
    conversation = children[2].attributes["mlflow.chat.messages"]
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "assistant"]
    assert conversation[1]["tool_calls"][0]["id"] == conversation[2]["tool_call_id"] == "call_0"
    assert conversation[3]["content"] == answer
    usage = trace_token_usage(trace)
    assert usage is not None
    assert usage["total_tokens"] == sum(
        c.attributes["mlflow.chat.tokenUsage"]["total_tokens"] for c in (children[0], children[2])
    )


def test_100_concurrent_async_calls_each_land_under_their_own_parent(async_client: Any) -> None:
    async def one(i: int) -> tuple[str, int]:
        with mlflow.start_span(f"parent-{i}") as parent:
            await async_client.chat(model=MODEL, messages=user(f"task {i}"))
        return parent.trace_id, i

    async def all_of_them() -> list[tuple[str, int]]:
        return await asyncio.gather(*(one(i) for i in range(100)))

    expected = dict(asyncio.run(all_of_them()))
    found = traces()
    assert len(found) == 100
    for trace in found:
        i = expected[trace.info.trace_id]
        parent, chat = sorted(trace.data.spans, key=lambda s: s.parent_id is not None)
        assert parent.name == f"parent-{i}"
        assert chat.parent_id == parent.span_id
        assert chat.inputs["messages"] == user(f"task {i}")
        assert chat.outputs["message"]["content"] == f"You said: task {i}"


def test_calls_in_threads_nest_under_that_threads_span(client: Any) -> None:
    ids: dict[str, int] = {}
    lock = threading.Lock()

    def work(i: int) -> None:
        with mlflow.start_span(f"thread-{i}") as parent:
            client.chat(model=MODEL, messages=user(f"thread {i}"))
            client.chat(model=MODEL, messages=user(f"thread {i} again"))
        with lock:
            ids[parent.trace_id] = i

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = traces()
    assert len(found) == 8
    for trace in found:
        i = ids[trace.info.trace_id]
        chats = chat_spans(trace)
        assert len(chats) == 2
        assert {c.inputs["messages"][0]["content"] for c in chats} == {f"thread {i}", f"thread {i} again"}
