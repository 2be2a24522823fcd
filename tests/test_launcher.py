"""``mlflow-ollama run``: what reaches the command, checked in real child processes.

These children never import ``ollama`` (so neither MLflow nor the plugin): each takes a few tens of
milliseconds. The traced runs, with an MLflow store, are in ``tests/e2e/test_launcher.py``.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlflow_ollama import _config
from mlflow_ollama.activation._launcher import BOOTSTRAP_DIR, child_environment

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="exec and POSIX signals")

LAUNCH = [sys.executable, "-m", "mlflow_ollama", "run"]
PYTHON = sys.executable  # not "python": whichever comes first on PATH
# What a child reports about itself: its arguments, our import hook, and which heavy modules it loaded.
REPORT = textwrap.dedent(
    """
    import json, os, sys
    print(json.dumps({
        "argv": sys.argv[1:],
        "hooked": any(type(f).__name__ == "_OllamaImportHook" for f in sys.meta_path),
        "loaded": sorted(m for m in ("mlflow_ollama", "wrapt", "mlflow", "ollama") if m in sys.modules),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
        "pid": os.getpid(),
    }))
    """
)


def launch(
    *arguments: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m mlflow_ollama run ARGUMENTS``, from tests/ (the repository root holds mlflow_ollama/,
    which ``python -c`` would import from the working directory)."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", _config.AUTOLOG_ENV)}
    return subprocess.run(
        [*LAUNCH, *arguments],
        env={**child_env, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )


def reported(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_arguments_streams_and_exit_code_pass_through() -> None:
    code = "import sys; print(sys.argv[1:], sys.stdin.read()); print('to stderr', file=sys.stderr); sys.exit(7)"
    done = launch(PYTHON, "-c", code, "a", "b c", "--help", "--", stdin="piped in")
    assert done.returncode == 7
    assert done.stdout == "['a', 'b c', '--help', '--'] piped in\n"
    assert done.stderr == "to stderr\n"


def test_the_command_replaces_the_launcher_so_signals_reach_it() -> None:
    code = "import os, sys, time; print(os.getpid(), flush=True); time.sleep(60)"
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with subprocess.Popen([*LAUNCH, PYTHON, "-c", code], stdout=subprocess.PIPE, text=True, env=child_env) as proc:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid  # exec: the same process, not a child
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM


def test_a_non_python_command_runs_as_it_would() -> None:
    done = launch("sh", "-c", 'printf "%s|%s" "$1" "$PYTHONPATH"; exit 4', "sh", "first arg")
    assert done.returncode == 4
    argument, pythonpath = done.stdout.split("|")
    assert argument == "first arg"
    assert pythonpath == BOOTSTRAP_DIR


def test_a_missing_command_exits_127_and_says_so() -> None:
    done = launch("no-such-command-mlflow-ollama", "x")
    assert done.returncode == 127
    assert "command not found: no-such-command-mlflow-ollama" in done.stderr


def test_a_command_that_cannot_run_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    done = launch(str(script))
    assert done.returncode == 126
    assert "cannot run" in done.stderr


def test_every_python_process_gets_the_hook_and_nothing_heavy_is_imported() -> None:
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {REPORT!r}], check=True)"
    done = launch(PYTHON, "-c", parent)
    child = reported(done)
    assert child["hooked"] is True
    # The bootstrap imports no part of mlflow-ollama, wrapt, MLflow or Ollama: only importing
    # ollama does that.
    assert child["loaded"] == []


def test_the_users_sitecustomize_and_pythonpath_keep_working(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import builtins\nbuiltins.THEIR_SITECUSTOMIZE_RAN = True\n")
    (theirs / "their_module.py").write_text("VALUE = 42\n")
    code = REPORT + "import builtins, their_module; print(builtins.THEIR_SITECUSTOMIZE_RAN, their_module.VALUE)"
    done = launch(PYTHON, "-c", code, env={"PYTHONPATH": str(theirs)})
    assert done.returncode == 0, done.stderr
    *lines, last = done.stdout.strip().splitlines()
    assert last == "True 42"
    child = json.loads(lines[-1])
    assert child["hooked"] is True
    assert child["sitecustomize"] == str(theirs / "sitecustomize.py")
    assert child["pythonpath"] == os.pathsep.join([BOOTSTRAP_DIR, str(theirs)])


def test_a_failing_user_sitecustomize_is_reported_as_python_would_and_tracing_stays_on(tmp_path: Path) -> None:
    # It fails in the command only (THE_CHILD), not in the launcher, which sees the same PYTHONPATH.
    (tmp_path / "sitecustomize.py").write_text(
        "import os\nif os.environ.get('THE_CHILD'):\n    raise RuntimeError('their bug')\n"
    )
    command = f'THE_CHILD=1 exec "{PYTHON}" -c "$1"'
    done = launch("sh", "-c", command, "sh", REPORT, env={"PYTHONPATH": str(tmp_path)})
    assert "Error in sitecustomize" in done.stderr
    assert "RuntimeError: their bug" in done.stderr
    assert reported(done)["hooked"] is True


def test_nested_runs_put_the_bootstrap_on_the_path_once() -> None:
    done = launch(PYTHON, "-m", "mlflow_ollama", "run", PYTHON, "-c", REPORT)
    assert reported(done)["pythonpath"] == BOOTSTRAP_DIR


@pytest.mark.parametrize("how", [("--disable",), ()])
def test_switched_off_no_hook_is_installed(how: tuple[str, ...]) -> None:
    done = launch(*how, PYTHON, "-c", REPORT, env={} if how else {_config.AUTOLOG_ENV: " OFF "})
    assert reported(done)["hooked"] is False


def test_flags_become_the_variables_children_read() -> None:
    names = (
        "MLFLOW_OLLAMA_LOG_CONTENT",
        "MLFLOW_OLLAMA_LOG_EMBEDDINGS",
        "MLFLOW_OLLAMA_SILENT",
        "MLFLOW_OLLAMA_AUTOLOG",
        "MLFLOW_OLLAMA_MODEL_DETAILS",
    )
    code = f"import os; print([os.environ.get(n) for n in {names!r}])"
    done = launch("--no-log-content", "--log-embeddings", "--silent", "--model-details", PYTHON, "-c", code)
    assert done.stdout.strip() == "['false', 'true', 'true', None, 'true']"
    done = launch("--", PYTHON, "-c", code, env={"MLFLOW_OLLAMA_LOG_CONTENT": "false"})
    assert done.stdout.strip() == "['false', None, None, None, None]"  # no flag: the environment as it was


def test_a_python_without_mlflow_ollama_runs_untraced_and_says_so(tmp_path: Path) -> None:
    """Here a stand-in ``ollama`` imports fine and ``mlflow_ollama`` does not, as under another interpreter."""
    (tmp_path / "ollama").mkdir()
    (tmp_path / "ollama" / "__init__.py").write_text("ANSWER = 'unchanged'\n")
    (tmp_path / "mlflow_ollama").mkdir()
    (tmp_path / "mlflow_ollama" / "__init__.py").write_text("raise ImportError('not installed here')\n")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import ollama; print(ollama.ANSWER)"
    done = launch(PYTHON, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "unchanged\n"
    assert "is not traced: mlflow_ollama cannot be imported here" in done.stderr
    assert "not installed here" in done.stderr


def test_child_environment_keeps_the_users_entries_and_adds_no_empty_one() -> None:
    assert child_environment({}, {})["PYTHONPATH"] == BOOTSTRAP_DIR
    assert child_environment({"PYTHONPATH": ""}, {})["PYTHONPATH"] == BOOTSTRAP_DIR  # "" would mean the cwd
    theirs = os.pathsep.join(["rel", "/abs", BOOTSTRAP_DIR])
    assert child_environment({"PYTHONPATH": theirs}, {"X": "1"}) == {
        "PYTHONPATH": os.pathsep.join([BOOTSTRAP_DIR, "rel", "/abs"]),
        "X": "1",
    }


def test_the_bootstraps_off_values_are_the_switchs() -> None:
    """The bootstrap repeats the switch's off values rather than import the package; keep them equal."""
    source = (Path(BOOTSTRAP_DIR) / "sitecustomize.py").read_text()
    [values] = [
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_OFF"
    ]
    candidates = ("false", "0", "no", "off", "true", "1", "yes", "on", "maybe")
    assert set(values) == {v for v in candidates if _config.meaning(v) is False}


def test_the_bootstrap_directory_holds_only_sitecustomize() -> None:
    """Anything else importable there would shadow the user's modules in every process."""
    names = {p.name for p in Path(BOOTSTRAP_DIR).iterdir() if p.name != "__pycache__"}
    assert names == {"sitecustomize.py"}
