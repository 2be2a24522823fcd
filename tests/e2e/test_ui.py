"""The MLflow UI, in a real browser: what a person sees when they open our traces.

Playwright drives headless Chromium (Debian's ``chromium``; Playwright's own download does not
work on our machines) against the real ``mlflow server``. Assertions read the chat view itself
(the role label followed by the message), not the raw JSON that the UI also shows, so a chat view
that fails to render fails the test even when every attribute test passes.

Screenshots of each view are written to ``MLFLOW_OLLAMA_E2E_ARTIFACTS`` (default ``.e2e-artifacts/``);
with ``MLFLOW_OLLAMA_UPDATE_SCREENSHOTS=1`` they also replace the ones in ``docs/images/``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_ollama.testing import OllamaDouble

from .parts import MlflowServer, need, run_app

CHROMIUM = os.environ.get("MLFLOW_OLLAMA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags that keep Chromium quiet on a machine without outside network (see ../shared/README.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MLFLOW_OLLAMA_E2E_ARTIFACTS") or REPO / ".e2e-artifacts")
# Close the MLflow Assistant side panel, which otherwise opens on first load and covers the trace.
_QUIET_UI = (
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    browser_required = os.environ.get("MLFLOW_OLLAMA_REQUIRE_BROWSER", "").lower() in ("1", "true", "yes")
    found = os.path.exists(CHROMIUM)
    if not found and not browser_required:
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium); .ci/run installs it")
    assert found, f"no Chromium at {CHROMIUM}, and MLFLOW_OLLAMA_REQUIRE_BROWSER is set"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(_QUIET_UI)
        context.set_default_timeout(60_000)
        yield context.new_page()
        browser.close()


@pytest.fixture(scope="module")
def traces(mlflow_server: MlflowServer, server: OllamaDouble) -> dict[str, Any]:
    """The app's tool loop and streamed chat, sent to the server; and a chat made with content off."""
    experiment = mlflow_server.new_experiment()
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "APP_EXPERIMENT_ID": experiment}
    run = run_app(server, env, ["tool_loop", "chat_stream", "long_prompt"])
    hidden = run_app(server, {**env, "MLFLOW_OLLAMA_LOG_CONTENT": "false"}, ["chat"])
    ids = {**run.trace_ids, "chat_content_off": hidden.trace_ids["chat"]}
    return {name: mlflow_server.client.get_trace(trace_id) for name, trace_id in ids.items()}


def open_trace(page: Any, server: MlflowServer, trace: Any) -> str:
    """Open a trace in the UI, as a link to it would; return the page's visible text."""
    url = f"{server.url}/#/experiments/{trace.info.experiment_id}/traces?selectedEvaluationId={trace.info.trace_id}"
    page.goto(url)
    page.get_by_text("Spans", exact=True).wait_for()
    return visible_text(page)


def select_span(page: Any, index: int) -> None:
    """Click the index-th ``ollama.chat`` in the span tree."""
    page.get_by_text("ollama.chat", exact=True).nth(index).click()


def visible_text(page: Any) -> str:
    return re.sub(r"[ \t]+", " ", str(page.inner_text("body")))


def shows(text: str, *lines: str) -> bool:
    """Whether the page shows these lines one after the other, as the chat view lays them out."""
    return re.search(r"\s*\n\s*".join(re.escape(line) for line in lines), text) is not None


def wait_shows(page: Any, *lines: str, timeout: float = 30) -> str:
    """The page's text once it shows ``lines`` (the UI renders asynchronously), or at the timeout."""
    deadline = time.monotonic() + timeout
    text = visible_text(page)
    while not shows(text, *lines) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        text = visible_text(page)
    return text


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("MLFLOW_OLLAMA_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(ARTIFACTS / name, REPO / "docs" / "images" / name)


def _tokens(span: Any) -> int:
    return int(span.attributes["mlflow.chat.tokenUsage"]["total_tokens"])


def _chat_spans(trace: Any) -> list[Any]:
    return sorted((s for s in trace.data.spans if s.name == "ollama.chat"), key=lambda s: s.start_time_ns)


def test_ui_tool_call_shows_user_message_tool_call_tools_and_tokens(
    page: Any, mlflow_server: MlflowServer, traces: dict[str, Any]
) -> None:
    trace = traces["tool_loop"]
    first, _ = _chat_spans(trace)
    open_trace(page, mlflow_server, trace)
    select_span(page, 0)
    text = wait_shows(page, "Assistant", "Tool calls")
    assert shows(text, "User", "What is the weather in Tokyo?"), text
    assert shows(text, "Assistant", "Tool calls", "get_weather", "city", "Tokyo"), text
    assert f"{_tokens(first)} tokens" in text
    assert shows(text, "Tools", "(1)"), text
    page.get_by_test_id("model-trace-explorer-tools-section-toggle").click()
    text = wait_shows(page, "Tools", "(1)", "get_weather", "Inputs")
    assert shows(text, "Tools", "(1)", "get_weather", "Inputs"), text  # the tools list, expanded
    screenshot(page, "ui-tool-call.png")


def test_ui_tool_loop_shows_the_whole_conversation(
    page: Any, mlflow_server: MlflowServer, traces: dict[str, Any]
) -> None:
    trace = traces["tool_loop"]
    _, second = _chat_spans(trace)
    open_trace(page, mlflow_server, trace)
    select_span(page, 1)
    text = wait_shows(page, "Assistant", "According to get_weather: 22°C and sunny in Tokyo")
    assert shows(text, "User", "What is the weather in Tokyo?"), text
    assert shows(text, "get_weather", "city", "Tokyo"), text
    assert shows(text, "get_weather", "22°C and sunny in Tokyo"), text  # the tool's answer
    assert shows(text, "Assistant", "According to get_weather: 22°C and sunny in Tokyo"), text
    assert f"{_tokens(second)} tokens" in text
    screenshot(page, "ui-tool-chat.png")


def test_ui_streamed_chat_renders_like_a_plain_one(
    page: Any, mlflow_server: MlflowServer, traces: dict[str, Any]
) -> None:
    trace = traces["chat_stream"]
    (span,) = _chat_spans(trace)
    open_trace(page, mlflow_server, trace)
    text = wait_shows(page, "Assistant", "You said: Count to five, slowly please.")
    assert shows(text, "User", "Count to five, slowly please."), text
    assert shows(text, "Assistant", "You said: Count to five, slowly please."), text
    assert f"{_tokens(span)} tokens" in text
    screenshot(page, "ui-stream-chat.png")


def test_ui_with_content_off_shows_metadata_but_no_text(
    page: Any, mlflow_server: MlflowServer, traces: dict[str, Any]
) -> None:
    trace = traces["chat_content_off"]
    (span,) = _chat_spans(trace)
    open_trace(page, mlflow_server, trace)
    select_span(page, 0)
    # The span's inputs are shown (the model is kept with content off), so the text below is
    # the rendered span, not a page that failed to load.
    text = wait_shows(page, "model", "llama3.2")
    assert shows(text, "model", "llama3.2"), text
    assert "ollama.chat" in text
    assert f"{_tokens(span)} tokens" in text
    assert "sky" not in text
    assert "Answer in one line" not in text


def test_ui_span_attributes_show_the_load_and_the_cut_prompt(
    page: Any, mlflow_server: MlflowServer, traces: dict[str, Any]
) -> None:
    """docs/signals.md: a reload for a new num_ctx and a cut prompt, read in the span's Attributes tab."""
    trace = traces["long_prompt"]
    open_trace(page, mlflow_server, trace)
    page.get_by_text("Attributes", exact=True).first.click()
    text = wait_shows(page, "ollama.model_load.reason")
    for key, value in (
        ("ollama.model_load", "true"),
        ("ollama.model_load.reason", "options_changed"),
        ("ollama.context.num_ctx", "128"),
        ("ollama.context.prompt_truncated", "true"),
    ):
        assert re.search(rf"{re.escape(key)}\s*\n?\s*\"?{re.escape(value)}\"?\s*\n", text), (key, value, text)
    assert "ollama.context.used_fraction" in text
    screenshot(page, "ui-signals.png")


@pytest.fixture(scope="module")
def listed(mlflow_server: MlflowServer, server: OllamaDouble) -> str:
    """An experiment holding the demo's kinds of trace and a three-turn session; its id."""
    experiment = mlflow_server.new_experiment()
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "APP_EXPERIMENT_ID": experiment}
    run_app(server, env, ["chat", "tool_call", "tool_loop", "chat_stream", "generate", "session"])
    return experiment


def open_traces_list(page: Any, server: MlflowServer, experiment: str) -> str:
    page.goto("about:blank")  # a fresh load: from an open trace, a change of the URL's #part keeps its drawer
    page.goto(f"{server.url}/#/experiments/{experiment}/traces")
    page.get_by_text("Why is the sky blue?", exact=True).wait_for()
    got_it = page.get_by_text("Got it", exact=True)  # a one-time "Detect Issues" tip covers the list
    if got_it.count():
        got_it.click()
    return visible_text(page)


def test_ui_traces_list_previews_read_like_the_conversation(
    page: Any, mlflow_server: MlflowServer, listed: str
) -> None:
    """The first screen a user opens: each row's Input and Output are text, never Ollama's JSON."""
    text = open_traces_list(page, mlflow_server, listed)
    assert shows(text, "Why is the sky blue?", "You said: Why is the sky blue?"), text
    assert shows(text, "Weather in Lisbon?", 'get_weather(city="Lisbon")'), text  # a reply of only a tool call
    assert shows(text, "Count to five, slowly please.", "You said: Count to five, slowly please."), text  # streamed
    assert shows(text, "Write a haiku about logs.", "You said: Write a haiku about logs."), text  # generate
    assert shows(text, "And what should I pack?", "You said: And what should I pack?"), text
    # The tool loop's root is the app's own span: its previews are MLflow's, left as they were.
    assert shows(text, '{"question": "What is the weather in Tokyo?"}'), text
    assert '"model"' not in text
    assert "created_at" not in text
    screenshot(page, "ui-traces-list.png")


def test_ui_session_groups_a_multi_turn_chat(page: Any, mlflow_server: MlflowServer, listed: str) -> None:
    open_traces_list(page, mlflow_server, listed)
    page.get_by_label("Group traces by session").click()
    # One row for the session: its first question and its last answer.
    text = wait_shows(page, "trip-planning", "Hi, I'm planning a trip to Japan.", "You said: And what should I pack?")
    assert shows(text, "trip-planning", "Hi, I'm planning a trip to Japan.", "You said: And what should I pack?"), text
    assert "When is the best season?" not in text  # the middle turn is inside the collapsed session
    page.get_by_text("trip-planning", exact=True).click()  # the session view: one turn per trace
    turn = ("Turn 2", "User", "When is the best season?", "Assistant", "You said: When is the best season?")
    text = wait_shows(page, *turn)
    assert shows(text, *turn), text
    assert shows(text, "Turn 3", "User", "And what should I pack?", "Assistant", "You said: And what should I pack?")
    screenshot(page, "ui-session.png")
