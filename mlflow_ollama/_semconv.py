"""OpenTelemetry GenAI semantic conventions for Ollama spans, for MLflow's OTLP export.

With ``MLFLOW_ENABLE_OTEL_GENAI_SEMCONV=true``, MLflow rewrites each span before OTLP export
(``mlflow/tracing/export/genai_semconv/translator.py``): universal attributes (operation, model,
provider, tokens) itself, messages through a converter chosen by ``mlflow.message.format``. It
has none for ``"ollama"`` and falls back to the OpenAI chat-completions one, which finds no
``choices`` in an Ollama response: the exported span then lacks the reply and the finish reason.
:func:`translate` is the converter for our format; ``_patch`` hands it to MLflow. It runs only
at export, and only when that variable is on, so it costs nothing otherwise.

Pure functions on the JSON-ready inputs and outputs our spans record; the conversation comes
from the same :func:`~mlflow_ollama._mapping.chat_messages` as the chat view, so tool-call ids
agree with what the MLflow UI shows.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping
from typing import Any

from mlflow_ollama import _mapping as m

__all__ = ["translate"]

# The attribute names (``GenAiSemconvKey`` in MLflow 3.15+), spelled out.
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_MODEL = "gen_ai.response.model"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

# Ollama's ``options`` that have a GenAI request attribute.
_OPTIONS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "num_predict": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "stop": "gen_ai.request.stop_sequences",
}


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One OpenAI-format chat message (from ``chat_messages``) as GenAI message parts."""
    parts: list[dict[str, Any]] = []
    if message.get("reasoning"):
        parts.append({"type": "reasoning", "content": message["reasoning"]})
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):  # text and image parts
        for part in content:
            if part.get("type") == "text":
                parts.append({"type": "text", "content": part.get("text")})
            elif part.get("type") == "image_url":  # an MLflow attachment reference
                parts.append({"type": "uri", "modality": "image", "uri": part["image_url"]["url"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        # Not JSON: "[not logged]" with content off, or text a model sent as arguments; kept as is.
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"), "arguments": arguments})
    return parts


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    if message.get("role") == "tool":
        response = message.get("content")
        part: dict[str, Any] = {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}
        return {"role": "tool", "parts": [part]}
    return {"role": message.get("role"), "parts": _parts(message)}


def _finish_reason(outputs: Mapping[str, Any], reply: Mapping[str, Any] | None) -> str | None:
    """Ollama's ``done_reason``; ``tool_call`` (the conventions' value) when the reply asks for tools."""
    reason = outputs.get("done_reason")
    if reply is not None and reply.get("tool_calls") and reason in (None, "stop"):
        return "tool_call"
    return reason if isinstance(reason, str) else None


def _conversation(inputs: Mapping[str, Any], outputs: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The call as OpenAI-format messages, the reply last if there is one, as the chat view has it."""
    if isinstance(inputs.get("messages"), list):  # chat
        reply = outputs.get("message") if outputs is not None else None
        messages = [x for x in inputs["messages"] if isinstance(x, Mapping)]
        return m.chat_messages(messages, reply if isinstance(reply, Mapping) else None)
    if "prompt" in inputs:  # generate
        return m.generate_messages(inputs, outputs)
    return None


def translate(inputs: Any, outputs: Any) -> dict[str, Any]:
    """GenAI attributes for one chat or generate span, from its recorded inputs and outputs.

    ``gen_ai.input.messages`` and ``gen_ai.system_instructions`` (JSON text), request parameters
    from ``options``, ``gen_ai.tool.definitions``, and from the response ``gen_ai.output.messages``
    (the reply: reasoning, text, tool calls), ``gen_ai.response.finish_reasons`` and
    ``gen_ai.response.model``. Empty for anything else (an embedding span).
    """
    if not isinstance(inputs, Mapping):
        return {}
    outputs = outputs if isinstance(outputs, Mapping) else None
    conversation = _conversation(inputs, outputs)
    if conversation is None:
        return {}
    replied = outputs is not None and bool(conversation) and conversation[-1]["role"] == "assistant"
    asked = conversation[:-1] if replied else conversation
    attributes: dict[str, Any] = {}
    system = [{"type": "text", "content": x["content"]} for x in asked if x["role"] == "system" and x.get("content")]
    if system:
        attributes[SYSTEM_INSTRUCTIONS] = json.dumps(system, ensure_ascii=False)
    attributes[INPUT_MESSAGES] = json.dumps([_message(x) for x in asked if x["role"] != "system"], ensure_ascii=False)
    options = inputs.get("options")
    if isinstance(options, Mapping):
        for name, key in _OPTIONS.items():
            value = options.get(name)
            if value is not None:
                attributes[key] = [value] if name == "stop" and isinstance(value, str) else value
    tools = inputs.get("tools")
    if isinstance(tools, list) and tools:
        flat = [
            {"type": t.get("type", "function"), **(t.get("function") or {})} for t in tools if isinstance(t, Mapping)
        ]
        attributes[TOOL_DEFINITIONS] = json.dumps(flat, ensure_ascii=False)
    if outputs is not None:
        reply = outputs.get("message") if isinstance(outputs.get("message"), Mapping) else None
        reason = _finish_reason(outputs, reply)
        if replied:
            message = _message(conversation[-1])
            if reason is not None:
                message["finish_reason"] = reason
            attributes[OUTPUT_MESSAGES] = json.dumps([message], ensure_ascii=False)
        if reason is not None:
            attributes[FINISH_REASONS] = [reason]
        model = outputs.get("model")
        if isinstance(model, str) and model:
            attributes[RESPONSE_MODEL] = model
    return attributes


@functools.cache
def converter() -> Any:
    """An instance of MLflow's ``GenAiSemconvConverter`` that does :func:`translate`.

    Made on first use: the base class exists only in MLflow releases that have the GenAI export.
    """
    from mlflow.tracing.export.genai_semconv.converter import GenAiSemconvConverter

    class OllamaConverter(GenAiSemconvConverter):
        def convert_inputs(self, inputs: dict[str, Any]) -> list[dict[str, Any]] | None:
            text = translate(inputs, None).get(INPUT_MESSAGES)
            return None if text is None else list(json.loads(text))

        def convert_outputs(self, outputs: dict[str, Any]) -> list[dict[str, Any]] | None:
            return None  # needs the inputs too, for tool-call ids: see translate()

        def translate(self, inputs: dict[str, Any] | None, outputs: dict[str, Any] | None) -> dict[str, Any]:
            return translate(inputs, outputs)

    return OllamaConverter()
