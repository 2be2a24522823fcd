"""A tracking server that is down: every call still succeeds, nothing raises, the app exits cleanly.

Two kinds of down: a port that refuses connections, and a server that accepts connections and
never answers. The app runs in strict mode, so any exception from the plugin would fail it. MLflow
retries failed uploads for about four minutes with its default settings (measured in
``benchmarks/unreachable_server.py``, docs/benchmarks/unreachable.md); these runs give up sooner
still (no retries, as docs/remote.md recommends, and a 3 s timeout), so that the app's exit is not
held up.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mlflow_ollama.testing import OllamaDouble

from .parts import run_app

SCENARIOS = ["chat", "chat_async", "chat_stream", "chat_stream_async", "tool_loop"]
QUICK_GIVE_UP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}


@pytest.fixture(params=["refused", "never_answers"])
def down_server(request: pytest.FixtureRequest) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if request.param == "never_answers":
            sock.listen(64)  # connections complete in the backlog; nothing ever reads or replies
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_calls_succeed_and_nothing_raises_when_the_server_is_down(server: OllamaDouble, down_server: str) -> None:
    before = len(server.requests)
    run = run_app(server, {"MLFLOW_TRACKING_URI": down_server, **QUICK_GIVE_UP}, SCENARIOS, timeout=180)
    # Every scenario ran to the end (run_app checks the exit code and that each made a trace), and
    # every request reached Ollama: one per scenario, two for the tool loop.
    assert set(run.trace_ids) == set(SCENARIOS)
    assert len(server.requests) - before == len(SCENARIOS) + 1
    assert "Traceback" not in run.stderr
    # What MLflow does with the traces: it logs that it could not send them, and drops them.
    assert "Failed to send trace" in run.stderr
