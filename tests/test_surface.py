"""The rest of the inference surface: generate, embed, embeddings, images, request options."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
from pathlib import Path
from typing import Any

import mlflow
import ollama
import pytest
from mlflow.entities import SpanType

import mlflow_ollama
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, base_name, only_trace, sdk_accepts, sdk_takes_schema_format, traces, user

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

try:
    from mlflow.tracing.attachments import Attachment
except ImportError:  # MLflow before 3.11
    Attachment = None  # type: ignore[assignment,misc]

needs_attachments = pytest.mark.skipif(Attachment is None, reason="trace attachments arrived in MLflow 3.11")


@pytest.fixture(autouse=True)
def _autolog() -> None:
    mlflow_ollama.autolog()


def _only_span(name: str) -> Any:
    [span] = [s for s in only_trace().data.spans if base_name(s) == name]
    return span


def _run(mode: str, server: OllamaDouble, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` through Client, AsyncClient or the module-level function."""
    if mode in ("sync", "module"):
        target = ollama.Client(host=server.url) if mode == "sync" else ollama
        result = getattr(target, method)(*args, **kwargs)
        return list(result) if kwargs.get("stream") else result

    async def call() -> Any:
        result = await getattr(ollama.AsyncClient(host=server.url), method)(*args, **kwargs)
        if kwargs.get("stream"):
            return [part async for part in result]
        return result

    return asyncio.run(call())


MODES = ["sync", "async", "module"]


# --- generate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_generate_is_an_llm_span(mode: str, server: OllamaDouble) -> None:
    response = _run(mode, server, "generate", MODEL, "Why is the sky blue?", system="be brief")
    span = _only_span("ollama.generate")
    assert span.span_type == SpanType.LLM
    assert span.inputs == {"model": MODEL, "prompt": "Why is the sky blue?", "system": "be brief"}
    assert span.outputs["response"] == response.response == "You said: Why is the sky blue?"
    assert span.outputs["context"] == {"length": len(response.context or [])}  # summarised, not dumped
    assert span.attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
    assert span.attributes["ollama.done_reason"] == "stop"
    assert span.attributes["ollama.eval_duration_ns"] == 70_000_000
    assert span.attributes["mlflow.chat.messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "You said: Why is the sky blue?"},
    ]


@pytest.mark.parametrize("mode", MODES)
def test_streamed_generate_records_what_the_plain_call_would(mode: str, server: OllamaDouble) -> None:
    parts = _run(mode, server, "generate", MODEL, "stream this prompt", stream=True)
    server.scheduler.unload_all()  # the plain call waits for the same load as the streamed one
    plain = ollama.Client(host=server.url).generate(MODEL, "stream this prompt")
    streamed_trace, plain_trace = traces()
    streamed, unstreamed = streamed_trace.data.spans[0], plain_trace.data.spans[0]
    assert "".join(p.response for p in parts) == plain.response
    assert streamed.outputs == unstreamed.outputs
    assert streamed.attributes["ollama.stream.end"] == "complete"
    assert streamed.attributes["ollama.stream.chunks"] == len(parts)
    assert streamed.attributes["mlflow.chat.messages"] == unstreamed.attributes["mlflow.chat.messages"]


def test_a_context_passed_back_is_summarised(server: OllamaDouble) -> None:
    client = ollama.Client(host=server.url)
    first = client.generate(MODEL, "one")
    client.generate(MODEL, "two", context=first.context)
    assert traces()[1].data.spans[0].inputs["context"] == {"length": len(first.context or [])}


@pytest.mark.skipif(not sdk_accepts("think"), reason="think= arrived in ollama 0.5")
def test_generate_thinking(server: OllamaDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow_ollama.testing import Reply

    server.enqueue(Reply(content="42", thinking="Let me think."))
    ollama.Client(host=server.url).generate(MODEL, "meaning?", think=True)
    span = _only_span("ollama.generate")
    assert span.outputs["thinking"] == "Let me think."
    assert span.attributes["mlflow.chat.messages"][-1] == {
        "role": "assistant",
        "content": "42",
        "reasoning": "Let me think.",
    }


# --- embed and embeddings -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_embed_is_an_embedding_span_with_counts_not_vectors(mode: str, server: OllamaDouble) -> None:
    response = _run(mode, server, "embed", "all-minilm", ["first text", "second text here"])
    span = _only_span("ollama.embed")
    assert span.span_type == SpanType.EMBEDDING
    assert span.inputs == {"model": "all-minilm", "input": ["first text", "second text here"]}
    assert span.outputs["embeddings"] == {"count": 2, "dimensions": 8}
    assert len(response.embeddings) == 2
    assert span.attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 5, "total_tokens": 5}
    assert span.attributes["mlflow.llm.model"] == "all-minilm"
    assert "mlflow.chat.messages" not in span.attributes


def test_embed_vectors_are_recorded_only_when_asked(server: OllamaDouble) -> None:
    mlflow_ollama.autolog(log_embeddings=True)
    response = ollama.Client(host=server.url).embed("all-minilm", "one text")
    assert _only_span("ollama.embed").outputs["embeddings"] == [list(v) for v in response.embeddings]


@pytest.mark.parametrize("mode", MODES)
def test_legacy_embeddings_is_traced(mode: str, server: OllamaDouble) -> None:
    _run(mode, server, "embeddings", "all-minilm", "legacy text")
    span = _only_span("ollama.embeddings")
    assert span.span_type == SpanType.EMBEDDING
    assert span.inputs == {"model": "all-minilm", "prompt": "legacy text"}
    assert span.outputs == {"embedding": {"dimensions": 8}}


def test_a_100_text_embed_stays_under_64_kb_and_says_what_it_left_out(server: OllamaDouble) -> None:
    texts = [f"document {i}: " + "lorem ipsum dolor sit amet " * 40 for i in range(100)]
    ollama.Client(host=server.url).embed("all-minilm", texts)
    trace = only_trace()
    assert len(trace.to_json()) < 64 * 1024
    recorded = trace.data.spans[0].inputs["input"]
    assert recorded[0] == texts[0]
    marker = recorded[-1]
    assert marker.startswith("[")
    assert marker.endswith("characters, not recorded]")
    assert int(marker[1:].split()[0].replace(",", "")) == 100 - (len(recorded) - 1)


@pytest.mark.skipif(
    "dimensions" not in inspect.signature(ollama.Client.embed).parameters, reason="dimensions= arrived in ollama 0.5.4"
)
def test_embed_options_are_recorded(server: OllamaDouble) -> None:
    ollama.Client(host=server.url).embed("all-minilm", "x", truncate=True, dimensions=4, keep_alive="1m")
    span = _only_span("ollama.embed")
    assert span.inputs == {"model": "all-minilm", "input": "x", "truncate": True, "dimensions": 4, "keep_alive": "1m"}
    assert span.outputs["embeddings"] == {"count": 1, "dimensions": 4}


# --- images -----------------------------------------------------------------------------------------


def _attachment_bytes(trace: Any, reference: str) -> bytes:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracing.utils.artifact_utils import get_artifact_uri_for_trace

    parsed = Attachment.parse_ref(reference)
    assert parsed is not None
    repo = get_artifact_repository(get_artifact_uri_for_trace(trace.info))
    local = repo.download_artifacts(f"attachments/{parsed['attachment_id']}")  # type: ignore[no-untyped-call]
    return Path(local).read_bytes()


@needs_attachments
def test_chat_image_round_trip_as_an_attachment(server: OllamaDouble, tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    ollama.Client(host=server.url).chat(
        model=MODEL, messages=[{"role": "user", "content": "what is this?", "images": [str(path), PNG]}]
    )
    trace = only_trace()
    span = trace.data.spans[0]
    images = span.inputs["messages"][0]["images"]
    assert [i["media_type"] for i in images] == ["image/png", "image/png"]
    for image in images:
        assert image["content"].startswith("mlflow-attachment://")
        assert _attachment_bytes(trace, image["content"]) == PNG
    # The chat view shows the images too, by the same references.
    user_message = span.attributes["mlflow.chat.messages"][0]
    assert user_message["content"] == [
        {"type": "text", "text": "what is this?"},
        *({"type": "image_url", "image_url": {"url": image["content"]}} for image in images),
    ]
    assert base64.b64encode(PNG).decode()[:40] not in trace.to_json()


@needs_attachments
def test_generate_images_given_as_base64_are_attached(server: OllamaDouble) -> None:
    encoded = base64.b64encode(PNG).decode()
    ollama.Client(host=server.url).generate(MODEL, "describe", images=[encoded])
    trace = only_trace()
    [image] = trace.data.spans[0].inputs["images"]
    assert image["size_bytes"] == len(PNG)
    assert _attachment_bytes(trace, image["content"]) == PNG
    assert encoded[:40] not in trace.to_json()


def test_a_bad_image_path_raises_the_sdks_error_and_the_span_records_it(server: OllamaDouble) -> None:
    with pytest.raises(ValueError, match="does not exist") as caught:
        ollama.Client(host=server.url).chat(
            model=MODEL, messages=[{"role": "user", "content": "x", "images": ["/no/such/cat.png"]}]
        )
    span = _only_span("ollama.chat")
    assert span.status.status_code == "ERROR"
    assert span.inputs["messages"][0]["images"] == [
        {"type": "image", "path": "/no/such/cat.png", "error": "file not found"}
    ]
    [event] = span.events
    assert "does not exist" in event.attributes["exception.message"]
    assert str(caught.value) in event.attributes["exception.message"]


# --- request options --------------------------------------------------------------------------------


@pytest.mark.skipif(not sdk_takes_schema_format(), reason="format= takes a JSON schema from ollama 0.4.3")
def test_options_format_and_keep_alive_are_recorded_as_given(server: OllamaDouble) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    ollama.Client(host=server.url).chat(
        model=MODEL, messages=user("x"), options={"temperature": 0.0, "num_ctx": 4096}, format=schema, keep_alive=0
    )
    span = _only_span("ollama.chat")
    assert span.inputs["options"] == {"temperature": 0.0, "num_ctx": 4096}
    assert span.inputs["format"] == schema
    assert span.inputs["keep_alive"] == 0
    assert json.loads(json.dumps(span.inputs)) == span.inputs


def test_json_format_is_recorded(server: OllamaDouble) -> None:
    ollama.Client(host=server.url).generate(MODEL, "x", format="json", options=ollama.Options(seed=3))
    span = _only_span("ollama.generate")
    assert span.inputs["format"] == "json"
    assert span.inputs["options"] == {"seed": 3}


@pytest.mark.skipif(not sdk_accepts("think"), reason="think= arrived in ollama 0.5")
def test_think_levels_are_recorded(server: OllamaDouble) -> None:
    # Releases before 0.5.3 accept only booleans: there the call fails, and the span says so.
    with contextlib.suppress(Exception):
        ollama.Client(host=server.url).chat(model=MODEL, messages=user("x"), think="high")
    assert _only_span("ollama.chat").inputs["think"] == "high"


def test_other_sdk_calls_are_not_traced(server: OllamaDouble) -> None:
    client = ollama.Client(host=server.url)
    client.list()
    client.ps()
    client.show(MODEL)
    with mlflow.start_span("app"):
        pass
    assert [s.name for s in only_trace().data.spans] == ["app"]
