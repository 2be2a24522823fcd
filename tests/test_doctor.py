"""``mlflow-ollama doctor``, check by check, in this process: each fault staged for real, each finding read.

The Ollama server is the loopback double over real HTTP, the store the suite's sqlite store; a
tracking server that is down is a port nothing listens on. The doctor as a command, and with
``mlflow-tracing`` alone, is tested in ``tests/e2e/test_doctor.py``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from mlflow_ollama.activation.doctor import DOCTOR_PROMPT, Doctor, Finding, processor
from mlflow_ollama.testing import Failure, OllamaDouble


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL where connections are refused: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def ollama_host(server: OllamaDouble, monkeypatch: pytest.MonkeyPatch) -> OllamaDouble:
    """OLLAMA_HOST is the double, which lists one model."""
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.setattr(server, "models", ["llama3.2:latest"])
    return server


def of(doctor: Doctor, check: str) -> list[Finding]:
    return [f for f in doctor.findings if f.check == check]


def only(doctor: Doctor, check: str) -> Finding:
    [finding] = of(doctor, check)
    return finding


def checks(doctor: Doctor, *names: str) -> Doctor:
    """Run the named checks in order, with the ones they build on first."""
    doctor.versions()
    for name in names:
        getattr(doctor, name)()
    return doctor


def test_all_well_every_check_passes_and_the_traced_call_is_in_the_store(
    ollama_host: OllamaDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    doctor = Doctor()
    assert doctor.run() == 0
    assert [(f.check, f.status) for f in doctor.findings] == [
        ("versions", "ok"),
        ("switches", "ok"),
        ("tracking URI", "ok"),
        ("experiment", "ok"),
        ("Ollama server", "ok"),
        ("loaded models", "ok"),
        ("traced call", "ok"),
    ]
    assert "llama3.2:latest" in only(doctor, "Ollama server").finding
    assert "(Ollama 0.12.6)" in only(doctor, "Ollama server").finding  # GET /api/version
    assert only(doctor, "loaded models").finding.startswith("none loaded now")
    trace_id = only(doctor, "traced call").finding.split(" recorded as ")[1].split()[0]
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    [span] = trace.data.spans
    assert span.name == "ollama.chat"
    assert span.attributes["mlflow.chat.messages"][0]["content"] == DOCTOR_PROMPT
    assert ollama_host.requests[-1].body["model"] == "llama3.2:latest"  # the model the server listed
    printed = capsys.readouterr().out
    assert "[ok]   traced call: ollama.chat to llama3.2:latest" in printed
    assert printed.rstrip().endswith("No problem found.")


def test_autolog_switched_off_fails_and_the_call_shows_no_trace(
    ollama_host: OllamaDouble, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
    sent = len(ollama_host.requests)
    doctor = Doctor()
    assert doctor.run() == 1
    switch = only(doctor, "switches")
    assert (switch.status, switch.fix) == ("fail", "unset MLFLOW_OLLAMA_AUTOLOG")
    call = only(doctor, "traced call")
    assert call.status == "fail"
    assert "worked, but made no trace (MLFLOW_OLLAMA_AUTOLOG is off)" in call.finding
    paths = [r.path for r in ollama_host.requests[sent:]]
    assert paths == ["/api/tags", "/api/version", "/api/ps", "/api/chat"]  # the call was made
    out = capsys.readouterr().out
    assert "[FAIL] switches: MLFLOW_OLLAMA_AUTOLOG='false' turns tracing off\n       fix: unset" in out
    assert "2 problem(s) found" in out


@pytest.mark.parametrize(
    ("env", "status", "words"),
    [
        ({"MLFLOW_TRACE_SAMPLING_RATIO": "0"}, "fail", "keeps no trace"),
        ({"MLFLOW_TRACE_SAMPLING_RATIO": "0.25"}, "warn", "only that share"),
        ({"OTEL_SDK_DISABLED": "true"}, "fail", "makes no span"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://u:secret@collector:4318/v1/traces"}, "warn", "OTLP endpoint"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "warn", "OTLP endpoint"),
        ({"MLFLOW_OLLAMA_AUTOLOG": "maybe"}, "warn", "not a known value"),
        ({"MLFLOW_OLLAMA_LOG_CONTENT": "off"}, "ok", "without prompts or replies"),
    ],
)
def test_switches_that_stop_or_divert_traces_are_named(
    env: dict[str, str], status: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    finding = only(checks(Doctor(), "switches"), "switches")
    assert finding.status == status
    assert words in finding.finding
    assert "secret" not in finding.finding


@pytest.mark.parametrize(
    "env",
    [
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
            "MLFLOW_ENABLE_OTLP_EXPORTER": "false",
        },
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT": "true"},
    ],
)
def test_otlp_settings_that_keep_the_store_are_not_flagged(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert only(checks(Doctor(), "switches"), "switches").status == "ok"


def test_a_mixed_mlflow_install_is_named_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real package metadata, first on sys.path: importlib.metadata reports mlflow-skinny 3.1.0."""
    info = tmp_path / "mlflow_skinny-3.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlflow-skinny\nVersion: 3.1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [versions] = checks(Doctor()).findings
    assert versions.status == "fail"
    assert "mlflow-skinny 3.1.0" in versions.finding
    assert "not one version" in versions.finding
    assert versions.fix.startswith("python -m pip uninstall -y mlflow mlflow-skinny mlflow-tracing")


def test_a_tracking_server_that_is_down_fails_and_later_checks_say_why_they_skip(
    refused_url: str, ollama_host: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:secret@{refused_url.removeprefix('http://')}")
    doctor = Doctor()
    assert doctor.run() == 1
    tracking = only(doctor, "tracking URI")
    assert tracking.status == "fail"
    assert f"{refused_url} (from MLFLOW_TRACKING_URI) does not answer: ConnectionRefusedError" in tracking.finding
    assert "secret" not in tracking.finding
    assert "mlflow server" in tracking.fix
    assert only(doctor, "experiment").status == "skip"
    assert only(doctor, "traced call").status == "skip"


def test_a_sqlite_store_not_created_yet_is_fine_and_a_relative_one_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'new.db'}")
    finding = only(checks(Doctor(), "tracking"), "tracking URI")
    assert finding.status == "ok"
    assert finding.finding.endswith("(from MLFLOW_TRACKING_URI): no such file yet, the first trace creates it")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///relative.db")
    finding = only(checks(Doctor(), "tracking"), "tracking URI")
    assert f"relative: each app writes it in its own working directory (from here: {tmp_path / 'relative.db'})" in (
        finding.finding
    )
    assert not (tmp_path / "relative.db").exists()  # the doctor creates nothing


def test_an_experiment_id_that_does_not_exist_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "987654321")
    finding = only(checks(Doctor(), "tracking", "experiment"), "experiment")
    assert finding.status == "fail"
    assert "MLFLOW_EXPERIMENT_ID='987654321': no such experiment" in finding.finding


def test_a_deleted_experiment_fails_with_the_restore_command(monkeypatch: pytest.MonkeyPatch) -> None:
    experiment_id = mlflow.create_experiment(f"doctor-deleted-{os.getpid()}-{id(monkeypatch)}")
    mlflow.delete_experiment(experiment_id)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    finding = only(checks(Doctor(), "tracking", "experiment"), "experiment")
    assert finding.status == "fail"
    assert "is deleted" in finding.finding
    assert f"--experiment-id {experiment_id}" in finding.fix


def test_experiment_name_and_id_that_disagree_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"doctor-named-{os.getpid()}-{id(monkeypatch)}"
    mlflow.create_experiment(name)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    finding = only(checks(Doctor(), "tracking", "experiment"), "experiment")
    assert finding.status == "fail"
    assert "MLflow refuses the pair" in finding.finding


def test_a_new_experiment_name_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"doctor-new-{os.getpid()}-{id(monkeypatch)}")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    finding = only(checks(Doctor(), "tracking", "experiment"), "experiment")
    assert (finding.status, finding.finding.endswith("does not exist yet; the first trace creates it")) == ("ok", True)


def test_no_ollama_server_fails_and_the_traced_call_points_to_the_double(
    refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", refused_url)
    doctor = checks(Doctor(), "tracking", "experiment", "ollama", "traced_call")
    server = only(doctor, "Ollama server")
    assert server.status == "fail"
    assert f"no Ollama server answers at {refused_url} (OLLAMA_HOST)" in server.finding
    assert "ollama serve" in server.fix
    call = only(doctor, "traced call")
    assert call.status == "skip"
    assert "mlflow-ollama doctor --double" in call.fix


def test_a_server_without_models_fails_but_with_the_double_only_warns_and_the_call_is_made(
    server: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    assert server.models == []
    doctor = checks(Doctor(), "tracking", "experiment", "ollama", "traced_call")
    assert only(doctor, "Ollama server").status == "fail"
    assert "ollama pull" in only(doctor, "Ollama server").fix
    assert only(doctor, "traced call").status == "skip"
    doctor = checks(Doctor(double=True), "tracking", "experiment", "ollama", "traced_call")
    assert only(doctor, "Ollama server").status == "warn"
    call = only(doctor, "traced call")
    assert call.status == "ok"
    assert "ollama.chat to llama3.2 at the loopback double recorded as tr-" in call.finding


def test_the_loaded_models_their_context_and_where_they_run(ollama_host: OllamaDouble) -> None:
    import ollama

    ollama.Client(host=ollama_host.url).chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    ollama.Client(host=ollama_host.url).chat(model="qwen3", messages=[], options={"num_ctx": 8192})
    loaded = only(checks(Doctor(), "ollama"), "loaded models")
    assert (loaded.status, loaded.fix) == ("ok", "")
    assert loaded.finding == "llama3.2:latest (context 4096, 100% GPU); qwen3:latest (context 8192, 100% GPU)"


@pytest.mark.parametrize(("fraction", "where"), [(0.5, "50%/50% CPU/GPU"), (0.0, "100% CPU")])
def test_a_model_on_the_cpu_is_warned_about(fraction: float, where: str, ollama_host: OllamaDouble) -> None:
    import ollama

    ollama_host.gpu_fraction = fraction
    ollama.Client(host=ollama_host.url).chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    doctor = checks(Doctor(), "ollama")
    loaded = only(doctor, "loaded models")
    assert loaded.status == "warn"
    assert loaded.finding.startswith(f"llama3.2:latest (context 4096, {where}). Running on the CPU")
    assert "ollama stop" in loaded.fix
    assert only(doctor, "Ollama server").status == "ok"


def test_a_server_that_does_not_say_what_is_loaded(ollama_host: OllamaDouble) -> None:
    ollama_host.errors["/api/ps"] = 500
    ollama_host.errors["/api/version"] = 404
    doctor = checks(Doctor(), "ollama")
    assert only(doctor, "loaded models").status == "skip"
    assert "(Ollama" not in only(doctor, "Ollama server").finding
    assert only(doctor, "Ollama server").status == "ok"


@pytest.mark.parametrize(
    ("size", "size_vram", "where"),
    [
        (1000, 1000, "100% GPU"),
        (1000, 0, "100% CPU"),
        (1000, 520, "48%/52% CPU/GPU"),  # as ollama ps prints a split
        (1000, None, None),
        (0, 0, None),
        (1000, 1001, None),
    ],
)
def test_where_a_model_runs(size: object, size_vram: object, where: str | None) -> None:
    assert processor(size, size_vram) == where


def test_an_embedding_only_model_is_called_with_embed(ollama_host: OllamaDouble) -> None:
    ollama_host.enqueue(Failure('"all-minilm" does not support chat', status=400))
    call = only(checks(Doctor(model="all-minilm"), "tracking", "experiment", "ollama", "traced_call"), "traced call")
    assert call.status == "ok", call.finding
    assert call.finding.startswith("ollama.embed to all-minilm at http://127.0.0.1:")


def test_a_model_the_server_lacks_fails_with_what_it_said(ollama_host: OllamaDouble) -> None:
    call = only(checks(Doctor(model="missing-model"), "tracking", "experiment", "ollama", "traced_call"), "traced call")
    assert call.status == "fail"
    assert 'model "missing-model" not found' in call.finding
    assert call.fix == "use --model NAME"


def test_a_finding_renders_its_fix_on_its_own_line() -> None:
    assert Finding("x", "fail", "broken", "mend it").render() == "[FAIL] x: broken\n       fix: mend it"
    assert Finding("x", "ok", "fine").render() == "[ok]   x: fine"
