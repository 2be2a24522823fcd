"""Content off: no prompt, message, response, thinking, tool-call argument or embedding input in
the trace, anywhere; the metadata stays. Checked by searching the whole exported trace."""

from __future__ import annotations

import asyncio
from typing import Any

import mlflow
import ollama
import pydantic
import pytest

import mlflow_ollama
from mlflow_ollama.testing import OllamaDouble, Reply
from support import MODEL, base_name, only_trace, sdk_takes_schema_format, traces

CANARY = "Zebracanary"  # capitalised: the toy model passes it on as a tool-call argument
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return "sunny"


def _everything(server: OllamaDouble) -> None:
    """Calls that put the canary in every place content can go."""
    client = ollama.Client(host=server.url)
    with mlflow.start_span("app"):
        server.enqueue(Reply(content=f"reply {CANARY}", thinking=f"thinking {CANARY}"))
        client.chat(model=MODEL, messages=[{"role": "user", "content": f"hello {CANARY}", "images": [PNG]}])
        first = client.chat(
            model=MODEL, messages=[{"role": "user", "content": f"Weather in {CANARY}?"}], tools=[get_weather]
        )
        history: list[Any] = [
            {"role": "user", "content": f"Weather in {CANARY}?"},
            first.message,
            {"role": "tool", "content": f"sunny in {CANARY}", "tool_name": "get_weather"},
        ]
        list(client.chat(model=MODEL, messages=history, stream=True))
        client.generate(MODEL, f"prompt {CANARY}", system=f"system {CANARY}")
        list(client.generate(MODEL, f"prompt {CANARY}", stream=True))
        client.embed("all-minilm", [f"text {CANARY}", "other"])
        client.embeddings("all-minilm", f"legacy {CANARY}")

        async def in_async() -> None:
            await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=[{"role": "user", "content": CANARY}])

        asyncio.run(in_async())
        with pytest.raises(pydantic.ValidationError) as caught:
            client.chat(model=MODEL, messages=[{"role": "user", "content": CANARY, "tool_calls": CANARY}])
        assert CANARY in str(caught.value)  # the SDK's own message quotes the input


def _spans_by_name(trace: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in trace.data.spans:
        found.setdefault(base_name(span), []).append(span)
    return found


@pytest.mark.parametrize("switch", ["autolog(log_content=False)", "MLFLOW_OLLAMA_LOG_CONTENT=false"])
def test_with_content_off_the_canary_is_nowhere_and_metadata_stays(
    switch: str, server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    if switch.startswith("autolog"):
        mlflow_ollama.autolog(log_content=False)
    else:
        mlflow_ollama.autolog()
        monkeypatch.setenv("MLFLOW_OLLAMA_LOG_CONTENT", "false")
    _everything(server)
    exported = "\n".join(t.to_json() for t in traces())
    assert CANARY not in exported
    assert CANARY.lower() not in exported.lower()
    spans = _spans_by_name(only_trace())
    assert len(spans["ollama.chat"]) == 5
    assert len(spans["ollama.generate"]) == 2
    chat = spans["ollama.chat"][0]
    assert chat.attributes["mlflow.llm.model"] == MODEL
    assert chat.attributes["mlflow.chat.tokenUsage"]["output_tokens"] > 0
    assert chat.attributes["ollama.total_duration_ns"] > 0
    assert chat.inputs["messages"][0]["role"] == "user"
    assert chat.inputs["messages"][0]["content"] == "[not logged]"
    assert chat.inputs["messages"][0]["images"] == [
        {"type": "image", "media_type": "image/png", "size_bytes": len(PNG)}
    ]
    tool_call = spans["ollama.chat"][1].outputs["message"]["tool_calls"][0]["function"]
    assert tool_call == {"name": "get_weather", "arguments": "[not logged]"}
    assert spans["ollama.chat"][1].attributes["mlflow.chat.tools"][0]["function"]["name"] == "get_weather"
    failed = spans["ollama.chat"][-1]
    assert failed.status.status_code == "ERROR"
    [event] = failed.events
    assert event.attributes["exception.type"] == "ValidationError"
    assert spans["ollama.embed"][0].outputs["embeddings"] == {"count": 2, "dimensions": 8}
    assert spans["ollama.chat"][2].attributes["ollama.stream.end"] == "complete"


def test_the_content_switch_is_read_on_every_call(server: OllamaDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_ollama.autolog()
    client = ollama.Client(host=server.url)
    monkeypatch.setenv("MLFLOW_OLLAMA_LOG_CONTENT", "off")
    client.chat(model=MODEL, messages=[{"role": "user", "content": CANARY}])
    monkeypatch.setenv("MLFLOW_OLLAMA_LOG_CONTENT", "on")
    client.chat(model=MODEL, messages=[{"role": "user", "content": CANARY}])
    hidden, shown = traces()
    assert CANARY not in hidden.to_json()
    assert CANARY in shown.to_json()


def test_with_content_on_the_canary_is_recorded(server: OllamaDouble) -> None:
    """The control: the same calls with content on do put the canary in the trace."""
    mlflow_ollama.autolog()
    _everything(server)
    assert CANARY in only_trace().to_json()


@pytest.mark.skipif(not sdk_takes_schema_format(), reason="format= takes a JSON schema from ollama 0.4.3")
def test_a_format_schema_is_not_logged_but_tool_definitions_are(server: OllamaDouble) -> None:
    mlflow_ollama.autolog(log_content=False)
    schema = {"type": "object", "description": f"Extract {CANARY}'s diagnosis", "enum": [CANARY]}
    ollama.Client(host=server.url).chat(
        model=MODEL, messages=[{"role": "user", "content": "x"}], format=schema, tools=[get_weather]
    )
    span = only_trace().data.spans[0]
    assert CANARY not in only_trace().to_json()
    assert span.inputs["format"]["description"] == "[not logged]"
    assert span.inputs["tools"][0]["function"]["description"] == "Get the current weather for a city."
