"""The command line itself: one program under two names, and clear errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_ollama.activation import cli

SCRIPT = Path(sys.executable).with_name("mlflow-ollama.exe" if os.name == "nt" else "mlflow-ollama")


def run_cli(*arguments: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_ollama", *arguments], capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def test_the_console_script_and_python_m_are_the_same_program() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: is the package installed (pip install -e .)?"
    script = subprocess.run([str(SCRIPT), "run", "--help"], capture_output=True, text=True, timeout=60)
    code, out, _ = run_cli("run", "--help")
    assert script.returncode == code == 0

    def same(text: str, prog: str) -> str:  # the usage line wraps by the program name's length
        return " ".join(text.replace(prog, "PROG").split())

    assert same(script.stdout, "mlflow-ollama") == same(out, "python -m mlflow_ollama")
    assert "--no-log-content" in out


def test_version() -> None:
    code, out, _ = run_cli("--version")
    assert code == 0
    assert out.startswith("mlflow-ollama ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "a command is required: run or doctor"),
        (["run"], "run: a command to run is required"),
        (["run", "--no-log-content"], "run: a command to run is required"),
        (["run", "--bogus", "python"], "unrecognized arguments: --bogus"),
        (["run", "--dis", "python"], "unrecognized arguments: --dis"),  # no abbreviations
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["doctor", "--bogus"], "unrecognized arguments: --bogus"),
        (["doctor", "--model"], "expected one argument"),
    ],
)
def test_bad_input_is_a_usage_error_with_a_reason(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(arguments)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mlflow-ollama")
    assert message in err


def test_options_after_the_command_are_the_commands() -> None:
    parser = cli.build_parser()
    options, command = cli._split_run(["--no-log-content", "python", "app.py", "--disable", "--log-content"])
    assert command == ["python", "app.py", "--disable", "--log-content"]
    assert cli.run_settings(parser.parse_args(["run", *options])) == {"MLFLOW_OLLAMA_LOG_CONTENT": "false"}
    assert cli._split_run(["--silent", "--", "-weird-program", "x"]) == (["--silent"], ["-weird-program", "x"])


def test_each_flag_sets_its_variable_and_no_flag_sets_none() -> None:
    parser = cli.build_parser()
    assert cli.run_settings(parser.parse_args(["run"])) == {}
    flags = ["run", "--log-content", "--no-log-embeddings", "--silent", "--disable"]
    assert cli.run_settings(parser.parse_args(flags)) == {
        "MLFLOW_OLLAMA_LOG_CONTENT": "true",
        "MLFLOW_OLLAMA_LOG_EMBEDDINGS": "false",
        "MLFLOW_OLLAMA_SILENT": "true",
        "MLFLOW_OLLAMA_AUTOLOG": "false",
    }
