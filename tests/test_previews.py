"""Trace previews (the traces list's Request and Response columns) read like the conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import mlflow
import pytest

import mlflow_ollama
from mlflow_ollama import _previews
from mlflow_ollama.testing import OllamaDouble, Reply
from support import MODEL, only_trace, traces, user

TIP = {"name": "calculate_tip", "arguments": {"bill_amount": 187.32, "tip_percentage": 22}}


# --- pure: plain data in, text out ------------------------------------------------------------


def test_chat_request_preview_is_the_last_user_message() -> None:
    inputs = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 22% of 187.32?"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": TIP}]},
            {"role": "tool", "content": "41.21", "tool_name": "calculate_tip"},
        ]
    }
    assert _previews.request_preview("chat", inputs) == "What is 22% of 187.32?"


def test_chat_request_preview_without_a_user_message_is_the_last_message() -> None:
    assert _previews.request_preview("chat", {"messages": [{"role": "system", "content": "hi"}]}) == "hi"
    assert _previews.request_preview("chat", {"messages": []}) is None


def test_an_image_is_counted_not_inlined() -> None:
    message = {"role": "user", "content": "What is this?", "images": [{"type": "image", "size_bytes": 9}]}
    assert _previews.request_preview("chat", {"messages": [message]}) == "What is this? [1 image]"


def test_a_tool_call_reply_previews_as_calls_never_json() -> None:
    outputs = {"message": {"role": "assistant", "content": "", "tool_calls": [{"function": TIP}]}}
    assert _previews.response_preview("chat", outputs) == "calculate_tip(bill_amount=187.32, tip_percentage=22)"
    two = {"message": {"content": "", "tool_calls": [{"function": TIP}, {"function": {"name": "f", "arguments": {}}}]}}
    assert _previews.response_preview("chat", two) == "calculate_tip(bill_amount=187.32, tip_percentage=22); f()"


def test_text_wins_over_tool_calls_and_long_text_is_bounded() -> None:
    outputs = {"message": {"content": "Sure. " * 400, "tool_calls": [{"function": TIP}]}}
    preview = _previews.response_preview("chat", outputs)
    assert preview is not None
    assert preview.startswith("Sure. Sure.")
    assert len(preview) == _previews.MAX_PREVIEW_CHARS
    assert preview.endswith("...")


def test_embed_previews_summarise() -> None:
    assert _previews.request_preview("embed", {"input": "one text"}) == "one text"
    assert _previews.request_preview("embed", {"input": ["a", "b", "c"]}) == "a (+2 more)"
    # summarise_texts() ended a long batch with its own note: the count is of all texts.
    batch = ["a", "b", "[98 more texts, 98,000 characters, not recorded]"]
    assert _previews.request_preview("embed", {"input": batch}) == "a (+99 more)"
    assert _previews.response_preview("embed", {"embeddings": {"count": 3, "dimensions": 8}}) == (
        "3 embeddings of 8 dimensions"
    )


# --- through the real client and a real store --------------------------------------------------


def _previews_of(trace: Any) -> tuple[str | None, str | None]:
    return trace.info.request_preview, trace.info.response_preview


def test_chat_previews(client: Any) -> None:
    mlflow_ollama.autolog()
    client.chat(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "Why blue?"}],
    )
    assert _previews_of(only_trace()) == ("Why blue?", "You said: Why blue?")


def test_streamed_chat_previews_the_whole_reply(client: Any) -> None:
    mlflow_ollama.autolog()
    chunks = list(client.chat(model=MODEL, messages=user("one two three"), stream=True))
    assert len(chunks) > 2
    assert _previews_of(only_trace()) == ("one two three", "You said: one two three")


def test_async_stream_previews(server: OllamaDouble) -> None:
    import ollama

    async def main() -> None:
        stream = await ollama.AsyncClient(host=server.url).chat(model=MODEL, messages=user("a b"), stream=True)
        async for _ in stream:
            pass

    mlflow_ollama.autolog()
    asyncio.run(main())
    assert _previews_of(only_trace()) == ("a b", "You said: a b")


def test_tool_call_reply_previews_as_the_call(client: Any, server: OllamaDouble) -> None:
    mlflow_ollama.autolog()
    server.enqueue(Reply(tool_calls=[TIP]))
    client.chat(model=MODEL, messages=user("Tip on 187.32 at 22%?"))
    assert _previews_of(only_trace()) == (
        "Tip on 187.32 at 22%?",
        "calculate_tip(bill_amount=187.32, tip_percentage=22)",
    )


def test_generate_and_embed_previews(client: Any) -> None:
    mlflow_ollama.autolog()
    client.generate(model=MODEL, prompt="Name a colour")
    client.embed(model=MODEL, input=["first text", "second text"])
    generate, embed = traces()
    assert _previews_of(generate) == ("Name a colour", "You said: Name a colour")
    request, response = _previews_of(embed)
    assert request == "first text (+1 more)"
    assert response is not None
    assert response.startswith("2 embeddings of ")


def test_a_failed_call_keeps_its_request_preview(client: Any) -> None:
    import ollama

    mlflow_ollama.autolog()
    with pytest.raises(ollama.ResponseError):
        client.chat(model="missing-model", messages=user("anyone there?"))
    request, _ = _previews_of(only_trace())
    assert request == "anyone there?"


def test_the_users_own_root_keeps_its_previews(client: Any) -> None:
    mlflow_ollama.autolog()
    with mlflow.start_span("my_agent") as span:
        span.set_inputs({"question": "mine"})
        client.chat(model=MODEL, messages=user("inner question"))
        span.set_outputs({"answer": "my answer"})
    request, response = _previews_of(only_trace())
    assert request == '{"question": "mine"}'
    assert response == '{"answer": "my answer"}'


def test_content_off_keeps_content_out_of_previews(client: Any, server: OllamaDouble) -> None:
    mlflow_ollama.autolog(log_content=False)
    client.chat(model=MODEL, messages=user("a secret question"))
    server.enqueue(Reply(tool_calls=[TIP]))
    client.chat(model=MODEL, messages=user("secret bill"))
    plain, tool = traces()
    assert _previews_of(plain) == ("[not logged]", "[not logged]")
    assert _previews_of(tool) == ("[not logged]", "calculate_tip([not logged])")
    for trace in (plain, tool):
        assert "secret" not in str(_previews_of(trace))
        assert "187.32" not in str(_previews_of(trace))
