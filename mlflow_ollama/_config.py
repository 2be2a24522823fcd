"""Runtime switches: what ``autolog()`` set, and the environment variables read on every call.

It also owns the plugin's logger and ``warn()``, whose level is one of these switches (``silent``):
this module imports nothing of the package's, so everything else may import it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTOLOG_ENV",
    "LOG_CONTENT_ENV",
    "LOAD_THRESHOLD_ENV",
    "LOG_EMBEDDINGS_ENV",
    "MODEL_DETAILS_ENV",
    "SILENT_ENV",
    "STRICT_ENV",
    "Settings",
    "content_enabled",
    "details_enabled",
    "env_flag",
    "load_threshold_ns",
    "meaning",
    "settings",
    "strict_mode",
    "switched_off",
    "tracing_enabled",
    "logger",
    "warn",
]

AUTOLOG_ENV = "MLFLOW_OLLAMA_AUTOLOG"
"""Read on every call: ``false``, ``0``, ``no``, ``off`` (any case, surrounding spaces ignored) send
the call straight to the SDK, untraced (``%env`` in Jupyter switches it live); ``true``, ``1``,
``yes``, ``on`` or unset trace it. Any other value logs one warning and tracing stays on. It only
matters after ``autolog()``: it cannot turn tracing on by itself."""

LOG_CONTENT_ENV = "MLFLOW_OLLAMA_LOG_CONTENT"
"""Read on every call: ``false`` (``0``, ``no``, ``off``) keeps prompts, messages, responses, thinking,
tool-call arguments and embedding input out of traces, and images are only summarised by size and
type; model, token counts, durations, tool names and errors stay. Same as
``autolog(log_content=False)``; content is recorded only when both allow it. See
[privacy](privacy.md)."""

LOG_EMBEDDINGS_ENV = "MLFLOW_OLLAMA_LOG_EMBEDDINGS"
"""``true`` is ``autolog(log_embeddings=True)`` where autolog is switched on for you:
[``mlflow-ollama run``](cli.md) (its ``--log-embeddings`` flag sets it) and
``%load_ext mlflow_ollama``. Read once, when that happens."""

SILENT_ENV = "MLFLOW_OLLAMA_SILENT"
"""``true`` is ``autolog(silent=True)`` where autolog is switched on for you
([``mlflow-ollama run``](cli.md), ``%load_ext mlflow_ollama``). Read once, when that happens."""

LOAD_THRESHOLD_ENV = "MLFLOW_OLLAMA_LOAD_THRESHOLD_MS"
"""Milliseconds (default 250) of ``load_duration`` from which a call counts as having waited for a
model load (``ollama.model_load``); read on every call. See [why was this call slow](signals.md)."""

DEFAULT_LOAD_THRESHOLD_MS = 250.0

MODEL_DETAILS_ENV = "MLFLOW_OLLAMA_MODEL_DETAILS"
"""Read on every call: ``true`` (``1``, ``yes``, ``on``) records each model's family, size,
quantization, trained context length, digest and GPU share (``ollama.model.*``), looked up from
the server's ``/api/show`` and ``/api/ps`` and cached. Off by default; on when it or
``autolog(model_details=True)`` says so ([``mlflow-ollama run``](cli.md)'s ``--model-details``
sets it). See [model details](signals.md#model-details-opt-in)."""

STRICT_ENV = "MLFLOW_OLLAMA_STRICT"
"""``true``, ``1``, ``yes`` or ``on`` make a failure inside the plugin raise instead of being
logged. For this project's own tests; never switched on by merely running under pytest."""

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

    log_content: bool = True
    """``autolog(log_content=False)``: no prompt, message or response text in traces."""

    model_details: bool = False
    """``autolog(model_details=True)``: look up and record the model's details (``_model_details``)."""


settings = Settings()

logger = logging.getLogger("mlflow_ollama")


def warn(message: str) -> None:
    """Log one of the plugin's own warnings, at debug level when ``autolog(silent=True)``."""
    logger.log(logging.DEBUG if settings.silent else logging.WARNING, message)


# The meaning of each switch's raw values seen so far, keyed by the raw value itself, so the
# per-call cost is one dict lookup for the value and one for its meaning. Invalid values count as
# on and are warned about once.
_meanings: dict[str, dict[object, bool]] = {}


def _parse(name: str, raw: str, what: str) -> bool:
    value = raw.strip().lower()
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    warn(f"Ignoring {name}={raw!r}: accepted values are {ACCEPTED}. {what} stays on.")
    return True


_ENVIRON = os.environ
# The mapping behind os.environ (bytes to bytes on POSIX) and the keys as it stores them. Reading
# it directly costs ~0.05 µs, against ~0.35 µs for os.environ.get(), which encodes the key and
# decodes the value on every call. It is the mapping os.environ itself reads and writes, so a
# change is seen at the next call; if os.environ is replaced (or has no such mapping), the
# current one is read the plain way.
_RAW_DATA: dict[Any, Any] | None = getattr(_ENVIRON, "_data", None)
_FAST = _RAW_DATA is not None
_DATA: dict[Any, Any] = _RAW_DATA if _RAW_DATA is not None else {}  # never read unless _FAST
_encode_key = getattr(_ENVIRON, "encodekey", lambda name: name)
_AUTOLOG_KEY = _encode_key(AUTOLOG_ENV)
_LOG_CONTENT_KEY = _encode_key(LOG_CONTENT_ENV)
_MODEL_DETAILS_KEY = _encode_key(MODEL_DETAILS_ENV)
_LOAD_THRESHOLD_KEY = _encode_key(LOAD_THRESHOLD_ENV)
_AUTOLOG_MEANINGS = _meanings.setdefault(AUTOLOG_ENV, {})


def _raw(name: str, key: object) -> object:
    return _DATA.get(key) if _FAST and os.environ is _ENVIRON else os.environ.get(name)


def _meaning(name: str, raw: object, what: str) -> bool:
    known = _meanings.setdefault(name, {})
    cached = known.get(raw)
    if cached is None:
        text = os.fsdecode(raw) if isinstance(raw, bytes) else str(raw)  # as os.environ decodes it
        cached = known[raw] = _parse(name, text, what)
    return cached


def tracing_enabled() -> bool:
    """Whether the call being made now should be traced. Runs on every patched call.

    It runs on every lookup and call of a patched method, also when tracing is off, so it is kept
    to a few dictionary lookups (~0.05 µs of work): with wrapt's and the lookup's own cost, this is
    the disabled path.
    """
    if not settings.active:
        return False
    # _raw() and the cache lookup of _meaning(), inlined: two Python calls fewer on every call.
    raw = _DATA.get(_AUTOLOG_KEY) if _FAST and os.environ is _ENVIRON else os.environ.get(AUTOLOG_ENV)
    if raw is None:
        return True
    cached = _AUTOLOG_MEANINGS.get(raw)
    return cached if cached is not None else _meaning(AUTOLOG_ENV, raw, "Tracing")


def content_enabled() -> bool:
    """Whether the call being traced now may record its text (``log_content`` and its variable)."""
    if not settings.log_content:
        return False
    raw = _raw(LOG_CONTENT_ENV, _LOG_CONTENT_KEY)
    return True if raw is None else _meaning(LOG_CONTENT_ENV, raw, "Content logging")


def details_enabled() -> bool:
    """Whether the call being traced now records its model's details: ``autolog(model_details=True)``
    or ``MLFLOW_OLLAMA_MODEL_DETAILS`` true. Off by default, so an invalid value counts as off
    (warned about once): the switch that costs requests is only on when asked for."""
    if settings.model_details:
        return True
    raw = _raw(MODEL_DETAILS_ENV, _MODEL_DETAILS_KEY)
    if raw is None:
        return False
    known = _meanings.setdefault(MODEL_DETAILS_ENV, {})
    cached = known.get(raw)
    if cached is None:
        text = os.fsdecode(raw) if isinstance(raw, bytes) else str(raw)
        value = meaning(text)
        if value is None and text.strip():
            warn(f"Ignoring {MODEL_DETAILS_ENV}={text!r}: accepted values are {ACCEPTED}. Model details stay off.")
        cached = known[raw] = bool(value)
    return cached


def meaning(raw: str | None) -> bool | None:
    """What a switch's value says: True (``true``, ``1``, ``yes``, ``on``), False (``false``, ...), else None."""
    value = (raw or "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def env_flag(name: str, default: bool) -> bool:
    """A boolean environment variable: ``default`` when unset or empty; an invalid value is warned about."""
    raw = os.environ.get(name, "")
    value = meaning(raw)
    if value is None and raw.strip():
        warn(f"Ignoring {name}={raw!r}: accepted values are {ACCEPTED}. Using the default, {str(default).lower()}.")
    return default if value is None else value


def switched_off() -> bool:
    """Whether ``MLFLOW_OLLAMA_AUTOLOG`` says off now (``false``, ``0``, ``no``, ``off``)."""
    return meaning(os.environ.get(AUTOLOG_ENV)) is False


def load_threshold_ns() -> int:
    """``MLFLOW_OLLAMA_LOAD_THRESHOLD_MS`` in nanoseconds (250 ms when unset; an invalid value is warned about)."""
    found = _raw(LOAD_THRESHOLD_ENV, _LOAD_THRESHOLD_KEY)
    known = _thresholds.get(found)  # read on every call: each value is parsed (and warned about) once
    if known is not None:
        return known
    raw = found.decode("utf-8", "replace") if isinstance(found, bytes) else found if isinstance(found, str) else None
    value = _DEFAULT_THRESHOLD_NS
    try:
        if raw is not None and raw.strip() and float(raw) >= 0:
            value = int(float(raw) * 1e6)
        elif raw is not None and raw.strip():
            raise ValueError(raw)
    except ValueError:
        expected = f"expected milliseconds, 0 or more. Using {DEFAULT_LOAD_THRESHOLD_MS:g}."
        warn(f"Ignoring {LOAD_THRESHOLD_ENV}={raw!r}: {expected}")
    if len(_thresholds) < 64:
        _thresholds[found] = value
    return value


_DEFAULT_THRESHOLD_NS = int(DEFAULT_LOAD_THRESHOLD_MS * 1e6)
_thresholds: dict[object, int] = {}


def strict_mode() -> bool:
    """Whether internal failures re-raise. Only the explicit switch turns this on, never pytest."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in _TRUE
