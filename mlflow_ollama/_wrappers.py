"""What wrapt runs in place of the SDK methods: trace around the original call, never break it.

The contract, after MLflow's ``safe_patch``:

1. Work before the call (reading arguments, opening the span) is guarded; if it fails, the call
   goes ahead untraced.
2. The original is called exactly once, outside any guard. Its result is returned and its
   exception re-raised, as the very same objects.
3. Work after the call is guarded too.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import CodeType, FrameType
from typing import Any

from mlflow_ollama import _mapping as m
from mlflow_ollama import _semconv, _spans
from mlflow_ollama._safety import report
from mlflow_ollama._spans import Endpoint, TracedCall
from mlflow_ollama._stream import traced_async_stream, traced_stream

__all__ = ["Wrapper", "async_method", "request_fallback", "semconv_converter", "sync_method"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

# Set while a public wrapper runs the original, so the ``_request`` fallback below knows the
# call is already traced. A ContextVar, so threads and asyncio tasks each see their own.
_in_traced_call: ContextVar[bool] = ContextVar("mlflow_ollama_in_traced_call", default=False)

# How many frames above the ``_request`` wrapper to look for the SDK method that called it:
# one with wrapt's C extension, a few more with its pure-Python fallback.
_FRAME_SEARCH_DEPTH = 4


def _start(endpoint: Endpoint, instance: Any, arguments: dict[str, Any]) -> TracedCall | None:
    try:
        return _spans.start(endpoint, instance, arguments)
    except Exception as exc:
        report("start a span", exc)
        return None


def _succeed(call: TracedCall | None, result: Any) -> None:
    if call is not None:
        try:
            call.succeed(result)
        except Exception as exc:
            report("record a response", exc)


def _fail(call: TracedCall | None, error: BaseException) -> None:
    if call is not None:
        try:
            call.fail(error)
        except Exception as exc:
            report("record an error", exc)


def _stream(call: TracedCall, result: Any, is_async: bool) -> Any:
    """Hand back a traced stream in place of the SDK's; if that fails, the SDK's own."""
    try:
        return traced_async_stream(call, result) if is_async else traced_stream(call, result)
    except Exception as exc:
        report("trace a stream", exc)
        _succeed(call, None)
        return result


def _run(call: TracedCall | None, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = _in_traced_call.set(True)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _fail(call, error)
        raise
    finally:
        _in_traced_call.reset(token)
    if call is None:
        return result
    if kwargs.get("stream"):
        return _stream(call, result, is_async=False)
    _succeed(call, result)
    return result


async def _run_async(
    call: TracedCall | None, wrapped: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    token = _in_traced_call.set(True)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        _fail(call, error)
        raise
    finally:
        _in_traced_call.reset(token)
    if call is None:
        return result
    if kwargs.get("stream"):
        return _stream(call, result, is_async=True)
    _succeed(call, result)
    return result


def sync_method(endpoint: Endpoint) -> Wrapper:
    """The wrapper for a sync SDK method such as ``Client.chat`` or ``ollama.chat``."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _in_traced_call.get():  # a wrapper of ours further out already traces this call
            return wrapped(*args, **kwargs)
        return _run(_start(endpoint, instance, endpoint.arguments(args, kwargs)), wrapped, args, kwargs)

    return wrapper


def async_method(endpoint: Endpoint) -> Wrapper:
    """The wrapper for an ``AsyncClient`` method; returns a coroutine, as the original does."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _in_traced_call.get():  # a wrapper of ours further out already traces this call
            return await wrapped(*args, **kwargs)
        return await _run_async(_start(endpoint, instance, endpoint.arguments(args, kwargs)), wrapped, args, kwargs)

    return wrapper


def _calling_method(callers: Mapping[CodeType, Endpoint]) -> tuple[Endpoint, dict[str, Any]] | None:
    """The traced SDK method that called ``_request``, with its local variables, if any."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(_FRAME_SEARCH_DEPTH):
        if frame is None:
            return None
        endpoint = callers.get(frame.f_code)
        if endpoint is not None:
            return endpoint, dict(frame.f_locals)
        frame = frame.f_back
    return None


def request_fallback(callers: Mapping[CodeType, Endpoint], *, is_async: bool) -> Wrapper:
    """The wrapper for ``Client._request`` / ``AsyncClient._request``.

    It traces calls that reached an SDK method without passing through a public wrapper, such as
    a ``chat`` bound by ``from ollama import chat`` before ``autolog()``: that bound method holds
    the original function, but ``self._request`` is looked up on the class at call time. The
    caller's arguments are read from its frame, so the span records the same inputs as any other
    path, except arguments passed with their default value, which cannot be told apart from
    omitted ones and are left out. The span starts when the SDK sends the request, so an error
    the SDK raises before that (a bad image path, a validation error) leaves no span on this path.
    Calls that came through a public wrapper pass straight through: one call, one span.
    """

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _in_traced_call.get():
            return wrapped(*args, **kwargs)
        try:
            found = _calling_method(callers)
        except Exception as exc:
            report("find the calling Ollama method", exc)
            found = None
        if found is None:  # pull, list, show ...: not traced
            return wrapped(*args, **kwargs)
        endpoint, local_vars = found
        call = _start(endpoint, local_vars.get("self", instance), endpoint.arguments_from_locals(local_vars))
        if is_async:
            return _run_async(call, wrapped, args, kwargs)
        return _run(call, wrapped, args, kwargs)

    return wrapper


def semconv_converter(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The wrapper for MLflow's ``_get_converter(message_format, inputs)``: ours for our format."""
    message_format = args[0] if args else kwargs.get("message_format")
    if message_format == m.PROVIDER:
        try:
            return _semconv.converter()
        except Exception as exc:
            report("make the GenAI semantic-convention converter", exc)
    return wrapped(*args, **kwargs)
