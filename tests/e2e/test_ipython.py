"""``%load_ext mlflow_ollama`` in a real Jupyter kernel: loading turns autolog on, unloading turns it off.

The notebook is built here, cell by cell, and executed by nbclient in a kernel process that
inherits a private sqlite store, an experiment name and the double's address.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble

from .parts import need

CHAT = 'ollama.chat(model="llama3.2", messages=[{{"role": "user", "content": "{}"}}])'


def test_load_ext_traces_and_unload_ext_stops(server: OllamaDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        need(False, "nbclient/nbformat are not installed")
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-ollama-ipython-"))
    store, name = f"sqlite:///{workdir / 'mlflow.db'}", f"load-ext-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.delenv("MLFLOW_OLLAMA_AUTOLOG", raising=False)

    cells = [
        "%load_ext mlflow_ollama",
        "import ollama\n" + CHAT.format("loaded"),  # ollama imported after the extension loaded
        "%unload_ext mlflow_ollama",
        CHAT.format("unloaded"),
        "%load_ext mlflow_ollama",
        CHAT.format("loaded again"),
        "import mlflow\nmlflow.flush_trace_async_logging()",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])  # type: ignore[no-untyped-call]
    sent = len(server.requests)
    NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(workdir)}}
    ).execute()

    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    traces = sorted(client.search_traces(locations=[experiment.experiment_id]), key=lambda t: t.info.timestamp_ms)
    said = [[s.attributes["mlflow.chat.messages"][0]["content"] for s in t.data.spans] for t in traces]
    assert said == [["loaded"], ["loaded again"]]
    assert "unloaded" not in json.dumps([t.to_dict() for t in traces])
    chats = [r.body["messages"][0]["content"] for r in server.requests[sent:] if r.path == "/api/chat"]
    assert chats == ["loaded", "unloaded", "loaded again"]  # every call was made, traced or not
