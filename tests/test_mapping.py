"""The pure mapping functions, on plain data and real ollama objects: no server, no MLflow."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import ollama
import pytest
from ollama._types import Image  # not exported by ollama before 0.4.5

from mlflow_ollama import _mapping as m

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return "sunny"


def test_messages_become_dicts_whether_dicts_or_message_objects() -> None:
    inputs = m.request_inputs(
        {
            "model": "llama3.2",
            "messages": [
                {"role": "user", "content": "hi"},
                ollama.Message(role="assistant", content="hello"),
            ],
        }
    )
    assert inputs == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }


def test_tools_given_as_functions_become_their_json_schema() -> None:
    [tool] = m.tool_definitions([get_weather])
    assert tool == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string", "description": "The name of the city"}},
            },
        },
    }


def test_tool_objects_and_dicts_are_kept_as_schemas() -> None:
    as_dict = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    tool = ollama.Tool(type="function", function=ollama.Tool.Function(name="g"))
    assert m.tool_definitions([as_dict, tool]) == [as_dict, {"type": "function", "function": {"name": "g"}}]


def test_image_bytes_become_a_placeholder_not_base64() -> None:
    summary = m.image_summary(PNG)
    assert summary == {"type": "image", "media_type": "image/png", "size_bytes": len(PNG)}
    message = m.message_dict({"role": "user", "content": "what is this?", "images": [PNG]})
    assert message["images"] == [summary]
    assert base64.b64encode(PNG).decode() not in json.dumps(message)


def test_image_paths_and_base64_strings_are_summarised(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    assert m.image_summary(str(image)) == {
        "type": "image",
        "media_type": "image/png",
        "size_bytes": len(PNG),
        "path": str(image),
    }
    assert m.image_summary(image)["size_bytes"] == len(PNG)
    encoded = base64.b64encode(PNG).decode()
    assert m.image_summary(encoded) == {"type": "image", "media_type": "image/png", "size_bytes": len(PNG)}
    assert m.image_summary(Image(value=PNG))["media_type"] == "image/png"


def test_a_missing_image_file_is_recorded_as_missing_without_raising(tmp_path: Path) -> None:
    assert m.image_summary(str(tmp_path / "nope.jpg")) == {
        "type": "image",
        "path": str(tmp_path / "nope.jpg"),
        "error": "file not found",
    }


def test_token_usage_leaves_out_counts_the_server_did_not_send() -> None:
    assert m.token_usage({"prompt_eval_count": 3, "eval_count": 5}) == {
        "input_tokens": 3,
        "output_tokens": 5,
        "total_tokens": 8,
    }
    assert m.token_usage({"eval_count": 5}) == {"output_tokens": 5}
    assert m.token_usage({}) is None


def test_response_attributes_carry_durations_speed_and_done_reason() -> None:
    response = ollama.ChatResponse(
        model="llama3.2",
        message=ollama.Message(role="assistant", content="hi"),
        done=True,
        done_reason="stop",
        total_duration=10,
        load_duration=1,
        prompt_eval_count=2,
        prompt_eval_duration=3,
        eval_count=4,
        eval_duration=2_000_000_000,
    )
    assert m.response_attributes(response) == {
        "mlflow.chat.tokenUsage": {"input_tokens": 2, "output_tokens": 4, "total_tokens": 6},
        "mlflow.llm.model": "llama3.2",
        "ollama.total_duration_ns": 10,
        "ollama.load_duration_ns": 1,
        "ollama.prompt_eval_duration_ns": 3,
        "ollama.eval_duration_ns": 2_000_000_000,
        "ollama.output_tokens_per_second": 2.0,
        "ollama.done_reason": "stop",
    }


def test_response_outputs_are_the_response_as_json() -> None:
    response = ollama.ChatResponse(model="m", message=ollama.Message(role="assistant", content="hi"), done=True)
    outputs = m.response_outputs(response)
    assert outputs == {"model": "m", "done": True, "message": {"role": "assistant", "content": "hi"}}
    json.dumps(outputs)


def test_chat_messages_are_openai_shaped_with_ids_matching_tool_results() -> None:
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "thinking": "two cities",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "12:00", "tool_name": "get_time"},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    reply = {"role": "assistant", "content": "Sunny at noon."}
    assert m.chat_messages(history, reply) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "two cities",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "content": "12:00", "name": "get_time", "tool_call_id": "call_1"},
        {"role": "tool", "content": "sunny", "name": "get_weather", "tool_call_id": "call_0"},
        {"role": "assistant", "content": "Sunny at noon."},
    ]


def test_chat_messages_map_unknown_roles_so_the_ui_still_renders() -> None:
    assert m.chat_messages([{"role": "developer", "content": "x"}], None) == [{"role": "user", "content": "x"}]


def test_one_shot_iterators_are_not_consumed() -> None:
    messages = iter([{"role": "user", "content": "hi"}])
    inputs = m.request_inputs({"messages": messages})
    assert inputs == {"messages": "<list_iterator not recorded>"}
    assert next(messages) == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"temperature": 0.2, "seed": None}, {"temperature": 0.2, "seed": None}),
        (ollama.Options(temperature=0.2), {"temperature": 0.2}),
    ],
)
def test_options_are_recorded_as_given(options: Any, expected: dict[str, Any]) -> None:
    assert m.request_inputs({"options": options}) == {"options": expected}
