"""GenAI semantic conventions for Ollama spans (MLflow's OTLP export with MLFLOW_ENABLE_OTEL_GENAI_SEMCONV).

The conversion on plain data here; the export through a real OTLP receiver in tests/e2e/test_otlp.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import mlflow_ollama
from mlflow_ollama import _semconv
from mlflow_ollama._mapping import NOT_LOGGED

TIP = {"function": {"name": "calculate_tip", "arguments": {"bill_amount": 187.32, "tip_percentage": 22}}}


def _decoded(attributes: dict[str, Any]) -> dict[str, Any]:
    json_keys = {_semconv.INPUT_MESSAGES, _semconv.OUTPUT_MESSAGES, _semconv.SYSTEM_INSTRUCTIONS}
    return {k: json.loads(v) if k in json_keys or k == _semconv.TOOL_DEFINITIONS else v for k, v in attributes.items()}


def test_a_chat_with_a_tool_loop() -> None:
    inputs = {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tip on 187.32 at 22%?"},
            {"role": "assistant", "content": "", "tool_calls": [TIP]},
            {"role": "tool", "content": "41.21", "tool_name": "calculate_tip"},
        ],
        "tools": [{"type": "function", "function": {"name": "calculate_tip", "parameters": {"type": "object"}}}],
        "options": {"temperature": 0.2, "num_predict": 64, "seed": 7, "stop": "\n"},
    }
    outputs = {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": "The tip is 41.21.", "thinking": "Add it up."},
        "done_reason": "stop",
    }
    got = _decoded(_semconv.translate(inputs, outputs))
    assert got[_semconv.SYSTEM_INSTRUCTIONS] == [{"type": "text", "content": "Be brief."}]
    assert got[_semconv.INPUT_MESSAGES] == [
        {"role": "user", "parts": [{"type": "text", "content": "Tip on 187.32 at 22%?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_0",
                    "name": "calculate_tip",
                    "arguments": TIP["function"]["arguments"],
                }
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_0", "response": "41.21"}]},
    ]
    assert got[_semconv.OUTPUT_MESSAGES] == [
        {
            "role": "assistant",
            "parts": [{"type": "reasoning", "content": "Add it up."}, {"type": "text", "content": "The tip is 41.21."}],
            "finish_reason": "stop",
        }
    ]
    assert got[_semconv.FINISH_REASONS] == ["stop"]
    assert got[_semconv.RESPONSE_MODEL] == "llama3.2"
    assert got["gen_ai.request.temperature"] == 0.2
    assert got["gen_ai.request.max_tokens"] == 64
    assert got["gen_ai.request.seed"] == 7
    assert got["gen_ai.request.stop_sequences"] == ["\n"]
    assert got[_semconv.TOOL_DEFINITIONS] == [
        {"type": "function", "name": "calculate_tip", "parameters": {"type": "object"}}
    ]


def test_a_reply_of_tool_calls_finishes_with_tool_call() -> None:
    inputs = {"messages": [{"role": "user", "content": "Tip?"}]}
    outputs = {"message": {"role": "assistant", "content": "", "tool_calls": [TIP]}, "done_reason": "stop"}
    got = _decoded(_semconv.translate(inputs, outputs))
    [reply] = got[_semconv.OUTPUT_MESSAGES]
    assert reply["parts"] == [
        {"type": "tool_call", "id": "call_0", "name": "calculate_tip", "arguments": TIP["function"]["arguments"]}
    ]
    assert reply["finish_reason"] == "tool_call"
    assert got[_semconv.FINISH_REASONS] == ["tool_call"]


def test_generate_and_a_failed_call() -> None:
    got = _decoded(_semconv.translate({"prompt": "Name a colour", "system": "One word."}, {"response": "Blue"}))
    assert got[_semconv.SYSTEM_INSTRUCTIONS] == [{"type": "text", "content": "One word."}]
    assert got[_semconv.INPUT_MESSAGES] == [{"role": "user", "parts": [{"type": "text", "content": "Name a colour"}]}]
    assert got[_semconv.OUTPUT_MESSAGES] == [{"role": "assistant", "parts": [{"type": "text", "content": "Blue"}]}]
    failed = _decoded(_semconv.translate({"messages": [{"role": "user", "content": "x"}]}, None))
    assert _semconv.OUTPUT_MESSAGES not in failed
    assert _semconv.FINISH_REASONS not in failed
    assert failed[_semconv.INPUT_MESSAGES] == [{"role": "user", "parts": [{"type": "text", "content": "x"}]}]


def test_content_off_passes_only_the_placeholders() -> None:
    inputs = {"messages": [{"role": "user", "content": NOT_LOGGED}]}
    outputs = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": NOT_LOGGED}}],
        }
    }
    got = _decoded(_semconv.translate(inputs, outputs))
    assert got[_semconv.INPUT_MESSAGES][0]["parts"] == [{"type": "text", "content": NOT_LOGGED}]
    assert got[_semconv.OUTPUT_MESSAGES][0]["parts"][0]["arguments"] == NOT_LOGGED


def test_embeddings_and_odd_values_give_nothing() -> None:
    assert _semconv.translate({"input": ["a"]}, {"embeddings": {"count": 1}}) == {}
    assert _semconv.translate(None, None) == {}
    assert _semconv.translate("text", 3) == {}


def test_mlflow_picks_our_converter_for_our_format_while_autolog_is_on() -> None:
    translator = pytest.importorskip("mlflow.tracing.export.genai_semconv.translator")
    mlflow_ollama.autolog()
    ours = translator._get_converter("ollama", {})
    assert ours.translate({"messages": [{"role": "user", "content": "hi"}]}, None)[_semconv.INPUT_MESSAGES]
    assert type(translator._get_converter("openai", {})).__name__ == "OpenAIChatCompletionConverter"
    mlflow_ollama.revert()
    assert type(translator._get_converter("ollama", {})).__name__ == "OpenAIChatCompletionConverter"
