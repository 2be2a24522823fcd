"""The one-line request and response previews of a trace, as the MLflow traces list shows them.

MLflow derives a trace's previews from its root span when the root ends, and only understands
OpenAI shapes (``mlflow/tracing/utils/truncation.py``); an Ollama span would preview as raw JSON.
When our span is the root, these give the text a user would pick out instead: the last user
message or the prompt, and the reply, or the tool calls it asks for.

Pure functions on the JSON-ready inputs and outputs our spans record (``_mapping``); nothing
here touches a span.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from mlflow_ollama._mapping import NOT_LOGGED, get_field

__all__ = ["MAX_PREVIEW_CHARS", "request_preview", "response_preview"]

MAX_PREVIEW_CHARS = 1000
"""MLflow's own bound for previews outside Databricks (``TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS``)."""


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_PREVIEW_CHARS else text[: MAX_PREVIEW_CHARS - 3] + "..."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "" if content is None else json.dumps(content, ensure_ascii=False, default=str)


def _message_text(message: Mapping[str, Any]) -> str:
    text = _text(message.get("content"))
    images = message.get("images")
    if images:
        count = len(images) if isinstance(images, list) else 1
        text = f"{text} [{count} image{'s' if count != 1 else ''}]".strip()
    return text


_LEFT_OUT = re.compile(r"^\[([\d,]+) more texts, ")


def _texts_summary(texts: Any) -> str:
    """Embedding input: the text itself, or the first of many and how many more."""
    if isinstance(texts, str):
        return texts
    if isinstance(texts, list) and texts:
        rest = len(texts) - 1
        # summarise_texts() ends a long batch with its own "[97 more texts, ...]" note.
        note = _LEFT_OUT.match(texts[-1]) if rest and isinstance(texts[-1], str) else None
        if note:
            rest += int(note.group(1).replace(",", "")) - 1
        first = _text(texts[0])
        return first if rest == 0 else f"{first} (+{rest:,} more)"
    return _text(texts)


def request_preview(method: str, inputs: Mapping[str, Any]) -> str | None:
    """The request preview: last user message (chat), prompt (generate), input summary (embed)."""
    if method == "chat":
        messages = inputs.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        # Recorded messages are plain dicts (message_dict()); from the newest back, no full copy.
        asked = next((x for x in reversed(messages) if type(x) is dict and x.get("role") == "user"), messages[-1])
        return _bounded(_message_text(asked)) if isinstance(asked, Mapping) else None
    if method == "generate":
        prompt = inputs.get("prompt")
        return None if prompt is None else _bounded(_text(prompt))
    if method == "embed":
        return None if "input" not in inputs else _bounded(_texts_summary(inputs["input"]))
    if method == "embeddings":
        prompt = inputs.get("prompt")
        return None if prompt is None else _bounded(_text(prompt))
    return None


def _arguments(arguments: Any) -> str:
    """Tool-call arguments as a call's argument list: ``bill_amount=187.32, tip_percentage=22``."""
    if isinstance(arguments, str):
        text = arguments
        try:
            arguments = json.loads(text)
        except ValueError:
            return text
    if isinstance(arguments, Mapping):
        return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in arguments.items())
    return "" if arguments is None else _text(arguments)


def _tool_calls(calls: Any) -> str:
    """``calculate_tip(bill_amount=187.32, tip_percentage=22)``, several joined by ``; ``."""
    out = []
    for call in calls if isinstance(calls, list) else ():
        function = get_field(call, "function")
        name = get_field(function, "name") if function is not None else None
        arguments = get_field(function, "arguments") if function is not None else None
        out.append(f"{name or '?'}({NOT_LOGGED if arguments == NOT_LOGGED else _arguments(arguments)})")
    return "; ".join(out)


def response_preview(method: str, outputs: Any) -> str | None:
    """The response preview: the reply text; a reply of only tool calls as those calls."""
    if not isinstance(outputs, Mapping):
        return None
    if method == "chat":
        message = outputs.get("message")
        if not isinstance(message, Mapping):
            return None
        text = _text(message.get("content"))
        calls = _tool_calls(message.get("tool_calls"))
        return _bounded(text or calls)
    if method == "generate":
        return _bounded(_text(outputs.get("response")))
    if method == "embed":
        vectors = outputs.get("embeddings")
        if isinstance(vectors, Mapping):  # summarised: {"count", "dimensions"}
            return f"{vectors.get('count')} embeddings of {vectors.get('dimensions')} dimensions"
        if isinstance(vectors, list):
            return f"{len(vectors)} embeddings of {len(vectors[0]) if vectors else 0} dimensions"
        return None
    if method == "embeddings":
        vector = outputs.get("embedding")
        if isinstance(vector, Mapping):
            return f"1 embedding of {vector.get('dimensions')} dimensions"
        if isinstance(vector, list):
            return f"1 embedding of {len(vector)} dimensions"
        return None
    return None
