"""What is installed under us: MLflow's distributions, checked once at ``autolog()`` time.

``mlflow``, ``mlflow-skinny`` and ``mlflow-tracing`` all install into the same ``mlflow/`` folder.
When they are not one version, MLflow's files are a mix of releases (whichever the installer wrote
last), and tracing fails in ways that point nowhere near the cause. A clear warning at startup,
with the command that fixes it, beats traces that silently never arrive. So does one for an MLflow
older than we support (which is also how a broken OpenTelemetry pairing is caught: see
``OLDEST_MLFLOW``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import re

from mlflow_ollama._safety import warn

__all__ = [
    "MLFLOW_DISTRIBUTIONS",
    "OLDEST_MLFLOW",
    "check_installed",
    "installed_versions",
    "mixed_install",
    "problems",
    "too_old",
]

OLDEST_MLFLOW = "3.4.0"
"""The oldest MLflow supported, chosen from evidence (docs/limitations.md#versions):

- from 3.2.0, full ``mlflow`` pins ``mlflow-skinny`` and ``mlflow-tracing`` to its own version and
  the three wheels hold the same bytes wherever they overlap (3.0.x and 3.1.x do not);
- from 3.4.0, MLflow ends spans with today's OpenTelemetry (3.0 to 3.3 fail with
  ``opentelemetry-sdk`` 1.45 or newer: ``'...SpanProcessor' object has no attribute '_shutdown'``).

The same floor is in pyproject.toml (``mlflow-tracing>=``, the ``mlflow`` extra) and in
noxfile.py's oldest set; a test keeps the three in step.
"""

MLFLOW_DISTRIBUTIONS = ("mlflow", "mlflow-skinny", "mlflow-tracing")
"""The distributions that write the ``mlflow/`` package, fullest first."""


def _release(version: str) -> tuple[int, ...]:
    """``"3.3.2"`` -> ``(3, 3, 2)``; ``"3.4.0rc1"`` -> ``(3, 4, 0)``: the leading numbers only."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def installed_versions() -> dict[str, str]:
    """The installed MLflow distributions and their versions, e.g. ``{"mlflow-tracing": "3.17.2"}``."""
    versions = {}
    for name in MLFLOW_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def _described(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def _fix(versions: dict[str, str]) -> str:
    """The command that leaves one consistent MLflow, of the newest supportable version.

    Uninstall first, all of them: upgrading one distribution in place deletes the files its old
    release listed, which the others may own too. Then install the same set of distributions at one
    version: the full ``mlflow`` one if it is supported (the user chose it), else the newest
    installed. Full ``mlflow`` from 3.2 on pins the other two, so naming it is enough.
    """
    full = versions.get("mlflow")
    if full is not None and _release(full) >= _release(OLDEST_MLFLOW):
        target = full
    else:
        target = max(versions.values(), key=_release)
        if _release(target) < _release(OLDEST_MLFLOW):
            target = OLDEST_MLFLOW
    wanted = ["mlflow"] if full is not None else [name for name in versions if name != "mlflow"]
    uninstall = " ".join(versions)
    install = " ".join(f'"{name}=={target}"' for name in wanted)
    return f"python -m pip uninstall -y {uninstall} && python -m pip install {install}"


def mixed_install(versions: dict[str, str]) -> str | None:
    """A warning if the installed MLflow distributions are not all one version, else None."""
    if len(set(versions.values())) <= 1:
        return None
    return (
        f"mlflow-ollama: the installed MLflow distributions are not one version ({_described(versions)}). "
        "They all write the same mlflow/ folder, so MLflow's files are now a mix of releases and tracing may "
        f"fail or lose spans. Fix: {_fix(versions)}"
    )


def too_old(versions: dict[str, str]) -> str | None:
    """A warning if a consistent install is older than ``OLDEST_MLFLOW``, else None."""
    if len(set(versions.values())) != 1:
        return None  # a mixed install gets its own warning, with its own fix
    version = next(iter(versions.values()))
    if _release(version) >= _release(OLDEST_MLFLOW):
        return None
    return (
        f"mlflow-ollama: MLflow {version} is older than the oldest supported release, {OLDEST_MLFLOW} "
        "(MLflow before 3.4 ends no span with opentelemetry-sdk 1.45 or newer, so no trace is stored). "
        f"Fix: {_fix(versions)}"
    )


def problems(versions: dict[str, str]) -> list[str]:
    """Every warning that applies to these installed versions (distribution -> version)."""
    return [message for message in (mixed_install(versions), too_old(versions)) if message]


@functools.cache  # once per process: the installed versions do not change under us
def check_installed() -> None:
    """Warn once about a mixed or too old MLflow install."""
    for message in problems(installed_versions()):
        warn(message)
