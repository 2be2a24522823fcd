"""The quickstart notebook, executed by a real Jupyter kernel against the loopback double.

The kernel is a separate process that inherits this environment: a private sqlite store and the
double's address. The test then reads back the traces the notebook made.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble

from .parts import need

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_and_traces_what_it_says(
    server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        need(False, "nbclient/nbformat are not installed")
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-ollama-notebook-"))
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.delenv("MLFLOW_OLLAMA_AUTOLOG", raising=False)

    sent = len(server.requests)
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(workdir)}}
    ).execute()

    client = MlflowClient(tracking_uri=store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "mlflow-ollama-quickstart"]
    traces = sorted(client.search_traces(locations=[experiment.experiment_id]), key=lambda t: t.info.timestamp_ms)
    shapes = [[(s.name, s.span_type) for s in sorted(t.data.spans, key=lambda s: s.start_time_ns)] for t in traces]
    assert shapes == [
        [("ollama.chat", "CHAT_MODEL")],  # a chat
        [("ollama.chat", "CHAT_MODEL")],  # a streamed chat
        [("ollama.chat", "CHAT_MODEL")],  # the call after %env MLFLOW_OLLAMA_AUTOLOG=true
        [("tool_loop", "CHAIN"), ("ollama.chat", "CHAT_MODEL"), ("get_weather", "TOOL"), ("ollama.chat", "CHAT_MODEL")],
    ]
    chat, stream, again, _ = traces
    assert chat.data.spans[0].attributes["mlflow.chat.messages"][0]["content"] == "Why is the sky blue?"
    assert stream.data.spans[0].attributes["ollama.stream.end"] == "complete"
    assert again.data.spans[0].attributes["mlflow.chat.messages"][0]["content"] == "This call is traced again."
    everything = json.dumps([t.to_dict() for t in traces])
    assert "This call is not traced." not in everything  # made with %env MLFLOW_OLLAMA_AUTOLOG=false
    # ... and made all the same: six chats reached Ollama (the loop makes two).
    chats = [r for r in server.requests[sent:] if r.path == "/api/chat"]
    assert len(chats) == 6
    # The notebook printed what it traced, and the replies came through.
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert f"Ollama: {server.url}" in printed  # OLLAMA_HOST answered, so the notebook used it
    assert "According to get_weather: 22°C and sunny in Tokyo" in printed
    assert printed.count("tr-") == 4
