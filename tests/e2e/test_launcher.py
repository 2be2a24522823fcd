"""``mlflow-ollama run`` end to end: an unmodified app (``plain_app.py``) run through the console script.

The app imports only ``ollama``; it talks to the loopback double over HTTP and starts a child
Python process of its own. Traces are read back from a real store: a sqlite file with full MLflow,
and a real ``mlflow server`` for the ``mlflow-tracing``-only install, where MLflow itself ignores
the experiment variables and the launcher has to set the experiment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from mlflow_ollama.testing import OllamaDouble

from .parts import _OURS, MlflowServer, free_port, need

APP = Path(__file__).with_name("plain_app.py")


def tracing_only_python() -> str:
    python = os.environ.get("MLFLOW_OLLAMA_TRACING_ONLY_PYTHON", "")
    need(bool(python), "no tracing-only interpreter (MLFLOW_OLLAMA_TRACING_ONLY_PYTHON); `nox -s e2e` makes one")
    return python


def launch(
    double: OllamaDouble,
    env: dict[str, str],
    *app_args: str,
    flags: Sequence[str] = (),
    python: str = sys.executable,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``mlflow-ollama run FLAGS python plain_app.py APP_ARGS``, the console script of ``python``'s environment."""
    script = Path(python).with_name("mlflow-ollama")
    base = {k: v for k, v in os.environ.items() if k not in _OURS}
    return subprocess.run(
        [str(script), "run", *flags, python, str(APP), *app_args],
        env={**base, "OLLAMA_HOST": double.url, "MLFLOW_OLLAMA_STRICT": "true", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.mkdtemp(prefix="mlflow-ollama-launch-"),
    )


def sqlite_store() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='mlflow-ollama-launch-store-')) / 'mlflow.db'}"


def traces_in(client: MlflowClient, experiment_id: str) -> list[Any]:
    return sorted(client.search_traces(locations=[experiment_id]), key=lambda t: t.info.timestamp_ms)


def said(trace: Any) -> list[str]:
    """What the user said in each chat span of a trace."""
    return [
        s.attributes["mlflow.chat.messages"][0]["content"]
        for s in sorted(trace.data.spans, key=lambda s: s.start_time_ns)
        if s.name == "ollama.chat"
    ]


def test_an_unmodified_app_and_its_child_are_traced_and_the_exit_code_passes(server: OllamaDouble) -> None:
    store, name = sqlite_store(), f"launch-{uuid.uuid4().hex[:8]}"
    env = {"MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": name}
    done = launch(server, env, "app", "--child", "--embed", "--exit", "3", flags=["--log-embeddings"])
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "You said: hello from app"  # the app's own output, untouched
    assert "You said: hello from app-child" in lines
    assert json.loads(lines[-1]) == {"imported": ["mlflow", "mlflow_ollama"]}  # imported for it, not by it

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, "MLFLOW_EXPERIMENT_NAME was not used"
    traces = traces_in(client, experiment.experiment_id)
    assert [said(t) for t in traces] == [["hello from app"], [], ["hello from app-child"]]
    [embed] = traces[1].data.spans
    assert embed.name == "ollama.embed"
    # --log-embeddings reached autolog() in the launched process: the vector itself, not its size.
    assert len(embed.outputs["embeddings"]) == 1
    assert len(embed.outputs["embeddings"][0]) == 8


def test_the_switch_off_leaves_everything_untraced_and_mlflow_unimported(server: OllamaDouble) -> None:
    store, name = sqlite_store(), f"launch-off-{uuid.uuid4().hex[:8]}"
    sent = len(server.requests)
    env = {"MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": name, "MLFLOW_OLLAMA_AUTOLOG": "false"}
    done = launch(server, env, "off", "--child")
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert reports == [{"imported": []}, {"imported": []}]  # child, then parent: as if not launched
    assert [r.body["messages"][0]["content"] for r in server.requests[sent:]] == [
        "hello from off",
        "hello from off-child",
    ]
    assert not Path(store.removeprefix("sqlite:///")).exists()  # MLflow never ran, so no store either


def test_tracing_only_experiment_name_from_the_environment_works(
    mlflow_server: MlflowServer, server: OllamaDouble
) -> None:
    """mlflow-tracing alone starts no span for an environment experiment; the launcher sets it."""
    python = tracing_only_python()
    name = f"tracing-only-{uuid.uuid4().hex[:8]}"
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "MLFLOW_EXPERIMENT_NAME": name}
    done = launch(server, env, "light", "--child", python=python)
    assert done.returncode == 0, done.stderr
    assert "Failed to start span" not in done.stderr
    experiment = mlflow_server.client.get_experiment_by_name(name)
    assert experiment is not None
    assert [said(t) for t in traces_in(mlflow_server.client, experiment.experiment_id)] == [
        ["hello from light"],
        ["hello from light-child"],
    ]


def test_tracing_only_experiment_id_and_the_default_experiment_work(
    mlflow_server: MlflowServer, server: OllamaDouble
) -> None:
    python = tracing_only_python()
    experiment_id = mlflow_server.new_experiment()
    marker = uuid.uuid4().hex[:8]
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "MLFLOW_EXPERIMENT_ID": experiment_id}
    assert launch(server, env, f"by-id-{marker}", python=python).returncode == 0
    assert [said(t) for t in traces_in(mlflow_server.client, experiment_id)] == [[f"hello from by-id-{marker}"]]
    # Neither variable: MLflow's Default experiment, "0", as full MLflow would use.
    done = launch(server, {"MLFLOW_TRACKING_URI": mlflow_server.url}, f"default-{marker}", python=python)
    assert done.returncode == 0, done.stderr
    assert ["hello from default-" + marker] in [said(t) for t in traces_in(mlflow_server.client, "0")]


def test_tracing_only_with_the_tracking_server_down_import_waits_seconds_not_minutes(server: OllamaDouble) -> None:
    """Setting the experiment needs the server; MLflow would retry for about four minutes. The app waits 3 s."""
    python = tracing_only_python()
    refused = f"http://127.0.0.1:{free_port()}"
    env = {"MLFLOW_TRACKING_URI": refused, "MLFLOW_EXPERIMENT_NAME": "down"}
    done = launch(server, env, "down", python=python, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("You said: hello from down\n")  # the call itself is unaffected
    assert f"the tracking server at {refused} did not answer within 3 s" in done.stderr
