"""Runtime switches: what ``autolog()`` set, and the environment variables read on every call."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["AUTOLOG_ENV", "STRICT_ENV", "Settings", "settings", "strict_mode", "tracing_enabled"]

AUTOLOG_ENV = "MLFLOW_OLLAMA_AUTOLOG"
"""``false``/``0``/``no``/``off`` turns tracing off for the next call, live (e.g. ``%env`` in Jupyter)."""

STRICT_ENV = "MLFLOW_OLLAMA_STRICT"
"""``true`` makes internal failures raise instead of being logged. For this project's own tests."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
ACCEPTED = "true, 1, yes, on / false, 0, no, off"


@dataclass
class Settings:
    """Process-wide state that ``autolog()`` and ``revert()`` change."""

    active: bool = False
    """True between ``autolog()`` and ``revert()``; wrappers still installed pass through when False."""

    silent: bool = False
    """``autolog(silent=True)``: the plugin's own warnings go to debug level."""

    log_embeddings: bool = False
    """``autolog(log_embeddings=True)``: record embedding vectors, not just their count and size."""


settings = Settings()

# Parsed values of the environment variable, keyed by its raw text, so the per-call cost is one
# ``os.environ.get`` and one dict lookup. Invalid values map to True and are warned about once.
_parsed: dict[str, bool] = {}


def _parse(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _FALSE:
        result = False
    elif value in _TRUE:
        result = True
    else:
        from mlflow_ollama._safety import warn

        warn(f"Ignoring {AUTOLOG_ENV}={raw!r}: accepted values are {ACCEPTED}. Tracing stays on.")
        result = True
    _parsed[raw] = result
    return result


def tracing_enabled() -> bool:
    """Whether the call being made now should be traced. Runs on every patched call."""
    if not settings.active:
        return False
    raw = os.environ.get(AUTOLOG_ENV)
    if raw is None:
        return True
    cached = _parsed.get(raw)
    return _parse(raw) if cached is None else cached


def strict_mode() -> bool:
    """Whether internal failures re-raise. Only the explicit switch turns this on, never pytest."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in _TRUE
