"""``mlflow-ollama run``: run a command with tracing on in every Python process it starts.

The command is executed in place of this process (``os.execvpe``), so its arguments, standard
streams, signals and exit code are its own, and a non-Python command simply runs. The only change
is its environment: the bootstrap directory first on ``PYTHONPATH`` (its ``sitecustomize`` switches
autolog on in each Python process that imports ``ollama``, then runs the user's own
``sitecustomize``), and the ``run`` flags as the variables the bootstrap reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BOOTSTRAP_DIR", "child_environment", "execute"]

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "_bootstrap")
"""The directory holding the bootstrap ``sitecustomize.py``, and nothing else importable."""


def child_environment(environ: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the bootstrap first on ``PYTHONPATH`` (once) and ``settings`` applied."""
    env = {**environ, **settings}
    ours = _normalised(BOOTSTRAP_DIR)
    # An empty entry would mean the working directory, so only the user's non-empty entries are
    # kept, as they are; ours appears once however often runs are nested.
    theirs = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and _normalised(p) != ours]
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *theirs])
    return env


def _normalised(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def execute(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command`` with ``env``: in place of this process on POSIX; returns only on failure.

    The return value is an exit status: 127 when the command is not found, 126 when it cannot be
    executed, as a shell reports them. On Windows, which has no ``exec``, the command runs as a
    child and its exit code is returned.
    """
    try:
        if sys.platform == "win32":  # pragma: no cover - no exec on Windows
            return subprocess.call(list(command), env=dict(env))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvpe(command[0], list(command), dict(env))
    except FileNotFoundError:
        print(f"mlflow-ollama run: command not found: {command[0]}", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"mlflow-ollama run: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 126
