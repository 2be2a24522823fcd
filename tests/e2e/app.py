"""A small Ollama app, traced with mlflow-ollama, that the end-to-end tests run as a real process.

It makes one traced call per scenario against the Ollama server at ``OLLAMA_HOST`` and prints a
JSON object mapping each scenario to its trace id. MLflow is configured only through the
environment (``MLFLOW_TRACKING_URI``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ...), exactly as a
user's app would be, so the tests can point the same app at a server, an OTLP receiver, or nowhere.

    python tests/e2e/app.py [scenario ...]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import mlflow_ollama

mlflow_ollama.autolog()

import mlflow  # noqa: E402
import ollama  # noqa: E402
from mlflow.entities import SpanType  # noqa: E402

MODEL = "llama3.2"
HOST = os.environ["OLLAMA_HOST"]
# Set in code, not through MLFLOW_EXPERIMENT_ID: mlflow-tracing alone (3.17) fails to start any
# span when the experiment comes from the environment or is left to the default (docs/limitations.md).
if experiment := os.environ.get("APP_EXPERIMENT_ID"):
    mlflow.set_experiment(experiment_id=experiment)


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return f"22°C and sunny in {city}"


def chat() -> None:
    ollama.Client(host=HOST).chat(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in one line."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
        options={"temperature": 0.2, "seed": 7},
    )


def chat_async() -> None:
    async def main() -> None:
        await ollama.AsyncClient(host=HOST).chat(model=MODEL, messages=[{"role": "user", "content": "Hello async"}])

    asyncio.run(main())


def chat_stream() -> None:
    stream = ollama.Client(host=HOST).chat(
        model=MODEL, messages=[{"role": "user", "content": "Count to five, slowly please."}], stream=True
    )
    for _ in stream:
        pass


def chat_stream_async() -> None:
    async def main() -> None:
        stream = await ollama.AsyncClient(host=HOST).chat(
            model=MODEL, messages=[{"role": "user", "content": "Stream me some words."}], stream=True
        )
        async for _ in stream:
            pass

    asyncio.run(main())


def tool_loop() -> None:
    client = ollama.Client(host=HOST)

    @mlflow.trace(span_type=SpanType.TOOL)
    def weather_tool(city: str) -> str:
        return get_weather(city)

    @mlflow.trace(span_type=SpanType.CHAIN, name="tool_loop")
    def loop(question: str) -> str:
        messages: list[Any] = [{"role": "user", "content": question}]
        first = client.chat(model=MODEL, messages=messages, tools=[get_weather])
        messages.append(first.message)
        for call in first.message.tool_calls or []:
            messages.append(
                {"role": "tool", "content": weather_tool(**call.function.arguments), "tool_name": call.function.name}
            )
        return str(client.chat(model=MODEL, messages=messages, tools=[get_weather]).message.content)

    loop("What is the weather in Tokyo?")


def tool_call() -> None:
    """One chat whose reply is only a tool call: the trace's root is the Ollama span."""
    ollama.Client(host=HOST).chat(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Lisbon?"}], tools=[get_weather]
    )


def session() -> None:
    """A three-turn chat, each turn its own trace, grouped as one session.

    With ``mlflow.tracing.context`` (MLflow 3.12+) no span of the app's own is needed; before
    that, a span around each turn carries the session through ``update_current_trace``.
    """
    client = ollama.Client(host=HOST)
    messages: list[Any] = []
    session_id = os.environ.get("APP_SESSION_ID", "trip-planning")
    for question in ("Hi, I'm planning a trip to Japan.", "When is the best season?", "And what should I pack?"):
        messages.append({"role": "user", "content": question})
        if hasattr(mlflow.tracing, "context"):
            with mlflow.tracing.context(session_id=session_id, user="ana"):
                reply = client.chat(model=MODEL, messages=messages)
        else:
            with mlflow.start_span(name="turn"):
                mlflow.update_current_trace(metadata={"mlflow.trace.session": session_id, "mlflow.trace.user": "ana"})
                reply = client.chat(model=MODEL, messages=messages)
        messages.append(reply.message)


def generate() -> None:
    ollama.Client(host=HOST).generate(model=MODEL, prompt="Write a haiku about logs.", system="Be brief.")


def long_prompt() -> None:
    # A prompt longer than the small context it asks for: the model reloads for the new num_ctx,
    # and the server cuts the prompt.
    prompt = "Summarise these notes: " + " ".join(f"note{i}" for i in range(200))
    ollama.Client(host=HOST).generate(model=MODEL, prompt=prompt, options={"num_ctx": 128})


def embed() -> None:
    ollama.Client(host=HOST).embed(model="all-minilm", input=["first text", "second text"])


SCENARIOS: dict[str, Callable[[], None]] = {
    "chat": chat,
    "chat_async": chat_async,
    "chat_stream": chat_stream,
    "chat_stream_async": chat_stream_async,
    "tool_loop": tool_loop,
    "tool_call": tool_call,
    "session": session,
    "generate": generate,
    "embed": embed,
    "long_prompt": long_prompt,
}


def main(names: list[str]) -> None:
    trace_ids: dict[str, str | None] = {}
    seconds: dict[str, float] = {}
    for name in names or list(SCENARIOS):
        before = mlflow.get_last_active_trace_id()
        start = time.perf_counter()
        SCENARIOS[name]()
        seconds[name] = time.perf_counter() - start
        after = mlflow.get_last_active_trace_id()
        trace_ids[name] = after if after != before else None  # None: this scenario made no trace
    flush = time.perf_counter()
    mlflow.flush_trace_async_logging()
    print(
        json.dumps({"trace_ids": trace_ids, "seconds": seconds, "flush_seconds": time.perf_counter() - flush}),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
