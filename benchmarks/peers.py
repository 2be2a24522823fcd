"""Tracing overhead side by side: mlflow_ollama against the other ways to trace Ollama calls.

Method (issue 7):

- **Servers.** The project's loopback Ollama double runs in a process of its own; an OTLP/HTTP
  sink (a real HTTP server on 127.0.0.1 that accepts ``POST /v1/traces`` and discards the body)
  runs in this, the orchestrating, process. Every configuration exports to that same sink: MLflow
  through ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (its own BatchSpanProcessor), the OpenTelemetry
  peers through a ``BatchSpanProcessor`` with the OTLP/HTTP exporter. A second table uses MLflow's
  default local sqlite store instead (MLflow configurations only; the OTel peers cannot write it).
- **Configurations**, each in a process of its own, started once and driven over a pipe: untraced;
  ``mlflow_ollama``; the MLflow blog post's hand-written decorator ("Beyond Autolog", adapted to
  MLflow 3: ``mlflow.start_span`` with inputs and outputs); a hand-written ``mlflow.start_span``
  wrapper recording the same data ``mlflow_ollama`` records (the sqlite goal's yardstick);
  ``@mlflow.trace`` around ``Client.chat``; a bare MLflow span recording nothing (MLflow's floor);
  OpenLLMetry (``opentelemetry-instrumentation-ollama``); OpenInference
  (``openinference-instrumentation-ollama``); ``mlflow_ollama`` disabled with
  ``MLFLOW_OLLAMA_AUTOLOG=false`` and after ``revert()`` (checked: the original functions are back);
  and MLflow's own recommendation for Ollama, ``mlflow.openai.autolog()`` with the OpenAI SDK against
  the double's OpenAI-compatible ``/v1`` endpoint, whose "added" is over the OpenAI SDK untraced.
- **Rounds** are interleaved: in every round, every case runs once in every configuration, in a
  shuffled order. Before each round a configuration's export queue is drained (the span
  processor's ``force_flush``, then a wait on MLflow's export queue) outside the timed region, so
  one configuration's backlog never lands in the next one's numbers.
- **What is timed** is the latency the caller sees, ``perf_counter_ns`` around each call. With
  OTLP, export runs on the exporter's background thread while calls go on (as in production), so
  the GIL it takes is in the numbers; the encoding and sending of the backlog left at the end of a
  round is not. With sqlite, MLflow's background write costs ~20 ms of CPU per trace; flat out it
  would swamp every configuration alike, so the sqlite table drains the queue after every call,
  untimed: it is the caller-thread cost with an idle exporter.
- **Statistics.** Per configuration and case, all calls of all rounds are pooled: median and p90.
  "Added" is the configuration's median (p90) minus the untraced median (p90); "ratio" is
  median over untraced median; "rounds" is the range of the per-round added medians, the noise.
- **In process.** The microsecond goals (disabled path, after ``revert()``, our own work per call,
  per streamed chunk) are below loopback noise, so they are also measured in one process with the
  HTTP client replaced by a stub that returns a canned response: SDK alone; plus a bare MLflow
  span; plus a span recording the same data ``mlflow_ollama`` records (precomputed); plus
  ``mlflow_ollama``. The differences split the added time into MLflow's span cost and our own
  work; a cProfile of the traced call shows where the time goes. The disabled and reverted paths
  are timed in many short alternating blocks; the per-chunk cost by pulling 10,000 chunk objects
  through the traced stream.

    python benchmarks/peers.py [--rounds 5] [--output docs/benchmarks/peers.md]

The peers and the OTLP exporter are benchmark-only dependencies (``nox -s bench_peers``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import importlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "llama3.2"
SHORT = [{"role": "user", "content": "Why is the sky blue?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": f"Tool number {i}: looks something up.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "a city"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
    for i in range(5)
]
HISTORY = [{"role": "system", "content": "You are a concise assistant."}] + [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Message {i} of the conversation, a sentence long."}
    for i in range(19)
]
STREAM_CHUNKS = 1_000
ASYNC_CONCURRENCY = 100

# --- the configurations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    label: str
    cases: tuple[str, ...]


SYNC_CASES = ("short", "history")
ALL_CASES = ("short", "history", "stream", "async")
CONFIGS = {
    c.name: c
    for c in (
        Config("untraced", "untraced", ALL_CASES),
        Config("mlflow_ollama", "**mlflow_ollama**", ALL_CASES),
        Config("blog", "a hand-written decorator (`mlflow.start_span`, inputs + outputs)", (*SYNC_CASES, "async")),
        Config("same_data", "bare `mlflow.start_span` wrapper, same data as mlflow_ollama", (*SYNC_CASES, "async")),
        Config("mlflow_trace", "`@mlflow.trace` around `Client.chat`", (*SYNC_CASES, "async")),
        Config("bare_span", "floor: a bare MLflow span, nothing recorded", (*SYNC_CASES, "async")),
        Config("openllmetry", "OpenLLMetry (`opentelemetry-instrumentation-ollama`)", ALL_CASES),
        Config("openinference", "OpenInference (`openinference-instrumentation-ollama`)", ALL_CASES),
        Config("disabled", "mlflow_ollama, `MLFLOW_OLLAMA_AUTOLOG=false`", ("short",)),
        Config("reverted", "mlflow_ollama after `revert()`", ("short",)),
        # MLflow's own recommendation for Ollama: the OpenAI SDK against Ollama's OpenAI-compatible
        # /v1 endpoint, traced by mlflow.openai.autolog(). Its baseline is the OpenAI SDK untraced.
        Config("openai_untraced", "OpenAI SDK to Ollama's `/v1`, untraced (its baseline)", SYNC_CASES),
        Config("openai_autolog", "`mlflow.openai.autolog()`, OpenAI SDK to Ollama's `/v1`", SYNC_CASES),
    )
}
OTLP_CONFIGS = list(CONFIGS)
SQLITE_CONFIGS = ["untraced", "mlflow_ollama", "blog", "same_data", "mlflow_trace", "bare_span"]
SQLITE_CONFIGS += ["openai_untraced", "openai_autolog"]
MLFLOW_CONFIGS = {"mlflow_ollama", "blog", "same_data", "mlflow_trace", "bare_span", "disabled", "reverted"}
MLFLOW_CONFIGS |= {"openai_autolog"}
BASELINES = {"openai_untraced": "openai_untraced", "openai_autolog": "openai_untraced"}
"""The untraced configuration each is compared with, where it is not ``untraced``."""
CALLS = {"short": 200, "history": 100, "stream": 10, "async": 3}
"""Calls per round and configuration (for ``async``: batches of 100 concurrent calls)."""
SQLITE_CALLS = {"short": 60, "history": 40}

# --- worker side ---------------------------------------------------------------------------------


def _peer_tracer_provider(sink: str) -> Any:
    """An OTel TracerProvider exporting through a BatchSpanProcessor to the sink, made global."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(otlp.OTLPSpanExporter(endpoint=f"{sink}/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


def _message_dict(message: Any) -> dict[str, Any]:
    return dict(message) if isinstance(message, dict) else dict(message.model_dump(exclude_none=True))


def _blog_decorator(function: Callable[..., Any]) -> Callable[..., Any]:
    """The blog post's wrapper, MLflow 3 style: a span with the call's inputs and its response."""
    import mlflow
    from mlflow.entities import SpanType

    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            with mlflow.start_span(name="chat", span_type=SpanType.CHAT_MODEL) as span:
                span.set_inputs(kwargs)
                response = await function(self, *args, **kwargs)
                span.set_outputs(response)
                return response

        return traced_async

    @functools.wraps(function)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        with mlflow.start_span(name="chat", span_type=SpanType.CHAT_MODEL) as span:
            span.set_inputs(kwargs)
            response = function(self, *args, **kwargs)
            span.set_outputs(response)
            return response

    return traced


def _bare_span_decorator(function: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's floor: a span started and ended around the call, recording nothing."""
    import mlflow

    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            span = mlflow.start_span_no_context(name="ollama.chat", span_type="CHAT_MODEL")
            try:
                return await function(self, *args, **kwargs)
            finally:
                span.end()

        return traced_async

    @functools.wraps(function)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type="CHAT_MODEL")
        try:
            return function(self, *args, **kwargs)
        finally:
            span.end()

    return traced


def _same_data_decorator(function: Callable[..., Any]) -> Callable[..., Any]:
    """A plain ``mlflow.start_span`` wrapper recording what mlflow_ollama records on a chat span.

    Inputs as JSON-ready dicts, outputs as the response's dict, and the attributes: provider, cost,
    format, model, tools, host, token usage, durations, done reason and the OpenAI-format chat view.
    Written the obvious way, no guards: the yardstick for the sqlite goal.
    """
    import mlflow
    from mlflow.entities import SpanType

    def before(span: Any, client: Any, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        messages = [_message_dict(m) for m in kwargs.get("messages") or []]
        inputs = {**kwargs, "messages": messages}
        span.set_inputs(inputs)
        url = client._client.base_url
        attributes = {
            "mlflow.llm.provider": "ollama",
            "mlflow.llm.cost": {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0},
            "mlflow.message.format": "ollama",
            "mlflow.llm.model": kwargs.get("model"),
            "ollama.host": f"{url.scheme}://{url.host}:{url.port}",
        }
        if kwargs.get("tools"):
            attributes["mlflow.chat.tools"] = kwargs["tools"]
        span.set_attributes(attributes)
        return messages

    def after(span: Any, messages: list[dict[str, Any]], response: Any) -> None:
        out = response.model_dump(exclude_none=True)
        reply = dict(out["message"])
        calls = reply.pop("tool_calls", None)
        if calls:
            reply["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": c["function"]["name"], "arguments": json.dumps(c["function"]["arguments"])},
                }
                for i, c in enumerate(calls)
            ]
        attributes: dict[str, Any] = {
            "mlflow.chat.messages": [*messages, reply],
            "mlflow.chat.tokenUsage": {
                "input_tokens": out.get("prompt_eval_count", 0),
                "output_tokens": out.get("eval_count", 0),
                "total_tokens": out.get("prompt_eval_count", 0) + out.get("eval_count", 0),
            },
            "mlflow.llm.model": out.get("model"),
            "ollama.done_reason": out.get("done_reason"),
        }
        for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
            if name in out:
                attributes[f"ollama.{name}_ns"] = out[name]
        span.set_attributes(attributes)
        span.set_outputs(out)

    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def traced_async(self: Any, **kwargs: Any) -> Any:
            with mlflow.start_span(name="ollama.chat", span_type=SpanType.CHAT_MODEL) as span:
                messages = before(span, self, kwargs)
                response = await function(self, **kwargs)
                after(span, messages, response)
                return response

        return traced_async

    @functools.wraps(function)
    def traced(self: Any, **kwargs: Any) -> Any:
        with mlflow.start_span(name="ollama.chat", span_type=SpanType.CHAT_MODEL) as span:
            messages = before(span, self, kwargs)
            response = function(self, **kwargs)
            after(span, messages, response)
            return response

    return traced


def _mlflow_drain() -> None:
    """Wait until MLflow has exported every ended span (OTLP) or written every trace (sqlite).

    ``mlflow.flush_trace_async_logging()`` does the same but stops and restarts the export threads,
    which takes a second each time (its consumer polls with a 1 s timeout); this waits on the queues.
    """
    from mlflow.tracing import provider as tracing

    holder = getattr(tracing, "provider", None)  # MLflow 3.0 keeps the provider in a module global
    current = holder.get() if holder is not None else getattr(tracing, "_MLFLOW_TRACER_PROVIDER", None)
    getattr(current, "force_flush", lambda: None)()  # span processor -> exporter
    exporter_of: Callable[[], Any] = tracing._get_trace_exporter
    exporter = exporter_of()
    queue = getattr(getattr(exporter, "_async_queue", None), "_queue", None)
    if queue is not None:
        queue.join()  # exporter's async queue -> sqlite


def _setup(name: str, sink: str, mode: str) -> Callable[[], None]:
    """Install configuration ``name`` in this process; return the function that drains export."""
    provider: Any = None
    if name in ("openllmetry", "openinference"):
        provider = _peer_tracer_provider(sink)
        module = (
            "opentelemetry.instrumentation.ollama" if name == "openllmetry" else "openinference.instrumentation.ollama"
        )
        importlib.import_module(module).OllamaInstrumentor().instrument()
    import ollama

    if name in MLFLOW_CONFIGS:
        import mlflow

        mlflow.set_experiment(f"bench-{name}")
        if name == "openai_autolog":
            mlflow.openai.autolog()
        elif name in ("mlflow_ollama", "disabled", "reverted"):
            import mlflow_ollama

            original = vars(ollama.Client)["chat"]
            mlflow_ollama.autolog()
            if name == "reverted":
                mlflow_ollama.revert()
                if (
                    vars(ollama.Client)["chat"] is not original
                    or getattr(ollama.chat, "__func__", None) is not original
                ):
                    raise SystemExit("revert() did not restore the original Client.chat")
        else:
            decorators: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
                "blog": _blog_decorator,
                "same_data": _same_data_decorator,
                "bare_span": _bare_span_decorator,
                "mlflow_trace": lambda function: mlflow.trace(function, span_type="CHAT_MODEL"),
            }
            decorate = decorators[name]
            ollama.Client.chat = decorate(ollama.Client.chat)  # type: ignore[method-assign]
            ollama.AsyncClient.chat = decorate(ollama.AsyncClient.chat)  # type: ignore[method-assign]
        return _mlflow_drain
    if provider is not None:
        return lambda: provider.force_flush()
    return lambda: None


def _openai_cases(url: str) -> dict[str, Callable[[], Any]]:
    """The same chats through the OpenAI SDK, against Ollama's OpenAI-compatible endpoint."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="ollama")
    return {
        "short": lambda: client.chat.completions.create(model=MODEL, messages=SHORT),  # type: ignore[arg-type]
        "history": lambda: client.chat.completions.create(
            model=MODEL,
            messages=HISTORY,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
        ),
    }


def _cases(url: str) -> dict[str, Callable[[], Any]]:
    import ollama

    client = ollama.Client(host=url)
    words = " ".join(["tok"] * (STREAM_CHUNKS - 2))  # the double answers "You said: <words>", a word a chunk
    loop = asyncio.new_event_loop()
    async_client = ollama.AsyncClient(host=url)

    async def batch() -> None:
        await asyncio.gather(*(async_client.chat(model=MODEL, messages=SHORT) for _ in range(ASYNC_CONCURRENCY)))

    return {
        "short": lambda: client.chat(model=MODEL, messages=SHORT),
        "history": lambda: client.chat(model=MODEL, messages=HISTORY, tools=TOOLS),
        "stream": lambda: sum(
            1 for _ in client.chat(model=MODEL, messages=[{"role": "user", "content": words}], stream=True)
        ),
        "async": lambda: loop.run_until_complete(batch()),
    }


def worker(name: str, mode: str, url: str, sink: str) -> None:
    """Serve timing requests on stdin/stdout: ``{"case": ..., "calls": n, "drain_each": bool}``."""
    drain = _setup(name, sink, mode)
    cases = _openai_cases(url) if name.startswith("openai_") else _cases(url)
    out = sys.stdout
    out.write(json.dumps({"ready": name}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        run = cases[request["case"]]
        drain()  # whatever an earlier round left in the export queue, outside the timed region
        gc.collect()
        timings: list[int] = []
        cpu = time.process_time_ns()  # every thread of this process: the caller's and the exporter's
        for _ in range(request["calls"]):
            start = time.perf_counter_ns()
            run()
            timings.append(time.perf_counter_ns() - start)
            if request["drain_each"]:
                drain()
        drain()  # the export of this round's spans is part of their cost
        cpu = time.process_time_ns() - cpu
        out.write(json.dumps({"ns": timings, "cpu_ns": cpu}) + "\n")
        out.flush()
    drain()


# --- in process: the stub client and the decomposition ------------------------------------------


class _StubResponse:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, Any]:
        return self._body


class _StubHttp:
    """Stands in for ``httpx.Client``: every request gets the same canned chat response."""

    base_url: Any

    def __init__(self, base_url: Any, body: dict[str, Any]) -> None:
        self.base_url = base_url
        self._response = _StubResponse(body)

    def request(self, *args: Any, **kwargs: Any) -> _StubResponse:
        return self._response


_CANNED = {
    "model": MODEL,
    "created_at": "2026-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "Rayleigh scattering: short wavelengths scatter more."},
    "done": True,
    "done_reason": "stop",
    "total_duration": 1_000_000,
    "load_duration": 1_000,
    "prompt_eval_count": 10,
    "prompt_eval_duration": 100_000,
    "eval_count": 8,
    "eval_duration": 800_000,
}


def stub_client(host: str = "http://127.0.0.1:11434") -> Any:
    """An ``ollama.Client`` whose HTTP transport answers every request with ``_CANNED``: no server.

    ``host`` is what the client reports as its server: model details look the model up there, with
    their own HTTP client (once, then from their cache).
    """
    import ollama

    client = ollama.Client(host=host)
    client._client = _StubHttp(client._client.base_url, _CANNED)
    return client


def traced_call(call: Callable[[], Any]) -> tuple[Any, Any]:
    """One real call traced by mlflow_ollama (autolog on): the span's own ``TracedCall``, and the reply."""
    from mlflow_ollama import _spans

    captured: list[_spans.TracedCall] = []
    end = _spans.TracedCall._end

    def capture(self: _spans.TracedCall, status: str | None = None) -> None:
        captured.append(self)
        end(self, status)

    _spans.TracedCall._end = capture  # type: ignore[method-assign]
    try:
        response = call()
    finally:
        _spans.TracedCall._end = end  # type: ignore[method-assign]
    return captured[0], response


def time_signals(traced: Any, response: Any, key: tuple[str, str]) -> Callable[[], None]:
    """What the span does for the always-on local-model signals of ``traced``, to time it alone.

    Notes the call in the process's memory of its models, as the span does when it starts, reads
    the reply as it does when it ends, and ends the visit.
    """
    from mlflow_ollama import _signals as signals
    from mlflow_ollama._model_loads import history

    def run() -> None:
        traced.visit = history.begin(key, signals.load_options(traced.inputs), traced.inputs.get("keep_alive"))
        traced._signals(response)
        history.end(traced.visit)

    return run


def in_bare_span(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` inside a bare MLflow span that records nothing: what any MLflow route pays at least."""
    import mlflow
    from mlflow.entities import SpanType

    def bare_span() -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type=SpanType.CHAT_MODEL)
        result = call()
        span.end()
        return result

    return bare_span


def _median_us(run: Callable[[], Any], calls: int, drain: Callable[[], None] | None) -> list[float]:
    timings = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        run()
        timings.append(time.perf_counter_ns() - start)
        if drain is not None:
            drain()
    return [t / 1e3 for t in timings]


def _stream_per_chunk(rounds: int, original: Any, drain: Callable[[], None]) -> dict[str, float]:
    """Our work per streamed chunk, without HTTP: the same chunk objects through a bare generator
    and through our traced stream, less a traced stream of one chunk (the span's own cost)."""
    import ollama

    from mlflow_ollama import _patch, _spans, _stream

    endpoint = _patch._endpoint("chat", original)

    def chunk(done: bool) -> Any:
        message = ollama.Message(role="assistant", content="" if done else "tok ")
        fields: dict[str, Any] = {"model": MODEL, "created_at": "2026-01-01T00:00:00Z", "message": message}
        if done:
            fields.update(done=True, done_reason="stop", prompt_eval_count=10, eval_count=10)
        return ollama.ChatResponse(**fields)

    items = [chunk(False) for _ in range(STREAM_CHUNKS * 10)] + [chunk(True)]

    def start() -> Any:
        return _spans.start(endpoint, None, {"model": MODEL, "messages": SHORT})

    def plain() -> None:
        for _ in (c for c in items):
            pass

    def traced() -> None:
        for _ in _stream.traced_stream(start(), (c for c in items)):
            pass

    def fixed() -> None:
        for _ in _stream.traced_stream(start(), (c for c in items[-1:])):
            pass

    times: dict[str, list[float]] = {"plain": [], "traced": [], "fixed": []}
    runs = {"plain": plain, "traced": traced, "fixed": fixed}
    for round_ in range(3 * rounds + 1):
        for name, run in runs.items():
            drain()
            gc.collect()
            started = time.perf_counter_ns()
            run()
            if round_:
                times[name].append((time.perf_counter_ns() - started) / 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "chunks": len(items) - 1,
        "per_chunk_us": (med["traced"] - med["fixed"] - med["plain"]) / (len(items) - 1),
        "span_us": med["fixed"],
    }


_OUR_ATTRIBUTES = ("mlflow.chat.", "mlflow.llm.", "mlflow.message.", "ollama.")


def micro(mode: str, rounds: int) -> None:
    """The in-process decomposition; prints one JSON object."""
    import mlflow
    import ollama
    from mlflow.entities import SpanType

    import mlflow_ollama
    from mlflow_ollama import _signals as signals
    from mlflow_ollama.testing import OllamaDouble

    mlflow.set_experiment(f"bench-micro-{mode}")
    double = OllamaDouble().start()  # answers the model-details lookups only: the chats go to the stub
    client = stub_client(double.url)
    original = vars(ollama.Client)["chat"]

    drain = _mlflow_drain

    def call() -> Any:
        return client.chat(model=MODEL, messages=SHORT)

    # What mlflow_ollama records for this call, captured once: the "same data, precomputed" variant.
    mlflow_ollama.autolog()
    traced, response = traced_call(call)
    mlflow_ollama.revert()
    recorded = traced.span
    key = signals.model_key(double.url, MODEL)
    assert key is not None
    signals_alone = time_signals(traced, response, key)

    inputs, outputs = recorded.inputs, recorded.outputs
    attributes = {k: v for k, v in recorded.attributes.items() if k.startswith(_OUR_ATTRIBUTES)}

    bare_span = in_bare_span(call)

    def span_same_data() -> Any:
        span = mlflow.start_span_no_context(name="ollama.chat", span_type=SpanType.CHAT_MODEL)
        span.set_inputs(inputs)
        span.set_attributes(attributes)
        result = call()
        span.set_outputs(outputs)
        span.end()
        return result

    sqlite = mode == "sqlite"
    calls = 100 if sqlite else 2_000
    variants: dict[str, tuple[Callable[[], Any], bool]] = {
        "sdk": (call, False),
        "bare_span": (bare_span, sqlite),
        "span_same_data": (span_same_data, sqlite),
        "mlflow_ollama": (call, sqlite),
        "mlflow_ollama_details": (call, sqlite),
    }
    results: dict[str, list[float]] = {k: [] for k in variants}

    def enter(variant: str) -> None:
        if variant == "mlflow_ollama_details":
            mlflow_ollama.autolog(model_details=True)
            call()  # the lookups, made once: from now on, the cache
        elif variant in ("disabled", "mlflow_ollama"):
            mlflow_ollama.autolog()
            os.environ["MLFLOW_OLLAMA_AUTOLOG"] = "false" if variant == "disabled" else "true"
        elif variant == "reverted":
            mlflow_ollama.autolog()
            mlflow_ollama.revert()
            assert vars(ollama.Client)["chat"] is original
            assert getattr(ollama.chat, "__func__", None) is original

    def leave() -> None:
        mlflow_ollama.revert()
        os.environ.pop("MLFLOW_OLLAMA_AUTOLOG", None)

    for round_ in range(rounds + 1):  # round 0 warms up
        order = list(variants)
        random.shuffle(order)
        for variant in order:
            run, drain_each = variants[variant]
            enter(variant)
            drain()
            gc.collect()
            timings = _median_us(run, calls, drain if drain_each else None)
            if round_:
                results[variant].append(statistics.median(timings))
            leave()

    # The paths that should cost (next to) nothing: many short blocks, the three alternating, so
    # that drifts of the machine hit all three alike. Nothing is exported here.
    cheap: dict[str, list[float]] = {"sdk": [], "disabled": [], "reverted": []}
    for _ in range(10 * rounds):
        order = list(cheap)
        random.shuffle(order)
        for variant in order:
            enter(variant)
            cheap[variant].append(statistics.median(_median_us(call, 400, None)))
            leave()

    # The always-on signals alone, in blocks, as the span does them for this call.
    signals_us = [timeit.timeit(signals_alone, number=20_000) / 20_000 * 1e6 for _ in range(10 * rounds)]
    double.stop()

    per_chunk: dict[str, float] = {}
    if not sqlite:
        per_chunk = _stream_per_chunk(rounds, original, drain)

    profile_text = ""
    split: dict[str, float] = {}
    if not sqlite:
        mlflow_ollama.autolog()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(2_000):
            call()
        profiler.disable()
        drain()
        mlflow_ollama.revert()
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("cumulative").print_stats(28)
        # Paths as a reader can find them: from site-packages, or from the repository's root.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/"
        profile_text = re.sub(r"\S*/site-packages/", "", stream.getvalue()).replace(root, "")
        split = profile_split(stats, 2_000)
    print(
        json.dumps(
            {
                "mode": mode,
                "rounds": results,
                "cheap": cheap,
                "signals": signals_us,
                "per_chunk": per_chunk,
                "profile": profile_text,
                "split": split,
            }
        )
    )


def profile_split(stats: pstats.Stats, calls: int) -> dict[str, float]:
    """Per call (µs, under cProfile): the SDK, MLflow and OpenTelemetry, and our own code.

    Time in a function outside mlflow_ollama that our code called directly is charged, with all
    it called, to that function's package; what is left of the wrapper's time is ours.
    """
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    ours = "mlflow_ollama"
    total = 0.0
    charged = {"sdk": 0.0, "mlflow": 0.0}
    for (filename, _, name), (*_, callers) in raw.items():
        if ours in filename and name == "wrapper":  # the public wrapper, as called by the benchmark
            total += sum(ct for (f, _, _), (_, _, _, ct) in callers.items() if f.endswith("peers.py"))
        if ours in filename:
            continue
        from_ours = sum(ct for (f, _, _), (_, _, _, ct) in callers.items() if ours in f)
        if "/ollama/" in filename:  # the original method, as _run calls it (what it calls nests inside)
            charged["sdk"] += sum(ct for (f, _, n), (_, _, _, ct) in callers.items() if ours in f and n == "_run")
        elif "/mlflow/" in filename or "/opentelemetry/" in filename:
            charged["mlflow"] += from_ours
        # anything else (builtins, json, the standard library) called from our code is our work
    scale = 1e6 / calls
    return {
        "total": total * scale,
        "sdk": charged["sdk"] * scale,
        "mlflow": charged["mlflow"] * scale,
        "ours": (total - charged["sdk"] - charged["mlflow"]) * scale,
    }


# --- the OTLP sink --------------------------------------------------------------------------------


class _Sink(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: dict[str, list[int]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def export_to_sink(store: str) -> _Sink:
    """Start an OTLP sink in this process and point MLflow's export at it (before MLflow starts).

    For the in-process benchmarks; ``store`` names the sqlite file MLflow still needs for its
    experiments. No price lookups either: they would stall on a machine without network.
    """
    sink = _Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{sink.url}/v1/traces"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/{store}.db"
    os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""
    return sink


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Sink

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        self.rfile.read(size)  # discarded
        status = 200 if self.path == "/v1/traces" else 404
        who = self.headers.get("x-bench-config") or "?"
        with self.server.lock:
            counts = self.server.received.setdefault(who, [0, 0])
            counts[0] += 1
            counts[1] += size
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


# --- orchestration ---------------------------------------------------------------------------------


class Worker:
    def __init__(self, name: str, mode: str, url: str, sink: str, log: Any) -> None:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{tempfile.mkdtemp()}/{name}.db",
            "MLFLOW_MODEL_CATALOG_URI": "",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-bench-config={mode}-{name}",
        }
        env.pop("MLFLOW_OLLAMA_AUTOLOG", None)
        if mode == "otlp":
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{sink}/v1/traces"
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        if name == "disabled":
            env["MLFLOW_OLLAMA_AUTOLOG"] = "false"
        command = [sys.executable, __file__, "--worker", name, "--mode", mode, "--double", url, "--sink", sink]
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} failed to start; see the log")

    def run(self, case: str, calls: int, drain_each: bool) -> tuple[list[int], int]:
        """The latency of each call (ns), and the process's CPU time for them all, export included."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"case": case, "calls": calls, "drain_each": drain_each}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died running {case}; see the log")
        reply = json.loads(line)
        return reply["ns"], reply["cpu_ns"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=120)


Samples = dict[str, dict[str, list[list[int]]]]
"""config -> case -> one list of timings (ns) per round."""
CpuSamples = dict[str, dict[str, list[float]]]
"""config -> case -> the process's CPU per call (ns, all threads, export included), one per round."""


def measure(names: list[str], mode: str, rounds: int, url: str, sink: str, log: Any) -> tuple[Samples, CpuSamples]:
    workers = {name: Worker(name, mode, url, sink, log) for name in names}
    for w in workers.values():
        w.wait_ready()
    calls = SQLITE_CALLS if mode == "sqlite" else CALLS
    samples: Samples = {name: {case: [] for case in CONFIGS[name].cases if case in calls} for name in names}
    cpu: CpuSamples = {name: {case: [] for case in samples[name]} for name in names}
    try:
        for round_ in range(rounds + 1):  # round 0 warms up every configuration and case
            for case in calls:
                order = [n for n in names if case in samples[n]]
                random.shuffle(order)
                for name in order:
                    n = max(3, calls[case] // 10) if round_ == 0 else calls[case]
                    timings, cpu_ns = workers[name].run(case, n, drain_each=mode == "sqlite")
                    if round_:
                        samples[name][case].append(timings)
                        cpu[name][case].append(cpu_ns / n)
            print(f"  {mode}: round {round_}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    return samples, cpu


def _p90(values: list[int] | list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


@dataclass
class Row:
    label: str
    median_us: float
    p90_us: float
    added_us: float
    added_p90_us: float
    ratio: float
    spread: tuple[float, float]


def summarise(samples: Samples, case: str, names: list[str], per: int = 1) -> list[Row]:
    rows = []
    for name in names:
        if case not in samples.get(name, {}):
            continue
        base = samples[BASELINES.get(name, "untraced")][case]
        base_all = [t for r in base for t in r]
        base_median, base_p90 = statistics.median(base_all) / 1e3 / per, _p90(base_all) / 1e3 / per
        rounds = samples[name][case]
        everything = [t for r in rounds for t in r]
        median, p90 = statistics.median(everything) / 1e3 / per, _p90(everything) / 1e3 / per
        per_round = [
            (statistics.median(r) - statistics.median(b)) / 1e3 / per for r, b in zip(rounds, base, strict=True)
        ]
        rows.append(
            Row(
                CONFIGS[name].label,
                median,
                p90,
                median - base_median,
                p90 - base_p90,
                median / base_median,
                (min(per_round), max(per_round)),
            )
        )
    return rows


def table(rows: list[Row], unit: str = "µs") -> list[str]:
    lines = [
        f"| configuration | median ({unit}) | p90 ({unit}) | added, median | added, p90 | ratio | added, per round |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        baseline = r.label == "untraced" or "untraced (its baseline)" in r.label
        added = "—" if baseline else f"{r.added_us:+.1f} {unit}"
        added_p90 = "—" if baseline else f"{r.added_p90_us:+.1f} {unit}"
        spread = "—" if baseline else f"{r.spread[0]:+.1f} … {r.spread[1]:+.1f}"
        lines.append(
            f"| {r.label} | {r.median_us:,.1f} | {r.p90_us:,.1f} | {added} | {added_p90} | {r.ratio:.3f} | {spread} |"
        )
    return lines


def _cpu_added(cpu: CpuSamples, case: str, name: str) -> float:
    """Median over rounds of the process's CPU per call (µs), less that of its untraced baseline."""
    base = cpu[BASELINES.get(name, "untraced")][case]
    return (statistics.median(cpu[name][case]) - statistics.median(base)) / 1e3


def cpu_table(samples: Samples, cpu: CpuSamples, case: str, names: list[str]) -> list[str]:
    """Added caller latency next to added CPU per call, all threads, export included."""
    floor = _cpu_added(cpu, case, "bare_span") if "bare_span" in cpu and case in cpu["bare_span"] else None
    lines = [
        "| configuration | added latency, median | added CPU per call, export included | times a bare span's CPU |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        if case not in cpu.get(name, {}) or name in ("untraced", "openai_untraced"):
            continue
        added = _cpu_added(cpu, case, name)
        times = f"{added / floor:.2f}" if floor and name in MLFLOW_CONFIGS else "—"
        latency = next(r.added_us for r in summarise(samples, case, [name]))
        lines.append(f"| {CONFIGS[name].label} | {latency:+.0f} µs | {added:+.0f} µs | {times} |")
    return lines


def goals_16(otlp: Samples, cpu: CpuSamples) -> list[str]:
    """Issue 16's goals against this run: CPU within 1.3 times a bare span, latency below MLflow's routes."""
    yes = {True: "**met**", False: "**not met**"}
    lines = ["| goal | this run | |", "|---|---|---|"]
    for case in SYNC_CASES:
        ours, floor = _cpu_added(cpu, case, "mlflow_ollama"), _cpu_added(cpu, case, "bare_span")
        lines.append(
            f"| {case}: added CPU per call, export included, at most 1.3 times a bare MLflow span's "
            f"| ours {ours:+.0f} µs, bare span {floor:+.0f} µs: {ours / floor:.2f} times | {yes[ours <= 1.3 * floor]} |"
        )
    for case in SYNC_CASES:
        ours = _added(otlp, case, "mlflow_ollama")
        names = [n for n in ("mlflow_trace", "blog", "openai_autolog") if case in otlp.get(n, {})]
        routes = {n: _added(otlp, case, n) for n in names}
        shown = ", ".join(f"{CONFIGS[n].label} {v:+.0f} µs" for n, v in routes.items())
        lines.append(
            f"| {case}: added caller latency below every MLflow route | ours {ours:+.0f} µs; {shown} "
            f"| {yes[all(ours < v for v in routes.values())]} |"
        )
    return lines


def _versions() -> str:
    names = [
        "ollama",
        "mlflow",
        "mlflow-tracing",
        "mlflow-ollama",
        "wrapt",
        "httpx",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-ollama",
        "openinference-instrumentation-ollama",
        "openai",
    ]
    found = []
    for name in names:
        try:
            found.append(f"`{name}` {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"`{name}` not installed")
    return ", ".join(found)


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _micro(mode: str, rounds: int, log: Any) -> dict[str, Any]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tempfile.mkdtemp()}/micro.db"}
    env["MLFLOW_MODEL_CATALOG_URI"] = ""
    env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = f"x-bench-config={mode}-micro"
    if mode == "otlp":
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{_SINK_URL}/v1/traces"
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
    out = subprocess.run(
        [sys.executable, __file__, "--micro", mode, "--rounds", str(rounds)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_SINK_URL = ""


def _micro_table(result: dict[str, Any]) -> list[str]:
    med = {k: statistics.median(v) for k, v in result["rounds"].items()}
    cheap = {k: statistics.median(v) for k, v in result["cheap"].items()}
    labels = {
        "sdk": "SDK call, untraced (stub HTTP client)",
        "bare_span": "+ bare MLflow span (start, end)",
        "span_same_data": "+ MLflow span recording mlflow_ollama's data, precomputed",
        "mlflow_ollama": "mlflow_ollama",
        "mlflow_ollama_details": "mlflow_ollama, model details on (looked up once, then cached)",
    }
    lines = ["| path | per call (µs) | added over the SDK call (µs) |", "|---|---:|---:|"]
    for key, label in labels.items():
        added = "—" if key == "sdk" else f"{med[key] - med['sdk']:+.2f}"
        lines.append(f"| {label} | {med[key]:.2f} | {added} |")
    # docs/performance.md quotes the OTLP one (docs/reference_tables.py)
    lines = [f"<!-- table: micro-{result['mode']} -->", *lines, "<!-- end table -->"]
    lines += [
        "",
        "Of mlflow_ollama's own work, the always-on local-model signals ([why was this call slow](../signals.md)):",
        f"**{statistics.median(result['signals']):.2f} µs** a call (median of {len(result['signals'])} blocks of",
        "20,000; noting the call in the process's memory of its models, reading the reply, ending the visit).",
    ]
    blocks = len(result["cheap"]["sdk"])
    lines += [
        "",
        f"Next to nothing, in {blocks} alternating blocks of 400 calls (medians of block medians):",
        "",
        "| path | per call (µs) | added over the SDK call (µs) |",
        "|---|---:|---:|",
        f"| SDK call, untraced | {cheap['sdk']:.2f} | — |",
        f"| `MLFLOW_OLLAMA_AUTOLOG=false` | {cheap['disabled']:.2f} | {cheap['disabled'] - cheap['sdk']:+.2f} |",
        f"| after `revert()` | {cheap['reverted']:.2f} | {cheap['reverted'] - cheap['sdk']:+.2f} |",
    ]
    return lines


def _added(samples: Samples, case: str, name: str, per: int = 1) -> float:
    return next(r.added_us for r in summarise(samples, case, [name], per))


def goals(otlp: Samples, sqlite: Samples, micro_otlp: dict[str, Any]) -> list[str]:
    """The issue's goals against this run's numbers."""
    ours = _added(otlp, "short", "mlflow_ollama")
    peers = {name: _added(otlp, "short", name) for name in ("openllmetry", "openinference", "blog", "mlflow_trace")}
    best_peer = min(peers, key=lambda n: peers[n])
    floor = _added(otlp, "short", "bare_span")
    sqlite_vs = [
        (case, _added(sqlite, case, "mlflow_ollama"), _added(sqlite, case, "same_data")) for case in SYNC_CASES
    ]
    per_chunk = _added(otlp, "stream", "mlflow_ollama", STREAM_CHUNKS)
    stream_call = _added(otlp, "stream", "mlflow_ollama")
    marginal = (stream_call - ours) / STREAM_CHUNKS
    med = {k: statistics.median(v) for k, v in micro_otlp["cheap"].items()}
    disabled = med["disabled"] - med["sdk"]
    in_process = micro_otlp["per_chunk"]["per_chunk_us"]
    yes = {True: "**met**", False: "**not met**"}
    lines = [
        "| goal | this run | |",
        "|---|---|---|",
        f"| OTLP: median added per non-streamed call below every peer | ours {ours:+.0f} µs; fastest other "
        f"{CONFIGS[best_peer].label} {peers[best_peer]:+.0f} µs; a bare MLflow span alone {floor:+.0f} µs "
        f"| {yes[ours < min(peers.values())]} |",
    ]
    for case, mine, theirs in sqlite_vs:
        lines.append(
            f"| sqlite: within 10% of a bare `mlflow.start_span` wrapper recording the same data ({case}) "
            f"| ours {mine:+.0f} µs, wrapper {theirs:+.0f} µs: {(mine / theirs - 1) * 100:+.1f}% "
            f"| {yes[mine <= theirs * 1.1]} |"
        )
    lines += [
        f"| streaming: at most 1 µs per chunk | in process, chunk objects through the traced stream: "
        f"{in_process:+.2f} µs per chunk; over loopback, across processes: {per_chunk:+.2f} µs per chunk all in, "
        f"{marginal:+.2f} µs after taking off the short call's added time ({ours:+.0f} µs), a noisy difference "
        f"| {yes[in_process <= 1.0]} (in process) |",
        f"| disabled path: at most 2 µs per call | {disabled:+.2f} µs in process "
        f"(loopback: {_added(otlp, 'short', 'disabled'):+.1f} µs, within noise) | {yes[disabled <= 2]} |",
        "| after `revert()`: zero | `Client.chat` and `ollama.chat` are the original functions (checked in both "
        f"processes; the run stops otherwise); {med['reverted'] - med['sdk']:+.2f} µs in process, i.e. noise "
        "| **met** |",
    ]
    return lines


# The figures the docs quote (docs/reference_tables.py writes them into the pages from the JSON).
QUOTED = ["mlflow_ollama", "bare_span", "mlflow_trace", "blog", "openai_autolog", "openllmetry", "openinference"]


def summary(otlp: Samples, otlp_cpu: CpuSamples, sqlite: Samples, micro_otlp: dict[str, Any]) -> dict[str, Any]:
    """This run's headline figures, for the pages that quote them: added latency and CPU per call (µs)."""
    micro_med = {k: statistics.median(v) for k, v in micro_otlp["rounds"].items()}
    return {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cores": os.cpu_count(),
        "mlflow": importlib.metadata.version("mlflow"),
        "otlp": {
            case: {
                name: {
                    "latency_us": round(_added(otlp, case, name), 1),
                    "cpu_us": round(_cpu_added(otlp_cpu, case, name), 1),
                }
                for name in QUOTED
            }
            for case in ("short", "history")
        },
        "sqlite": {
            case: {
                name: {"latency_us": round(_added(sqlite, case, name), 1)} for name in ("mlflow_ollama", "same_data")
            }
            for case in ("short", "history")
        },
        "signals_us": round(statistics.median(micro_otlp["signals"]), 2),
        "details_added_us": round(micro_med["mlflow_ollama_details"] - micro_med["mlflow_ollama"], 1),
    }


def report(rounds: int, micro_rounds: int, log: Any) -> tuple[str, dict[str, Any]]:
    global _SINK_URL
    double = subprocess.Popen([sys.executable, "-m", "mlflow_ollama.testing"], stdout=subprocess.PIPE, text=True)
    assert double.stdout is not None
    url = double.stdout.readline().strip()
    sink = _Sink()
    _SINK_URL = sink.url
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        print("OTLP export ...", file=sys.stderr, flush=True)
        otlp, otlp_cpu = measure(OTLP_CONFIGS, "otlp", rounds, url, sink.url, log)
        print("sqlite store ...", file=sys.stderr, flush=True)
        sqlite, sqlite_cpu = measure(SQLITE_CONFIGS, "sqlite", rounds, url, sink.url, log)
        print("in process ...", file=sys.stderr, flush=True)
        micro_otlp = _micro("otlp", micro_rounds, log)
        micro_sqlite = _micro("sqlite", micro_rounds, log)
    finally:
        double.terminate()
        double.wait()
        sink.shutdown()
    elapsed = time.monotonic() - started

    split = micro_otlp["split"]
    main = ["mlflow_ollama", "blog", "same_data", "mlflow_trace", "bare_span", "openllmetry", "openinference"]
    openai_route = ["openai_untraced", "openai_autolog"]
    lines = [
        "# Tracing overhead, side by side",
        "",
        "Written by `benchmarks/peers.py` (`nox -s bench_peers`); method in the script's docstring and in",
        "[../performance.md](../performance.md).",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores ({_cpu()}), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; the run took {elapsed:.0f} s.",
        "",
        f"Versions: {_versions()}.",
        "",
        "## Goals: CPU, and latency against MLflow's own routes",
        "",
        "CPU is the worker process's CPU time (every thread, the exporter's included) over a round, after a",
        "final flush of its export, per call; latency is what the caller sees, with the export running.",
        "",
        "<!-- table: goals-routes -->",  # docs/performance.md quotes both goal tables (docs/reference_tables.py)
        *goals_16(otlp, otlp_cpu),
        "<!-- end table -->",
        "",
        "## Goals: against the other instrumentations, sqlite, streaming, disabled",
        "",
        "<!-- table: goals-peers -->",
        *goals(otlp, sqlite, micro_otlp),
        "<!-- end table -->",
        "",
        f"{rounds} interleaved rounds after a warm-up round; each configuration in its own process; "
        "latency seen by the caller; untraced is the same calls in a process with no tracing at all.",
        "",
        "## 1. OTLP/HTTP export to a loopback sink (every configuration)",
        "",
        "### Latency and CPU per call, export included",
        "",
        "Short chat:",
        "",
        *cpu_table(otlp, otlp_cpu, "short", [*main, "disabled", "reverted", *openai_route]),
        "",
        "20-message history and 5 tools:",
        "",
        *cpu_table(otlp, otlp_cpu, "history", [*main, *openai_route]),
        "",
        f"### Non-streamed chat, short ({CALLS['short']} calls a round)",
        "",
        *table(summarise(otlp, "short", ["untraced", *main, "disabled", "reverted", *openai_route])),
        "",
        f"### Non-streamed chat, 20-message history and 5 tools ({CALLS['history']} calls a round)",
        "",
        *table(summarise(otlp, "history", ["untraced", *main, *openai_route])),
        "",
        f"### Streamed chat, {STREAM_CHUNKS:,} chunks ({CALLS['stream']} streams a round), per chunk",
        "",
        "The blog decorator, the hand-written wrapper and `@mlflow.trace` end their span when `chat()`",
        "returns the generator, before any chunk: they do not trace streams, so they are left out.",
        "",
        *table(summarise(otlp, "stream", ["untraced", "mlflow_ollama", "openllmetry", "openinference"], STREAM_CHUNKS)),
        "",
        f"### Async: {ASYNC_CONCURRENCY} concurrent chats with `AsyncClient` ({CALLS['async']} batches a round), "
        "per call (batch time / 100)",
        "",
        *table(summarise(otlp, "async", ["untraced", *main], ASYNC_CONCURRENCY)),
        "",
        "## 2. MLflow's default local sqlite store (MLflow configurations)",
        "",
        "Export queue drained after every call, outside the timed region (see the method). The CPU column",
        "includes MLflow's write of each trace to sqlite.",
        "",
        "| case | configuration | added latency, median | added CPU per call, store write included |",
        "|---|---|---:|---:|",
        *(
            f"| {case} | {CONFIGS[n].label} | {_added(sqlite, case, n):+.0f} µs "
            f"| {_cpu_added(sqlite_cpu, case, n):+,.0f} µs |"
            for case in SYNC_CASES
            for n in SQLITE_CONFIGS
            if n not in ("untraced", "openai_untraced")
        ),
        "",
        f"### Non-streamed chat, short ({SQLITE_CALLS['short']} calls a round)",
        "",
        *table(summarise(sqlite, "short", SQLITE_CONFIGS)),
        "",
        f"### Non-streamed chat, 20-message history and 5 tools ({SQLITE_CALLS['history']} calls a round)",
        "",
        *table(summarise(sqlite, "history", SQLITE_CONFIGS)),
        "",
        "## 3. In process, stub HTTP client: where the added time goes",
        "",
        f"Medians of {micro_rounds} interleaved rounds of per-call medians (2,000 calls a round with OTLP, 100 with "
        "sqlite and its queue drained after each call). A short chat.",
        "",
        "### OTLP export",
        "",
        *_micro_table(micro_otlp),
        "",
        "### sqlite store",
        "",
        *_micro_table(micro_sqlite),
        "",
        "### cProfile of 2,000 traced calls (OTLP export): whose time it is",
        "",
        "Per call, under the profiler (which inflates Python-heavy code, so read the shares): time in MLflow",
        "and OpenTelemetry functions that our code called directly, with all they called; the SDK call itself;",
        "and the rest of the wrapper's time, which is our own code (mapping, wrappers, bookkeeping).",
        "",
        "| where | µs per call | share |",
        "|---|---:|---:|",
        *(
            f"| {label} | {split[key]:.0f} | {split[key] / split['total']:.0%} |"
            for key, label in (
                ("mlflow", "MLflow + OpenTelemetry (span start, set inputs/attributes/outputs, end)"),
                ("ours", "mlflow_ollama's own code"),
                ("sdk", "the Ollama SDK call (stub HTTP client)"),
                ("total", "the traced call"),
            )
        ),
        "",
        "### cProfile of 2,000 traced calls (OTLP export), by cumulative time",
        "",
        "```",
        micro_otlp["profile"].strip(),
        "```",
        "",
        "## OTLP sink",
        "",
        "Requests and bytes the sink received and discarded, per configuration (proof that each exported):",
        "",
        "| configuration | requests | KB |",
        "|---|---:|---:|",
        *(f"| {k} | {v[0]} | {v[1] / 1024:,.0f} |" for k, v in sorted(sink.received.items())),
    ]
    return "\n".join(lines), summary(otlp, otlp_cpu, sqlite, micro_otlp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--micro-rounds", type=int, default=7)
    parser.add_argument("--output", help="also write the markdown report to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--micro", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--double", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options.worker, options.mode, options.double, options.sink)
        return
    if options.micro:
        micro(options.micro, options.rounds)
        return
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        print(f"worker logs: {log.name}", file=sys.stderr)
        text, figures = report(options.rounds, options.micro_rounds, log)
    print(text)
    if options.output:
        with open(options.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        # Beside the page: the figures other pages quote (python docs/reference_tables.py).
        with open(os.path.splitext(options.output)[0] + ".json", "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()
