"""Framework parents: the MLflow span of the framework call an SDK call is made for, when it is not current.

MLflow's autolog for a framework opens a span for each framework call, and ours nests beneath it
because it is the current span. Some frameworks call the SDK where their span is open but not
current in MLflow's context, which would split one call into two traces:

- **LlamaIndex streams** (``stream_chat``, ``stream_complete``): the SDK is called inside the
  generator LlamaIndex returns, which the caller iterates after LlamaIndex's span stopped being
  current. MLflow's handler keeps that span open with the generator
  (``StreamResolver._span_id_to_span_and_gen``) until the stream ends.
- **LangChain's async calls** (``ainvoke``, ``astream``): MLflow's tracer is a synchronous callback
  handler, which LangChain runs in an executor with a copy of the context, so its span is current
  only there. It keeps the span by LangChain's run id (``_run_span_mapping``).
- **Frameworks traced through OpenTelemetry** (Haystack, Agno, Strands): their span is current in
  OpenTelemetry's context, while MLflow, with its own tracer provider (its default), reads a
  context of its own.

The parent is never guessed. It is found on the calling thread's (or task's) own stack: a frame
that *is* the running generator MLflow keeps open for a LlamaIndex span, or a LangChain model
method whose ``run_manager`` argument is the run MLflow holds a span for; else the span current in
OpenTelemetry's context, which is per thread and task like MLflow's. Another thread's or task's
call cannot be on this stack, nor in this context, so concurrent calls never cross. The innermost match wins,
and it is used only where it refines today's parent (the current span is none, or one of its
ancestors). When MLflow's or a framework's internals differ from these, nothing is found and the
call is its own trace, as without this module.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from mlflow_ollama._safety import report

__all__ = ["parent_span"]

# How far up the stack a framework's frame is looked for; frameworks call the SDK within a few
# dozen frames of their own method.
_MAX_FRAMES = 128
_RUN_MANAGER = "run_manager"


def parent_span() -> Any:
    """The open framework span this SDK call belongs under, or None for the usual parent.

    Called where our span starts. Cheap when neither framework's MLflow autolog is imported.
    """
    try:
        streams = _llama_index_streams()
        langchain = _langchain_classes()
        candidate = _innermost(sys._getframe(1), streams, langchain) if streams or langchain else None
        if candidate is None:
            candidate = _opentelemetry_current()
        if candidate is None or not _open(candidate):
            return None
        import mlflow

        current = mlflow.get_current_active_span()
        if current is not None and current.span_id == candidate.span_id:
            return None  # already the parent
        return candidate if _refines(candidate, current) else None
    except Exception as exc:
        report("find the framework span of an Ollama call", exc)
        return None


def _innermost(frame: FrameType | None, streams: dict[int, Any], langchain: tuple[type, type] | None) -> Any:
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        span = streams.get(id(frame))
        if span is not None:
            return span
        if langchain is not None and _RUN_MANAGER in frame.f_code.co_varnames:
            span = _langchain_span(frame, *langchain)
            if span is not None:
                return span
        frame = frame.f_back
    return None


def _llama_index_streams() -> dict[int, Any]:
    """The frames of the streams MLflow's LlamaIndex handler keeps open that are running now, to their spans."""
    tracer = sys.modules.get("mlflow.llama_index.tracer")
    instrumentation = sys.modules.get("llama_index.core.instrumentation")
    handler_type = getattr(tracer, "MlflowSpanHandler", None)
    get_dispatcher = getattr(instrumentation, "get_dispatcher", None)
    if handler_type is None or get_dispatcher is None:
        return {}
    running: dict[int, Any] = {}
    for handler in list(getattr(get_dispatcher(), "span_handlers", ())):
        if not isinstance(handler, handler_type):
            continue
        pending = getattr(getattr(handler, "_stream_resolver", None), "_span_id_to_span_and_gen", None)
        for entry in list(pending.values()) if isinstance(pending, dict) else ():
            span, stream = entry[0], entry[1]
            # Running means being advanced right now, by some thread; only a frame on this
            # thread's stack can match below.
            if getattr(stream, "gi_running", False):
                running[id(stream.gi_frame)] = span
            elif getattr(stream, "ag_running", False):
                running[id(stream.ag_frame)] = span
    return running


def _langchain_classes() -> tuple[type, type] | None:
    tracer = sys.modules.get("mlflow.langchain.langchain_tracer")
    manager = sys.modules.get("langchain_core.callbacks.manager")
    run_manager_type = getattr(manager, "BaseRunManager", None)
    tracer_type = getattr(tracer, "MlflowLangchainTracer", None)
    if run_manager_type is None or tracer_type is None:
        return None
    return run_manager_type, tracer_type


def _langchain_span(frame: FrameType, run_manager_type: type, tracer_type: type) -> Any:
    run_manager = frame.f_locals.get(_RUN_MANAGER)
    if not isinstance(run_manager, run_manager_type):
        return None
    for handler in getattr(run_manager, "handlers", ()):
        if isinstance(handler, tracer_type):
            mapping = getattr(handler, "_run_span_mapping", None)
            entry = mapping.get(str(getattr(run_manager, "run_id", ""))) if isinstance(mapping, dict) else None
            span = getattr(entry, "span", None)
            if span is not None:
                return span
    return None


def _opentelemetry_current() -> Any:
    """The MLflow span that is current in OpenTelemetry's own context, if MLflow holds one by that id.

    Frameworks traced through OpenTelemetry (Haystack, Agno, Strands) make their spans current
    there; MLflow, with its own tracer provider (the default), keeps a context of its own, where
    they are not current.
    """
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    from mlflow.tracing.utils import encode_span_id

    manager = _trace_manager()
    trace_id = manager.get_mlflow_trace_id_from_otel_id(context.trace_id)
    return manager.get_span_from_id(trace_id, encode_span_id(context.span_id)) if trace_id else None


def _open(span: Any) -> bool:
    """An MLflow span that has not ended, in a trace MLflow still holds in memory."""
    from mlflow.entities import LiveSpan

    if not isinstance(span, LiveSpan) or getattr(span, "end_time_ns", None) is not None:
        return False
    return _trace_manager().get_span_from_id(span.trace_id, span.span_id) is span


def _refines(candidate: Any, current: Any) -> bool:
    """Whether the current span is absent or an ancestor of ``candidate``: parenting under it only goes deeper."""
    if current is None:
        return True
    if current.trace_id != candidate.trace_id:
        return False
    manager = _trace_manager()
    span = candidate
    for _ in range(1000):
        if span is None:
            return False
        if span.span_id == current.span_id:
            return True
        span = manager.get_span_from_id(candidate.trace_id, span.parent_id) if span.parent_id else None
    return False


def _trace_manager() -> Any:
    """Where MLflow keeps each trace's spans until its root ends (the public API reaches only current spans)."""
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    manager: Any = InMemoryTraceManager
    return manager.get_instance()
