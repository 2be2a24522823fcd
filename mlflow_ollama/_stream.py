"""Streams: one span per streamed call, however the stream ends.

The SDK's ``chat(stream=True)`` returns a lazy generator (an async generator for ``AsyncClient``).
We hand back a generator of our own that yields the very same chunks, keeps only what the final
span needs (the text so far, tool calls, the last chunk), and ends the span exactly once:

- fully consumed: OK, with the whole response;
- ``close()``/``aclose()`` (``closed``), a cancelled task (``cancelled``), an early ``break``
  and the stream then dropped (``abandoned``): not ERROR, marked incomplete, with the partial
  response;
- an error from the SDK (before or after the first chunk): ERROR, with the partial response,
  and the exception passes to the caller unchanged;
- never iterated, then garbage-collected (``abandoned``): ended, with no response.

The span is never made current, so spans the user opens while consuming the stream are its
siblings, not its children.
"""

from __future__ import annotations

import asyncio
import time
import types
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from mlflow_ollama import _mapping as m
from mlflow_ollama._safety import report
from mlflow_ollama._spans import TracedCall

__all__ = ["StreamState", "traced_async_stream", "traced_stream"]


class _Text:
    """Text arriving in fragments, kept in about its own size.

    Fragments are joined 256 at a time: a list of every fragment would cost ~50 bytes of object
    per chunk, and ``io.StringIO`` stores 4 bytes per character.
    """

    __slots__ = ("_pieces", "_recent")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._recent: list[str] = []

    def add(self, fragment: str) -> None:
        recent = self._recent
        recent.append(fragment)
        if len(recent) == 256:
            self._pieces.append("".join(recent))
            recent.clear()

    def value(self) -> str:
        return "".join(self._pieces) + "".join(self._recent)


class StreamState:
    """What a stream has produced so far: O(1) work per chunk, memory in the text's size.

    Chat chunks carry their text in ``message``; generate chunks at the top level (``response``).
    """

    __slots__ = (
        "_content",
        "_thinking",
        "call",
        "chat",
        "chunks",
        "ended",
        "first_ns",
        "last",
        "logprobs",
        "sent_ns",
        "tool_calls",
    )

    def __init__(self, call: TracedCall) -> None:
        self.call = call
        self.chat = call.endpoint.method == "chat"
        self.chunks = 0
        self.sent_ns = 0
        self.first_ns = 0
        self.last: Any = None
        self._content = _Text()
        self._thinking = _Text()
        self.tool_calls: list[Any] = []
        self.logprobs: list[Any] = []
        self.ended = False

    def take(self, chunk: Any) -> None:
        """Take in one chunk: runs once per chunk, so it reads only what it must.

        Guarded: a failure of our bookkeeping never reaches the stream's consumer.
        """
        try:
            if not self.chunks:
                self.first_ns = time.perf_counter_ns()
            self.chunks += 1
            self.last = chunk
            if self.chat:
                message = chunk.message
                text, thinking = message.content, getattr(message, "thinking", None)  # thinking: 0.5+
                if message.tool_calls:
                    self.tool_calls.extend(message.tool_calls)
            else:
                text, thinking = chunk.response, getattr(chunk, "thinking", None)
            if text:
                self._content.add(text)
            if thinking:
                self._thinking.add(thinking)
            logprobs = getattr(chunk, "logprobs", None)  # ollama 0.6.1+
            if logprobs:
                self.logprobs.extend(logprobs)
        except Exception as exc:
            report("record a stream chunk", exc)

    def response(self) -> dict[str, Any] | None:
        """The response so far, in the shape the same call without ``stream=True`` returns."""
        if self.last is None:
            return None
        out: dict[str, Any] = m.response_outputs(self.last)
        holder = dict(out.get("message") or {"role": "assistant"}) if self.chat else out
        holder["content" if self.chat else "response"] = self._content.value()
        holder.pop("thinking", None)
        thinking = self._thinking.value()
        if thinking:
            holder["thinking"] = thinking
        if self.chat:
            holder.pop("tool_calls", None)
            if self.tool_calls:
                holder["tool_calls"] = m.response_outputs(self.tool_calls)
            out["message"] = holder
        if self.logprobs:
            out["logprobs"] = m.response_outputs(self.logprobs)
        return out

    def _attributes(self, how: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {"ollama.stream.chunks": self.chunks, "ollama.stream.end": how}
        if self.chunks and self.sent_ns:
            attributes["ollama.time_to_first_token_ns"] = self.first_ns - self.sent_ns
        return attributes

    def _response_or_none(self) -> dict[str, Any] | None:
        try:
            return self.response()
        except Exception as exc:
            report("record a stream", exc)
            return None  # the span is still ended, without outputs

    def finish(self, how: str) -> None:
        """End the span without error: ``how`` is ``complete``, ``closed``, ``cancelled`` or ``abandoned``."""
        self._end(how, None)

    def fail(self, error: BaseException) -> None:
        """End the span with ERROR, keeping what had arrived."""
        self._end("error", error)

    def _end(self, how: str, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        response = self._response_or_none()
        try:
            if error is None:
                self.call.succeed(response, extra=self._attributes(how))
            else:
                self.call.fail(error, partial=response, extra=self._attributes(how))
        except Exception as exc:
            report("record a stream", exc)


def _end_if_abandoned(state: StreamState) -> None:
    # weakref.finalize callback: the stream was dropped before it was consumed or closed. A
    # generator's weak references are cleared before its own close() runs at collection, so
    # this ends the span first; for a stream that never started, it is the only thing that does.
    if not state.ended:
        state.finish("abandoned")


def _watch(stream: Any, state: StreamState) -> None:
    finalizer = weakref.finalize(stream, _end_if_abandoned, state)
    finalizer.atexit = False  # at interpreter exit MLflow is shutting down too


def _sync(state: StreamState, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, None]:
    # Yield, then advance: the first yield hands nothing out, it is taken by traced_stream() so
    # that this frame is suspended inside the try before the caller holds the stream. Otherwise
    # close() on a stream that never started would not run the handlers below, and its span would
    # stay open until the object is collected.
    out: Any = None
    try:
        while True:
            try:
                value = yield out
                advance = inner.send
            except GeneratorExit:
                raise
            except BaseException as thrown:  # gen.throw(): hand it to the SDK's generator
                advance, value = inner.throw, thrown
            if not state.sent_ns:
                state.sent_ns = time.perf_counter_ns()  # the SDK sends the request on this first advance
            try:
                out = advance(value)
            except StopIteration:
                state.finish("complete")
                return
            state.take(out)
    except GeneratorExit:
        state.finish("closed")
        raise
    except BaseException as error:
        state.fail(error)
        raise
    finally:
        inner.close()  # releases the HTTP response; a no-op once the SDK's generator has finished


async def _async(state: StreamState, inner: AsyncGenerator[Any, Any]) -> AsyncGenerator[Any, Any]:
    # Not primed, unlike _sync: starting an async generator registers it with the running event
    # loop, whose shutdown would then close a stream that another loop is about to consume. So an
    # async stream closed before its first chunk keeps its span open until it is collected.
    state.sent_ns = time.perf_counter_ns()
    advance, value = inner.asend, None
    try:
        while True:
            try:
                chunk = await advance(value)
            except StopAsyncIteration:
                state.finish("complete")
                return
            state.take(chunk)
            try:
                value = yield chunk
                advance = inner.asend
            except GeneratorExit:
                raise
            except BaseException as thrown:  # agen.athrow()
                advance, value = inner.athrow, thrown
    except GeneratorExit:
        state.finish("closed")
        raise
    except asyncio.CancelledError:
        state.finish("cancelled")
        raise
    except BaseException as error:
        state.fail(error)
        raise
    finally:
        await inner.aclose()


async def _as_async_generator(iterable: AsyncIterator[Any]) -> AsyncGenerator[Any, Any]:
    async for item in iterable:
        yield item


def traced_stream(call: TracedCall, inner: Iterator[Any]) -> Iterator[Any]:
    """A generator that yields ``inner``'s chunks and records them on ``call``'s span.

    ``inner`` is the SDK's generator; any other iterable (a test double's list, say) is walked
    through a generator of its own, and a non-iterable raises TypeError here, before anything is
    handed back, so the caller can return it untouched.
    """
    if not isinstance(inner, types.GeneratorType):
        inner = (item for item in inner)
    state = StreamState(call)
    stream = _sync(state, inner)
    next(stream)  # primes it; runs none of the SDK's code
    _watch(stream, state)
    return stream


def traced_async_stream(call: TracedCall, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The async twin of :func:`traced_stream`, not primed (see ``_async``)."""
    if not isinstance(inner, types.AsyncGeneratorType):
        inner = _as_async_generator(inner.__aiter__())
    state = StreamState(call)
    stream = _async(state, inner)
    _watch(stream, state)
    return stream
