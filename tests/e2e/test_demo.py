"""The demo's last step works as printed: its ``mlflow ui`` command, run from elsewhere with no venv on PATH.

``nox -s demo`` runs the demo in a venv of its own; a newcomer has no ``mlflow`` on their PATH and
may be in another directory when they paste the command. So the test runs the demo, then the
printed command exactly as printed (only a free ``--port`` is appended, since 5000 may be taken
here), from ``/`` with a PATH of system directories only, and reads the demo's traces through it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from .parts import _OURS, _wait_healthy, free_port

DEMO = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo.py"


def test_the_demo_prints_an_mlflow_ui_command_that_works_as_printed() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-ollama-demo-"))
    env = {k: v for k, v in os.environ.items() if k not in _OURS and not k.startswith("MLFLOW_OLLAMA_")}
    env["OLLAMA_HOST"] = f"http://127.0.0.1:{free_port()}"  # nothing there: the demo starts its double
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "using the loopback double" in done.stdout
    command = lines[lines.index("Open them in the MLflow UI:") + 1].strip()
    page = lines[lines.index("Open them in the MLflow UI:") + 2].strip().removeprefix("then http://127.0.0.1:5000/")
    assert shlex.split(command)[1:] == ["ui", "--backend-store-uri", f"sqlite:///{workdir.resolve() / 'mlflow.db'}"]

    port = free_port()
    log = workdir / "ui.log"
    bare = {k: v for k, v in env.items() if k != "PATH"} | {"PATH": "/usr/bin:/bin"}
    with log.open("wb") as out:
        ui = subprocess.Popen(
            [*shlex.split(command), "--port", str(port)],
            cwd="/",
            env=bare,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its server workers go with it at the end
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, ui, log, timeout=180)
        experiment_id = page.split("/")[2]
        traces = MlflowClient(tracking_uri=url).search_traces(locations=[experiment_id])
        assert len(traces) == 4  # the demo's four scenarios
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
