"""The loopback double's OpenAI-compatible endpoint, which the benchmark's OpenAI route talks to.

The Ollama endpoints are exercised by every other test through the real SDK; this one is spoken
to over real HTTP here, as the OpenAI SDK would (``openai`` is a benchmark-only dependency).
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import ollama
import pytest

from mlflow_ollama.testing import OllamaDouble, Reply

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_a_plain_chat_completion(server: OllamaDouble) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body).json()
    [choice] = reply["choices"]
    assert choice["message"] == {"role": "assistant", "content": "You said: Why is the sky blue?"}
    assert choice["finish_reason"] == "stop"
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]


def test_a_tool_call_and_its_result(server: OllamaDouble) -> None:
    server.enqueue(Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lisbon"}}]))
    url = f"{server.url}/v1/chat/completions"
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Lisbon?"}]
    first = httpx.post(url, json={"model": "m", "messages": messages, "tools": [TOOL]}).json()
    [choice] = first["choices"]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": json.dumps({"city": "Lisbon"})}
    messages += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "22°C"}]
    second = httpx.post(url, json={"model": "m", "messages": messages, "tools": [TOOL]}).json()
    assert second["choices"][0]["message"]["content"] == "According to get_weather: 22°C"


def test_a_streamed_completion_is_server_sent_events(server: OllamaDouble) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a b c"}], "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "You said: a b c"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("arguments", "listed"), [([], ["llama3.2"]), (["--model", "qwen3", "--model", "phi4"], ["qwen3", "phi4"])]
)
def test_the_command_line_double_lists_the_docs_model(arguments: list[str], listed: list[str]) -> None:
    """``python -m mlflow_ollama.testing``, as getting-started runs it: the doctor finds a model to call."""
    double = subprocess.Popen(
        [sys.executable, "-m", "mlflow_ollama.testing", *arguments], stdout=subprocess.PIPE, text=True
    )
    try:
        assert double.stdout is not None
        url = double.stdout.readline().strip()
        assert [model.model for model in ollama.Client(host=url).list().models] == listed
    finally:
        double.terminate()
        double.wait(timeout=10)
