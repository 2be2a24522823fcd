"""What the framework tests read from a trace: its span tree, our spans in it, and what each records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import pytest

import mlflow_ollama
from mlflow_ollama._previews import request_preview, response_preview
from support import base_name, trace_token_usage


def root(trace: Any) -> Any:
    [top] = [s for s in trace.data.spans if s.parent_id is None]
    return top


def ours(trace: Any, name: str = "ollama.chat") -> Any:
    """The one span of ours, by name, in the trace."""
    [span] = [s for s in trace.data.spans if base_name(s) == name]
    return span


def path_to_root(trace: Any, span: Any) -> list[str]:
    """The names of the span's ancestors, nearest first: where our span sits in the framework's tree."""
    by_id = {s.span_id: s for s in trace.data.spans}
    names = []
    while span.parent_id is not None:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def usage(span: Any) -> dict[str, int]:
    return dict(span.attributes["mlflow.chat.tokenUsage"])


def assert_usage_counted_once(trace: Any, span: Any) -> None:
    """The trace's token usage is the call's own: not doubled by the framework's span holding it too."""
    own = usage(span)
    total = trace_token_usage(trace)
    assert total is not None
    assert {k: total[k] for k in own} == own, (total, own)


def reply(span: Any) -> dict[str, Any]:
    """The last message of our span's chat view (``mlflow.chat.messages``): the assistant's reply."""
    messages = span.attributes["mlflow.chat.messages"]
    assert messages[-1]["role"] == "assistant", messages
    return dict(messages[-1])


def previews_are_ours(trace: Any, span: Any) -> bool:
    """Whether the traces list shows the previews mlflow-ollama computes from this span of ours."""
    method = base_name(span).removeprefix("ollama.")
    return bool(
        trace.info.request_preview == request_preview(method, span.inputs)
        and trace.info.response_preview == response_preview(method, span.outputs)
    )


def check(on: bool, trace: Any, under: list[str], name: str = "ollama.chat") -> Any:
    """Our span, beneath the framework's spans (``under``, nearest first) or alone with our previews;
    for chat, the trace's usage counted once."""
    span = ours(trace, name)
    if on:
        assert path_to_root(trace, span) == under
    else:
        assert span.parent_id is None
        assert previews_are_ours(trace, span)
    if name == "ollama.chat":
        assert_usage_counted_once(trace, span)
    return span


def autolog_switch(flavor: str) -> Callable[..., Iterator[bool]]:
    """A fixture running each test twice: with MLflow's autolog for ``flavor`` on, and off; ours on in both.

    The common case is on: ``mlflow.autolog()`` switches every installed framework's on.
    """

    @pytest.fixture(params=[f"with-{flavor}-autolog", "alone"])
    def switch(request: pytest.FixtureRequest) -> Iterator[bool]:
        on = request.param != "alone"
        integration = getattr(mlflow, flavor)
        mlflow_ollama.autolog()
        if on:
            integration.autolog()
        yield on
        if on:  # disabling an integration that was never on can warn (Agno's does)
            integration.autolog(disable=True)

    return switch
