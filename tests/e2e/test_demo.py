"""The demo's last step works as printed: its ``mlflow ui`` command, from elsewhere, with no venv on PATH.

``nox -s demo`` runs the demo in a venv of its own; a newcomer has no ``mlflow`` on their PATH and
may be in another directory when they paste the command. So the test runs the demo, then checks
the two things the printed command depends on: the program, run exactly as printed (with
``--help`` appended, which starts no server) from ``/`` with a PATH of system directories only,
is MLflow's ``ui`` command; and the store it names, opened from ``/``, holds the demo's traces.
Starting the UI server itself is MLflow's part, and would add half a minute to CI.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from .parts import _OURS, free_port

DEMO = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo.py"


def test_the_demo_prints_an_mlflow_ui_command_that_works_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-ollama-demo-"))
    env = {k: v for k, v in os.environ.items() if k not in _OURS and not k.startswith("MLFLOW_OLLAMA_")}
    env["OLLAMA_HOST"] = f"http://127.0.0.1:{free_port()}"  # nothing there: the demo starts its double
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "using the loopback double" in done.stdout
    lines = done.stdout.splitlines()
    at = lines.index("Open them in the MLflow UI:")
    command = shlex.split(lines[at + 1].strip())
    page = lines[at + 2].strip().removeprefix("then http://127.0.0.1:5000/")
    _, *arguments = command
    assert arguments == ["ui", "--backend-store-uri", f"sqlite:///{workdir.resolve() / 'mlflow.db'}"]

    bare = {k: v for k, v in env.items() if k != "PATH"} | {"PATH": "/usr/bin:/bin"}
    helped = subprocess.run([*command, "--help"], cwd="/", env=bare, capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0, helped.stderr
    assert "--backend-store-uri" in helped.stdout  # MLflow's `ui` command answered

    monkeypatch.chdir("/")  # the store as the printed URI names it, from another directory
    experiment_id = page.split("/")[2]
    traces = MlflowClient(tracking_uri=arguments[2]).search_traces(locations=[experiment_id])
    assert len(traces) == 4  # the demo's four scenarios
