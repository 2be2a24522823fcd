"""Pure translation of Ollama requests and responses into what an MLflow span records.

Nothing here touches a span, MLflow or the network. Every function takes plain data: the
arguments a user passed to the SDK (dicts or ``ollama`` pydantic objects) or a response object,
and returns JSON-ready dicts and lists.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "PROVIDER",
    "ZERO_COST",
    "chat_messages",
    "generate_messages",
    "get_field",
    "summarise_texts",
    "image_summary",
    "message_dict",
    "request_inputs",
    "response_attributes",
    "response_outputs",
    "token_usage",
    "tool_definitions",
    "without_content",
]

PROVIDER = "ollama"
ZERO_COST = {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0}
"""Local models cost nothing; an explicit zero stops MLflow pricing them from a catalog."""

# MLflow attribute names, spelled out so that old mlflow-tracing releases without the constants work.
USAGE = "mlflow.chat.tokenUsage"
TOOLS = "mlflow.chat.tools"
MESSAGES = "mlflow.chat.messages"
MODEL = "mlflow.llm.model"
PROVIDER_KEY = "mlflow.llm.provider"
COST = "mlflow.llm.cost"
FORMAT = "mlflow.message.format"

# Ollama's durations are integer nanoseconds and arrive only on the final response.
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
_CHAT_ROLES = frozenset({"system", "user", "assistant", "tool"})
_PLAIN_ROLES = frozenset({"system", "user", "assistant"})  # a tool message needs its call matched
_MESSAGE_FIELDS = ("role", "content", "thinking", "tool_name")


def get_field(obj: Any, name: str) -> Any:
    """Read a field from a dict or an ollama pydantic object; absent and None are the same."""
    kind = type(obj)
    if kind is dict:
        return obj.get(name)
    mapping = _MAPPING_TYPES.get(kind)
    if mapping is None:  # isinstance against the Mapping ABC costs more than the read: once per type
        if len(_MAPPING_TYPES) >= _MAX_TYPES:
            _MAPPING_TYPES.clear()
        mapping = _MAPPING_TYPES[kind] = issubclass(kind, Mapping)
    return obj.get(name) if mapping else getattr(obj, name, None)


_MAPPING_TYPES: dict[type, bool] = {}
_MAX_TYPES = 256


MAX_TEXT_CHARS = 262_144
"""Longer strings are cut, with a marker saying how much was left out: spans stay bounded."""

_MAX_DEPTH = 32
_PLAIN_CONTAINERS = (dict, list, tuple)


def _dump(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """A JSON-ready, bounded copy of whatever the user or the SDK handed over.

    Pydantic objects, mappings and sequences become dicts and lists; strings longer than
    ``MAX_TEXT_CHARS`` are cut, lone surrogates replaced; NaN and infinities become strings
    (JSON has none); cycles, very deep nesting and objects JSON cannot hold become short
    ``"<...>"`` notes. Never raises for odd input.
    """
    kind = type(obj)
    if kind is str:  # the commonest cases first, by exact type: isinstance() costs more
        return obj if len(obj) <= MAX_TEXT_CHARS and obj.isascii() else _text(obj)
    if kind is int or kind is bool or obj is None:
        return obj
    if isinstance(obj, (bool, int)):
        return obj
    if isinstance(obj, str):
        return _text(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if depth > _MAX_DEPTH:
        return "<nested too deep>"
    # ``seen`` holds the containers being walked above this one (one set, added to on the way
    # down and removed from on the way up): a container met again among them is a cycle.
    if seen is None:
        seen = set()
    key = id(obj)
    if key in seen:
        return "<recursive reference>"
    seen.add(key)
    try:
        return _dump_dict(obj, depth, seen) if kind is dict else _dump_container(obj, depth, seen)
    finally:
        seen.discard(key)


def _dump_dict(obj: dict[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
    """A plain dict: plain keys and scalar values are taken as they are, without a call each."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if type(k) is not str or len(k) > MAX_TEXT_CHARS or not k.isascii():
            k = _text(str(k))
        kind = type(v)
        if (kind is str and len(v) <= MAX_TEXT_CHARS and v.isascii()) or kind is int or kind is bool or v is None:
            out[k] = v
        else:
            out[k] = _dump(v, depth + 1, seen)
    return out


def _dump_container(obj: Any, depth: int, seen: set[int]) -> Any:
    # Plain containers first: hasattr() on them costs a failed attribute lookup each time.
    if type(obj) not in _PLAIN_CONTAINERS and hasattr(obj, "model_dump"):
        try:
            obj = obj.model_dump(mode="python", exclude_none=True, by_alias=True)
        except Exception as exc:
            return f"<{type(obj).__name__}: {type(exc).__name__}>"
        if type(obj) is dict:
            return _dump_dict(obj, depth, seen)
    if isinstance(obj, Mapping):
        return {_text(str(k)): _dump(v, depth + 1, seen) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_dump(v, depth + 1, seen) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    try:
        return _text(repr(obj), 1_000)
    except Exception:
        return f"<{type(obj).__name__}>"


def _text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    if len(text) > limit:
        text = _cut(text, limit)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the exporters would fail on them
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


# --- images -------------------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
_SUFFIX_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def _sniff(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    return "application/octet-stream"


Attach = Callable[[bytes, str], Any]
"""Turns an image's bytes and media type into what the span should hold (an MLflow Attachment)."""

MAX_ATTACHED_IMAGE_BYTES = 20 * 1024 * 1024
"""Larger images are summarised but not attached: a trace should not carry tens of megabytes."""


def _image_bytes(value: Any, summary: dict[str, Any]) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if "path" in summary:
        with open(summary["path"], "rb") as handle:
            return handle.read()
    return base64.b64decode(value.strip())


def image_summary(image: Any, attach: Attach | None = None) -> dict[str, Any]:
    """A small stand-in for an image: its size and media type, never its bytes.

    Accepts what the SDK accepts: bytes, a path (``str`` or ``Path``), a base64 string, or an
    ``ollama.Image`` wrapping any of these. Reads at most a few bytes of a file, unless
    ``attach`` is given: then the image (up to 20 MB) goes to ``attach`` and what it returns is
    kept under ``"content"``.
    """
    value = getattr(image, "value", image)
    summary = _summarise(value)
    if attach is not None and "error" not in summary and summary["size_bytes"] <= MAX_ATTACHED_IMAGE_BYTES:
        try:
            data = _image_bytes(value, summary)
        except (OSError, ValueError, binascii.Error):
            data = None
        if data is not None:
            summary["content"] = attach(data, summary["media_type"])
    elif attach is not None and "error" not in summary:
        summary["note"] = f"not attached: larger than {MAX_ATTACHED_IMAGE_BYTES // (1024 * 1024)} MB"
    return summary


def _summarise(value: Any) -> dict[str, Any]:
    if isinstance(value, (bytes, bytearray)):
        return {"type": "image", "media_type": _sniff(bytes(value[:16])), "size_bytes": len(value)}
    if isinstance(value, os.PathLike) or (isinstance(value, str) and len(value) < 4096):
        path = os.fspath(value)
        try:
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    head = handle.read(16)
                size = os.path.getsize(path)
                return {"type": "image", "media_type": _sniff(head), "size_bytes": size, "path": str(path)}
        except (OSError, ValueError):
            pass
        suffix = os.path.splitext(str(path))[1].lower()
        if isinstance(value, os.PathLike) or suffix in _SUFFIX_TYPES:
            return {"type": "image", "path": str(path), "error": "file not found"}
    if isinstance(value, str):
        # A base64 string: decode only its head to learn the type; its length gives the size.
        text = value.strip()
        try:
            head = base64.b64decode(text[:24] + "=" * (-len(text[:24]) % 4))
        except (binascii.Error, ValueError):
            return {"type": "image", "error": "not base64 or a file", "size_chars": len(text)}
        size = len(text) * 3 // 4 - text[-2:].count("=")
        return {"type": "image", "media_type": _sniff(head), "size_bytes": size}
    return {"type": "image", "error": f"unsupported image value of type {type(value).__name__}"}


def summarise_texts(texts: Any, budget: int = 16_384, per_text: int = 4_096) -> Any:
    """Embedding input, bounded: each text cut at ``per_text`` characters, the batch at ``budget``.

    What is left out is said in place: ``"...[1,234 more characters]"`` at the end of a cut
    text, and a last item ``"[97 more texts, 96,000 characters, not recorded]"``.
    """
    if isinstance(texts, str):
        return _cut(texts, per_text)
    if not isinstance(texts, (list, tuple)):
        return _dump(texts)
    out: list[Any] = []
    used = 0
    for index, text in enumerate(texts):
        if used >= budget:
            rest = texts[index:]
            chars = sum(len(t) for t in rest if isinstance(t, str))
            out.append(f"[{len(rest):,} more texts, {chars:,} characters, not recorded]")
            break
        item = _cut(text, min(per_text, budget - used)) if isinstance(text, str) else _dump(text)
        used += len(item) if isinstance(item, str) else 0
        out.append(item)
    return out


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit:,} more characters]"


# --- requests -----------------------------------------------------------------------------------


def message_dict(message: Any, attach: Attach | None = None) -> dict[str, Any]:
    """One chat message (dict or ``ollama.Message``) as a plain dict, images summarised."""
    if type(message) is dict and "images" not in message and "tool_calls" not in message:
        return _dump_dict(message, -1, set())  # the common case: role and text, nothing to summarise
    if isinstance(message, Mapping):
        out = {str(k): v for k, v in message.items() if k not in ("images", "tool_calls")}
    else:
        out = {name: getattr(message, name) for name in _MESSAGE_FIELDS if getattr(message, name, None) is not None}
    images = get_field(message, "images")
    if images:
        out["images"] = (
            [image_summary(image, attach) for image in images]
            if isinstance(images, (list, tuple))
            else image_summary(images, attach)
        )
    tool_calls = get_field(message, "tool_calls")
    if tool_calls:
        out["tool_calls"] = _dump(list(tool_calls) if isinstance(tool_calls, (list, tuple)) else tool_calls)
    return {k: v if k == "images" else _dump(v) for k, v in out.items()}


def tool_definitions(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """Tools as the JSON schema the SDK sends: dicts, ``ollama.Tool`` objects or Python functions."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        function = type(tool) is not dict and callable(tool) and not isinstance(tool, Mapping)
        if function and not hasattr(tool, "model_dump"):
            try:
                out.append(_function_schema(tool))
            except TypeError:  # an unhashable callable: not cached
                out.append(_function_schema.__wrapped__(tool))
        else:
            out.append(_dump(tool))
    return out


@functools.lru_cache(maxsize=256)
def _function_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """A Python function's tool schema, read once: the SDK's own converter, so the recorded schema
    is exactly what went on the wire. It parses the signature and docstring, ~40 µs a function."""
    return _dump(sys.modules["ollama._utils"].convert_function_to_tool(function))  # type: ignore[no-any-return]


def request_inputs(arguments: Mapping[str, Any], attach: Attach | None = None) -> dict[str, Any]:
    """The call's arguments by name, made JSON-ready: messages as dicts, tools as schemas.

    Images become summaries (attached through ``attach`` if given); embedding input is bounded
    (:func:`summarise_texts`); a ``context`` token array becomes its length. Only sequences are
    walked: a one-shot iterator is recorded by its type, because reading it here would take it
    away from the SDK.
    """
    inputs: dict[str, Any] = {}
    for name, value in arguments.items():
        if isinstance(value, Iterator):
            inputs[name] = f"<{type(value).__name__} not recorded>"
        elif name == "messages" and isinstance(value, (list, tuple)):
            # Only the newest message's images are attached: older ones were attached by the call
            # that sent them, and re-reading a whole history's images on every turn is costly.
            last = len(value) - 1
            inputs[name] = [message_dict(m, attach if i == last else None) for i, m in enumerate(value)]
        elif name == "tools" and isinstance(value, (list, tuple)):
            inputs[name] = tool_definitions(value)
        elif name == "images" and isinstance(value, (list, tuple)):
            inputs[name] = [image_summary(image, attach) for image in value]
        elif name == "input":
            inputs[name] = summarise_texts(value)
        elif name == "context" and isinstance(value, (list, tuple)):
            inputs[name] = {"length": len(value)}
        else:
            inputs[name] = _dump(value)
    return inputs


# --- responses ----------------------------------------------------------------------------------


def response_outputs(response: Any, log_embeddings: bool = False) -> Any:
    """The response as JSON, with its bulky parts summarised.

    ``context`` (generate's token array) becomes ``{"length": n}``; embedding vectors become
    ``{"count": n, "dimensions": d}`` unless ``log_embeddings``.
    """
    out = _dump(response)
    if not isinstance(out, dict):
        return out
    context = out.get("context")
    if isinstance(context, list):
        out["context"] = {"length": len(context)}
    if not log_embeddings:
        vectors = out.get("embeddings")
        if isinstance(vectors, list):
            out["embeddings"] = {"count": len(vectors), "dimensions": len(vectors[0]) if vectors else 0}
        vector = out.get("embedding")
        if isinstance(vector, list):
            out["embedding"] = {"dimensions": len(vector)}
    return out


def token_usage(response: Any, embedding: bool = False) -> dict[str, int] | None:
    """MLflow token usage from Ollama's counts. A count the server did not send is left out.

    An embedding produces no output tokens, so there its total is its input. System One reports
    its counts under ``usage``, already in MLflow's names.
    """
    usage: dict[str, int] = {}
    prompt = get_field(response, "prompt_eval_count")
    completion = get_field(response, "eval_count")
    counts = get_field(response, "usage") if prompt is None and completion is None else None
    if counts is not None:
        prompt, completion = get_field(counts, "input_tokens"), get_field(counts, "output_tokens")
    if prompt is not None:
        usage["input_tokens"] = prompt
    if completion is not None:
        usage["output_tokens"] = completion
    if prompt is not None and (completion is not None or embedding):
        usage["total_tokens"] = prompt + (completion or 0)
    return usage or None


def response_attributes(response: Any, embedding: bool = False) -> dict[str, Any]:
    """Span attributes read off a final response: usage, model, durations, speed, done reason."""
    attributes: dict[str, Any] = {}
    usage = token_usage(response, embedding)
    if usage:
        attributes[USAGE] = usage
    model = get_field(response, "model")
    if model:
        attributes[MODEL] = model
    for name in _DURATIONS:
        value = get_field(response, name)
        if value is not None:
            attributes[f"ollama.{name}_ns"] = value
    eval_count, eval_duration = get_field(response, "eval_count"), get_field(response, "eval_duration")
    if eval_count is not None and eval_duration:
        attributes["ollama.output_tokens_per_second"] = round(eval_count * 1e9 / eval_duration, 3)
    done_reason = get_field(response, "done_reason")
    if done_reason is not None:
        attributes["ollama.done_reason"] = done_reason
    return attributes


# --- the chat view ------------------------------------------------------------------------------


def _openai_tool_call(call: Any, call_id: str) -> dict[str, Any]:
    function = get_field(call, "function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping):
        function = {}
    arguments = function.get("arguments")
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": str(function.get("name", "")),
            # The UI wants OpenAI's shape: arguments as a JSON string, not Ollama's dict.
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, default=str),
        },
    }


def chat_messages(messages: Sequence[Mapping[str, Any]], reply: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The conversation in OpenAI chat format, the form the MLflow UI renders as a chat.

    ``messages`` are request messages as made by :func:`message_dict`; ``reply`` is the response
    message as a dict, or None when the call failed. Ollama drops tool-call ids, so ids are made
    up (``call_0``, ``call_1``, ...) and each tool result is matched to the earliest open call of
    the same tool name. Thinking becomes ``reasoning``.
    """
    out: list[dict[str, Any]] = []
    open_calls: list[tuple[str, str]] = []  # (id, tool name) awaiting a tool message
    counter = 0
    for message in [*messages, *([reply] if reply is not None else [])]:
        role = message.get("role")
        content = message.get("content")
        if len(message) == 2 and type(content) is str and type(role) is str and role in _PLAIN_ROLES:
            out.append({"role": role, "content": content})  # the common case: role and text only
            continue
        role = str(role or "user")
        item: dict[str, Any] = {"role": role if role in _CHAT_ROLES else "user"}
        item["content"] = content if isinstance(content, str) or content is None else json.dumps(content, default=str)
        urls = _image_urls(message.get("images"))
        if urls:
            text = [{"type": "text", "text": item["content"]}] if item["content"] else []
            item["content"] = text + [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        if message.get("thinking"):
            item["reasoning"] = str(message["thinking"])
        calls = message.get("tool_calls")
        if calls and isinstance(calls, list):
            item["tool_calls"] = []
            for call in calls:
                call_id = f"call_{counter}"
                counter += 1
                converted = _openai_tool_call(call, call_id)
                item["tool_calls"].append(converted)
                open_calls.append((call_id, converted["function"]["name"]))
        if role == "tool":
            name = message.get("tool_name") or message.get("name")
            if name:
                item["name"] = str(name)
            match = next((c for c in open_calls if not name or c[1] == name), None)
            if match is not None:
                open_calls.remove(match)
                item["tool_call_id"] = match[0]
        out.append(item)
    return out


def _image_urls(images: Any) -> list[str]:
    """The attachment references of summarised images, for image parts in the chat view."""
    if not isinstance(images, list):
        return []
    return [i["content"] for i in images if isinstance(i, dict) and isinstance(i.get("content"), str)]


def generate_messages(inputs: Mapping[str, Any], response: Any) -> list[dict[str, Any]]:
    """A ``generate`` call as a conversation, so the UI shows prompt and reply as a chat."""
    messages: list[dict[str, Any]] = []
    if isinstance(inputs.get("system"), str):
        messages.append({"role": "system", "content": inputs["system"]})
    prompt = inputs.get("prompt")
    messages.append(
        {"role": "user", "content": prompt if isinstance(prompt, str) else "", "images": inputs.get("images")}
    )
    reply = None
    if response is not None:
        reply = {"role": "assistant", "content": get_field(response, "response") or ""}
        thinking = get_field(response, "thinking")
        if thinking:
            reply["thinking"] = thinking
    return chat_messages(messages, reply)


# --- content off ----------------------------------------------------------------------------------

NOT_LOGGED = "[not logged]"
"""What stands in for text when content logging is off."""

# With content off, a string survives only under one of these keys: everything else a trace holds
# as text (messages, prompts, responses, thinking, tool results, embedding input, logprob tokens,
# file paths, keys nobody foresaw) is replaced. An allow-list, so that nothing new leaks by default.
_METADATA_KEYS = frozenset(
    {"role", "model", "name", "tool_name", "type", "media_type", "done_reason", "created_at", "id"}
    | {"tool_call_id", "format", "keep_alive", "think", "error", "note"}
)


def without_content(value: Any, key: str | None = None) -> Any:
    """``value`` with every string that could be content replaced by ``"[not logged]"``.

    Keeps the structure and the metadata: roles, model, tool names, token counts, durations,
    image sizes and types. Tool-call arguments go whole (as a JSON string in the chat view, where
    the UI expects one). Dict keys are structure and stay; so do tool definitions, which callers
    leave out of the walk (they are code, not conversation).
    """
    if isinstance(value, dict):
        return {
            k: (json.dumps(NOT_LOGGED) if isinstance(v, str) else NOT_LOGGED)
            if k == "arguments" and v is not None
            else without_content(v, k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_content(item, key) for item in value]
    if isinstance(value, str) and value and key not in _METADATA_KEYS:
        return NOT_LOGGED
    return value
