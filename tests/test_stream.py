"""Streamed chat: one complete span however the stream ends, sync and async, over loopback HTTP."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
from collections.abc import Callable
from typing import Any

import httpx
import mlflow
import ollama
import pytest
from mlflow.entities import SpanType
from mlflow.tracing.trace_manager import InMemoryTraceManager

import mlflow_ollama
from mlflow_ollama import _stream
from mlflow_ollama._safety import _reported
from mlflow_ollama.testing import Failure, OllamaDouble, Reply
from support import MODEL, chat_spans, only_trace, sdk_accepts, traces, user

TEXT = "The quick brown fox jumps over the lazy dog"


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return "sunny"


def _open_traces() -> set[str]:
    return set(InMemoryTraceManager.get_instance()._traces.keys())  # type: ignore[no-untyped-call]


@pytest.fixture(autouse=True)
def _autolog() -> Any:
    before = _open_traces()
    mlflow_ollama.autolog()
    yield
    gc.collect()
    # Whatever a test did to its streams, no span may be left open in MLflow's trace manager.
    assert _open_traces() - before == set()


def _span() -> Any:
    [span] = chat_spans(only_trace())
    return span


def _sync_parts(client: Any, **kwargs: Any) -> list[Any]:
    return list(client.chat(model=MODEL, messages=user(TEXT), stream=True, **kwargs))


def _async_parts(server: OllamaDouble, **kwargs: Any) -> list[Any]:
    async def consume() -> list[Any]:
        client = ollama.AsyncClient(host=server.url)
        return [part async for part in await client.chat(model=MODEL, messages=user(TEXT), stream=True, **kwargs)]

    return asyncio.run(consume())


@pytest.fixture(params=["sync", "async"])
def consume(request: pytest.FixtureRequest, client: Any, server: OllamaDouble) -> Callable[..., list[Any]]:
    """Consume a whole streamed chat, through Client or AsyncClient."""
    if request.param == "sync":
        return lambda **kwargs: _sync_parts(client, **kwargs)
    return lambda **kwargs: _async_parts(server, **kwargs)


# --- the protocol is kept ---------------------------------------------------------------------------


def test_sync_stream_is_still_a_generator(client: Any) -> None:
    stream = client.chat(model=MODEL, messages=user("x"), stream=True)
    assert inspect.isgenerator(stream)
    for method in ("send", "throw", "close", "__next__", "__iter__"):
        assert callable(getattr(stream, method))
    stream.close()


def test_async_stream_is_still_an_async_generator(server: OllamaDouble) -> None:
    async def check() -> None:
        stream: Any = await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user("x"), stream=True)
        assert inspect.isasyncgen(stream)
        first: Any = await stream.__anext__()
        assert first.message.role == "assistant"
        await stream.aclose()

    asyncio.run(check())


def test_module_level_stream_is_traced() -> None:
    parts: list[Any] = list(ollama.chat(model=MODEL, messages=user(TEXT), stream=True))
    assert "".join(p.message.content for p in parts) == f"You said: {TEXT}"
    assert _span().attributes["ollama.stream.end"] == "complete"


# --- fully consumed ---------------------------------------------------------------------------------


def test_a_consumed_stream_records_what_the_plain_call_would(
    consume: Callable[..., list[Any]], client: Any, server: OllamaDouble
) -> None:
    parts = consume()
    assert "".join(p.message.content for p in parts) == f"You said: {TEXT}"
    server.scheduler.unload_all()  # the plain call waits for the same load as the streamed one
    plain = client.chat(model=MODEL, messages=user(TEXT))
    streamed_trace, plain_trace = traces()
    streamed, unstreamed = chat_spans(streamed_trace)[0], chat_spans(plain_trace)[0]
    assert streamed.name == "ollama.chat"
    assert streamed.span_type == SpanType.CHAT_MODEL
    assert streamed.status.status_code == "OK"
    assert streamed.inputs == {**unstreamed.inputs, "stream": True}
    assert streamed.outputs == unstreamed.outputs == plain.model_dump(mode="json", exclude_none=True)
    for key in (
        "mlflow.chat.tokenUsage",
        "mlflow.chat.messages",
        "mlflow.llm.model",
        "mlflow.llm.provider",
        "mlflow.llm.cost",
        "ollama.total_duration_ns",
        "ollama.eval_duration_ns",
        "ollama.done_reason",
    ):
        assert streamed.attributes[key] == unstreamed.attributes[key], key
    assert streamed.attributes["ollama.stream.chunks"] == len(parts) == 12  # 11 words, then done
    assert streamed.attributes["ollama.stream.end"] == "complete"
    assert streamed.attributes["ollama.time_to_first_token_ns"] > 0


def test_streamed_tool_calls_are_concatenated_across_chunks(
    consume: Callable[..., list[Any]], server: OllamaDouble
) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Rome"}},
    ]
    server.enqueue(Reply(tool_calls=calls[:1]), Reply(tool_calls=calls))
    consume(tools=[get_weather])
    consume(tools=[get_weather])
    first, second = (chat_spans(t)[0] for t in traces())
    assert [c["function"]["arguments"] for c in first.outputs["message"]["tool_calls"]] == [{"city": "Paris"}]
    assert [c["function"]["arguments"]["city"] for c in second.outputs["message"]["tool_calls"]] == ["Paris", "Rome"]
    assistant = second.attributes["mlflow.chat.messages"][-1]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_0", "call_1"]
    assert second.attributes["mlflow.chat.tools"][0]["function"]["name"] == "get_weather"


def test_tool_calls_split_over_several_chunks_are_all_kept(client: Any, server: OllamaDouble) -> None:
    # The double puts all calls of a reply in one chunk; two replies' worth of chunks are
    # stitched here by scripting a call, then checking the SDK sees both in the merged output.
    server.enqueue(Reply(content="checking", tool_calls=[{"name": "a", "arguments": {}}]))
    list(client.chat(model=MODEL, messages=user("x"), stream=True))
    assert [c["function"]["name"] for c in _span().outputs["message"]["tool_calls"]] == ["a"]


@pytest.mark.skipif(not sdk_accepts("think"), reason="think= arrived in ollama 0.5")
def test_streamed_thinking_is_concatenated(consume: Callable[..., list[Any]]) -> None:
    consume(think=True)
    span = _span()
    assert span.outputs["message"]["thinking"] == "The user wrote 9 words."
    assert span.attributes["mlflow.chat.messages"][-1]["reasoning"] == "The user wrote 9 words."


# --- ended early ------------------------------------------------------------------------------------


def _assert_incomplete(how: str, chunks: int) -> None:
    span = _span()
    assert span.status.status_code != "ERROR"
    assert span.attributes["ollama.stream.end"] == how
    assert span.attributes["ollama.stream.chunks"] == chunks
    assert span.outputs["done"] is False
    assert span.end_time_ns is not None


def test_break_then_close(client: Any) -> None:
    stream = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    for index, _ in enumerate(stream):
        if index == 2:
            break
    stream.close()
    _assert_incomplete("closed", 3)
    assert _span().outputs["message"]["content"] == "You said: The "


def test_break_without_keeping_a_reference_ends_the_span(client: Any) -> None:
    for _ in client.chat(model=MODEL, messages=user(TEXT), stream=True):
        break
    gc.collect()
    _assert_incomplete("abandoned", 1)


def test_async_break_then_aclose(server: OllamaDouble) -> None:
    async def run() -> None:
        stream: Any = await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user(TEXT), stream=True)
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(run())
    _assert_incomplete("closed", 1)


def test_never_iterated_then_collected_ends_with_no_output(client: Any, server: OllamaDouble) -> None:
    sent = len(server.requests)
    stream = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    del stream
    gc.collect()
    span = _span()
    assert span.attributes["ollama.stream.end"] == "abandoned"
    assert span.outputs is None
    assert len(server.requests) == sent  # nothing was ever sent


def test_closed_before_the_first_chunk_ends_the_span_at_once(client: Any, server: OllamaDouble) -> None:
    sent = len(server.requests)
    stream = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    stream.close()
    # Still referenced: the span ended on close(), not when the stream is collected.
    span = _span()
    assert span.attributes["ollama.stream.end"] == "closed"
    assert span.attributes["ollama.stream.chunks"] == 0
    assert span.outputs is None
    assert len(server.requests) == sent
    with pytest.raises(StopIteration):
        next(stream)  # closed, as the SDK's own generator would be
    del stream


def test_async_stream_made_in_one_loop_is_consumed_in_another(server: OllamaDouble) -> None:
    """Not primed, so the first loop's shutdown does not close it (priming did, in a draft)."""

    async def make() -> Any:
        return await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user(TEXT), stream=True)

    async def consume(stream: Any) -> list[Any]:
        return [part async for part in stream]

    stream = asyncio.run(make())
    parts = asyncio.run(consume(stream))
    assert "".join(p.message.content for p in parts) == f"You said: {TEXT}"
    assert _span().attributes["ollama.stream.end"] == "complete"


@pytest.mark.parametrize("traced", [False, True])
def test_first_send_and_throw_behave_as_the_sdk_generator(client: Any, traced: bool) -> None:
    if not traced:
        mlflow_ollama.revert()
    stream = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    with pytest.raises(TypeError, match="just-started generator"):
        stream.send("not None")  # what a generator that has not started says
    # The one difference priming makes: the SDK's generator could still be iterated now; ours has
    # finished, its span ended as an error (docs/streaming.md).
    assert (list(stream) == []) is traced
    other = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    with pytest.raises(KeyError, match="thrown"):
        other.throw(KeyError("thrown"))
    if traced:
        spans = chat_spans(traces()[-1])
        assert spans[0].attributes["ollama.stream.end"] == "error"


def test_async_never_iterated_then_collected(server: OllamaDouble) -> None:
    async def run() -> None:
        stream = await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user(TEXT), stream=True)
        del stream

    asyncio.run(run())
    gc.collect()
    assert _span().attributes["ollama.stream.end"] == "abandoned"


def test_a_cancelled_consumer_task_ends_the_span_with_partial_output(server: OllamaDouble) -> None:
    server.enqueue(Reply(content="one two three", delay=0))

    async def run() -> None:
        got_one = asyncio.Event()
        client = ollama.AsyncClient(host=server.url)

        async def consumer() -> None:
            async for _ in await client.chat(model=MODEL, messages=user("x"), stream=True):
                got_one.set()
                await asyncio.sleep(10)  # cancelled here, mid-stream

        task = asyncio.create_task(consumer())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    gc.collect()
    span = _span()
    assert span.status.status_code != "ERROR"
    assert span.attributes["ollama.stream.end"] in ("cancelled", "closed", "abandoned")
    assert span.outputs["message"]["content"] == "one "


def test_cancelled_while_waiting_for_a_chunk(server: OllamaDouble) -> None:
    server.enqueue(Reply(content="slow", delay=5))

    async def run() -> None:
        client = ollama.AsyncClient(host=server.url)
        stream = await client.chat(model=MODEL, messages=user("x"), stream=True)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.__anext__(), timeout=0.2)

    asyncio.run(run())
    gc.collect()
    span = _span()
    assert span.status.status_code != "ERROR"
    assert span.attributes["ollama.stream.end"] == "cancelled"
    assert span.outputs is None


# --- errors -----------------------------------------------------------------------------------------


def _catch(run: Callable[[], Any]) -> BaseException:
    try:
        run()
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


class _Raw:
    """The SDK generator's own exception, caught beneath our wrapper, to compare identities."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.errors: list[BaseException] = []
        real = _stream._sync
        spy = self

        def inner_spy(state: Any, inner: Any) -> Any:
            def watched() -> Any:
                try:
                    yield from inner
                except BaseException as exc:
                    spy.errors.append(exc)
                    raise

            return real(state, watched())

        monkeypatch.setattr(_stream, "_sync", inner_spy)


def test_an_error_line_mid_stream_is_error_with_partial_output(
    client: Any, server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _Raw(monkeypatch)
    server.enqueue(Failure("model crashed", after_chunks=3))
    received: list[Any] = []

    def run() -> None:
        for part in client.chat(model=MODEL, messages=user(TEXT), stream=True):
            received.append(part)

    error = _catch(run)
    assert isinstance(error, ollama.ResponseError)
    assert error.status_code == -1
    assert len(raw.errors) == 1
    assert raw.errors[0] is error
    span = _span()
    assert span.status.status_code == "ERROR"
    assert [e.name for e in span.events] == ["exception"]
    assert span.outputs["message"]["content"] == "".join(p.message.content for p in received) == "You said: The "
    assert span.attributes["ollama.stream.chunks"] == 3
    assert span.attributes["ollama.error.status_code"] == -1


def test_an_async_error_line_mid_stream(server: OllamaDouble) -> None:
    server.enqueue(Failure("model crashed", after_chunks=2))
    error = _catch(lambda: _async_parts(server))
    assert isinstance(error, ollama.ResponseError)
    span = _span()
    assert span.status.status_code == "ERROR"
    assert span.outputs["message"]["content"] == "You said: "


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dropped_connection_mid_stream(mode: str, client: Any, server: OllamaDouble) -> None:
    server.enqueue(Failure(after_chunks=2, drop=True))
    error = _catch(lambda: _sync_parts(client) if mode == "sync" else _async_parts(server))
    assert isinstance(error, httpx.HTTPError)
    span = _span()
    assert span.status.status_code == "ERROR"
    assert span.attributes["ollama.stream.chunks"] == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_http_error_before_the_first_chunk(mode: str, client: Any, server: OllamaDouble) -> None:
    def run() -> Any:
        if mode == "sync":
            return list(client.chat(model="missing-model", messages=user("x"), stream=True))

        async def consume() -> Any:
            c = ollama.AsyncClient(host=server.url)
            return [p async for p in await c.chat(model="missing-model", messages=user("x"), stream=True)]

        return asyncio.run(consume())

    error = _catch(run)
    assert isinstance(error, ollama.ResponseError)
    assert error.status_code == 404
    span = _span()
    assert span.status.status_code == "ERROR"
    assert span.outputs is None
    assert span.attributes["ollama.stream.chunks"] == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_connection_refused_on_a_stream_is_the_raw_httpx_error(mode: str) -> None:
    host = "http://127.0.0.1:9"

    def run() -> Any:
        if mode == "sync":
            return list(ollama.Client(host=host).chat(model=MODEL, messages=user("x"), stream=True))

        async def consume() -> Any:
            c = ollama.AsyncClient(host=host)
            return [p async for p in await c.chat(model=MODEL, messages=user("x"), stream=True)]

        return asyncio.run(consume())

    error = _catch(run)
    assert isinstance(error, httpx.ConnectError)
    span = _span()
    assert span.status.status_code == "ERROR"
    assert span.outputs is None


def test_throw_is_handed_to_the_sdk_generator(client: Any) -> None:
    stream = client.chat(model=MODEL, messages=user(TEXT), stream=True)
    next(stream)
    with pytest.raises(KeyError):
        stream.throw(KeyError("from the consumer"))
    span = _span()
    assert span.status.status_code == "ERROR"
    assert span.attributes["ollama.stream.chunks"] == 1


# --- context and robustness -------------------------------------------------------------------------


def test_spans_opened_while_consuming_are_siblings_of_the_chat_span(client: Any) -> None:
    with mlflow.start_span("agent") as agent:
        for part in client.chat(model=MODEL, messages=user(TEXT), stream=True):
            current = mlflow.get_current_active_span()
            assert current is not None
            assert current.span_id == agent.span_id  # the chat span never leaks into the context
            if part.done:
                with mlflow.start_span("handle_reply", span_type=SpanType.TOOL):
                    pass
    trace = only_trace()
    by_name = {s.name: s for s in trace.data.spans}
    assert by_name["ollama.chat"].parent_id == agent.span_id
    assert by_name["handle_reply"].parent_id == agent.span_id


def test_async_consumer_spans_are_siblings_too(server: OllamaDouble) -> None:
    async def run() -> None:
        with mlflow.start_span("agent"):
            client = ollama.AsyncClient(host=server.url)
            async for part in await client.chat(model=MODEL, messages=user("x"), stream=True):
                if part.done:
                    with mlflow.start_span("handle_reply"):
                        pass

    asyncio.run(run())
    by_name = {s.name: s for s in only_trace().data.spans}
    assert by_name["handle_reply"].parent_id == by_name["ollama.chat"].parent_id == by_name["agent"].span_id


def test_a_failure_of_our_bookkeeping_never_breaks_the_stream(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("MLFLOW_OLLAMA_STRICT")
    _reported.clear()
    expected = [p.message.content for p in _sync_parts(client)]

    def broken(self: Any, fragment: str) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(_stream._Text, "add", broken)
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        got = [p.message.content for p in _sync_parts(client)]
    assert got == expected
    assert len([r for r in caplog.records if r.name == "mlflow_ollama"]) == 1
    assert chat_spans(traces()[1])[0].end_time_ns is not None


def test_chat_bound_before_autolog_streams_are_traced(server: OllamaDouble) -> None:
    mlflow_ollama.revert()
    early = ollama.Client(host=server.url).chat
    mlflow_ollama.autolog()
    parts = list(early(model=MODEL, messages=user(TEXT), stream=True))
    span = _span()
    assert span.inputs == {"model": MODEL, "messages": user(TEXT), "stream": True}
    assert span.attributes["ollama.stream.chunks"] == len(parts)
    assert span.outputs["message"]["content"] == f"You said: {TEXT}"


def test_streams_are_not_traced_when_switched_off(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "off")
    stream = client.chat(model=MODEL, messages=user("x"), stream=True)
    assert "mlflow_ollama" not in getattr(stream, "__qualname__", "") + str(stream.gi_code.co_filename)
    list(stream)
    assert traces() == []
