"""``mlflow-ollama doctor`` as a command: a healthy setup, faults staged together, and the ``mlflow-tracing`` install.

Each check on its own, with each fault, is tested in process in ``tests/test_doctor.py``; here
the console script runs as a user runs it, against a real ``mlflow server`` and the loopback double.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlflow_ollama.activation.doctor import DOCTOR_PROMPT
from mlflow_ollama.testing import OllamaDouble

from .parts import _OURS, MlflowServer
from .test_launcher import tracing_only_python


@pytest.fixture(scope="module")
def ollama_with_a_model() -> Iterator[OllamaDouble]:
    with OllamaDouble(models=["llama3.2:latest"]) as double:
        yield double


def doctor(env: dict[str, str], python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _OURS and not k.startswith("MLFLOW_OLLAMA_")}
    return subprocess.run(
        [str(Path(python).with_name("mlflow-ollama")), "doctor"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tempfile.mkdtemp(prefix="mlflow-ollama-doctor-"),
    )


def line(output: str, start: str) -> str:
    found = [text for text in output.splitlines() if text.startswith(start)]
    assert len(found) == 1, f"no single line starting {start!r} in:\n{output}"
    return found[0]


def trace_id_in(output: str) -> str:
    return line(output, "[ok]   traced call:").split(" recorded as ")[1].split()[0]


def test_a_healthy_setup_passes_and_its_trace_is_on_the_server(
    mlflow_server: MlflowServer, ollama_with_a_model: OllamaDouble
) -> None:
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLFLOW_EXPERIMENT_NAME": name,
        "OLLAMA_HOST": ollama_with_a_model.url,
    }
    done = doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("versions", "switches", "tracking URI", "experiment", "Ollama server", "traced call"):
        line(done.stdout, f"[ok]   {check}:")
    assert done.stdout.rstrip().endswith("No problem found.")
    trace_id = trace_id_in(done.stdout)
    experiment = mlflow_server.client.get_experiment_by_name(name)
    assert experiment is not None
    assert f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/traces?selectedEvaluationId={trace_id}" in (
        done.stdout
    )
    trace = mlflow_server.client.get_trace(trace_id)
    [span] = trace.data.spans
    assert span.attributes["mlflow.chat.messages"][0]["content"] == DOCTOR_PROMPT


def test_faults_staged_together_are_each_found_and_the_exit_is_1(tmp_path: Path) -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{refusing.getsockname()[1]}"
        fake = tmp_path / "mlflow_skinny-3.1.0.dist-info"  # a mixed install, as metadata says it
        fake.mkdir()
        (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: mlflow-skinny\nVersion: 3.1.0\n")
        done = doctor(
            {
                "PYTHONPATH": str(tmp_path),
                "MLFLOW_OLLAMA_AUTOLOG": "false",
                "MLFLOW_TRACE_SAMPLING_RATIO": "0",
                "MLFLOW_TRACKING_URI": down,
                "OLLAMA_HOST": down,
            }
        )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "mlflow-skinny 3.1.0" in line(out, "[FAIL] versions:")
    assert "turns tracing off" in line(out, "[FAIL] switches: MLFLOW_OLLAMA_AUTOLOG")
    assert "keeps no trace" in line(out, "[FAIL] switches: MLFLOW_TRACE_SAMPLING_RATIO")
    assert "does not answer" in line(out, "[FAIL] tracking URI:")
    assert "no Ollama server answers" in line(out, "[FAIL] Ollama server:")
    line(out, "[skip] experiment:")
    line(out, "[skip] traced call:")
    assert "5 problem(s) found" in out


def test_tracing_only_with_a_server_passes_and_names_the_experiment_caveat(
    mlflow_server: MlflowServer, ollama_with_a_model: OllamaDouble
) -> None:
    python = tracing_only_python()
    name = f"doctor-light-{uuid.uuid4().hex[:8]}"
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLFLOW_EXPERIMENT_NAME": name,
        "OLLAMA_HOST": ollama_with_a_model.url,
    }
    done = doctor(env, python)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mlflow-tracing 3" in line(done.stdout, "[ok]   versions:")
    assert "mlflow-ollama run" in line(done.stdout, "[WARN] experiment:")
    trace = mlflow_server.client.get_trace(trace_id_in(done.stdout))
    experiment = mlflow_server.client.get_experiment_by_name(name)
    assert experiment is not None
    assert trace.info.experiment_id == experiment.experiment_id


def test_tracing_only_without_a_tracking_server_fails_with_the_fix() -> None:
    done = doctor({"OLLAMA_HOST": "http://127.0.0.1:9"}, tracing_only_python())
    assert done.returncode == 1
    finding = line(done.stdout, "[FAIL] tracking URI:")
    assert (
        "MLFLOW_TRACKING_URI is not set, and mlflow-tracing alone can only send traces to a tracking server" in finding
    )
    assert 'pip install "mlflow-ollama[mlflow]"' in done.stdout


def test_otlp_to_the_servers_own_endpoint_passes_and_finds_the_trace(
    mlflow_server: MlflowServer, ollama_with_a_model: OllamaDouble
) -> None:
    """Traces sent by OTLP to the tracking server's /v1/traces land in its store: no advice to export twice."""
    experiment = mlflow_server.new_experiment()
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLFLOW_EXPERIMENT_ID": experiment,
        "OLLAMA_HOST": ollama_with_a_model.url,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{mlflow_server.url}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}",
    }
    done = doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DUAL_EXPORT" not in done.stdout
    line(done.stdout, "[ok]   switches:")
    trace_id = trace_id_in(done.stdout)
    trace = mlflow_server.client.get_trace(trace_id)
    assert trace.info.experiment_id == experiment
    assert [s.name for s in trace.data.spans] == ["ollama.chat"]


def test_otlp_to_another_endpoint_says_where_the_trace_went(
    mlflow_server: MlflowServer, ollama_with_a_model: OllamaDouble
) -> None:
    """Traces sent by OTLP elsewhere are not in the tracking store: said, with no failure the setup does not have."""
    from .parts import OtlpReceiver

    with OtlpReceiver() as receiver:
        env = {
            "MLFLOW_TRACKING_URI": mlflow_server.url,
            "MLFLOW_EXPERIMENT_ID": mlflow_server.new_experiment(),
            "OLLAMA_HOST": ollama_with_a_model.url,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        }
        done = doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert receiver.endpoint in line(done.stdout, "[WARN] switches:")
    [span] = receiver.spans
    assert span.name == "ollama.chat"
    assert f"recorded as trace {bytes(span.trace_id).hex()} and exported by OTLP" in line(
        done.stdout, "[ok]   traced call:"
    )
