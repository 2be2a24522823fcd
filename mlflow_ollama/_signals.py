"""Local-model signals: did this call wait for a model load, how full was its context, was its prompt cut.

Pure functions on the JSON-ready request inputs and response outputs our spans record (``_mapping``):
no I/O, no state. Which earlier call explains a load is ``_model_loads``' business; this module
only names the reasons. The attributes are public API, defined exactly in ``docs/signals.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mlflow_ollama._mapping import get_field

__all__ = [
    "FIRST_USE",
    "KEEP_ALIVE_EXPIRED",
    "LOAD_OPTIONS",
    "MODEL_LOAD",
    "MODEL_LOAD_REASON",
    "NUM_CTX",
    "OPTIONS_CHANGED",
    "OTHER_DURATION",
    "PROMPT_TRUNCATED",
    "UNEXPLAINED",
    "USED_FRACTION",
    "context_signals",
    "keep_alive_seconds",
    "load_options",
    "model_key",
    "model_load",
    "other_duration",
    "prompt_truncated",
]

MODEL_LOAD = "ollama.model_load"
MODEL_LOAD_REASON = "ollama.model_load.reason"
NUM_CTX = "ollama.context.num_ctx"
USED_FRACTION = "ollama.context.used_fraction"
PROMPT_TRUNCATED = "ollama.context.prompt_truncated"
OTHER_DURATION = "ollama.other_duration_ns"

FIRST_USE = "first_use"
OPTIONS_CHANGED = "options_changed"
KEEP_ALIVE_EXPIRED = "keep_alive_expired"
UNEXPLAINED = "unexplained"

# The runner options a model is loaded with: any difference from the loaded runner's makes the
# server reload the model (Ollama's server/sched.go needsReload, api/types.go Runner). Sampling
# options (temperature and the like) never do.
LOAD_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def model_key(host: str | None, model: Any) -> tuple[str, str] | None:
    """The server and model a call ran on; ``llama3.2`` and ``llama3.2:latest`` are one model."""
    if not isinstance(model, str) or not model:
        return None
    name = model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"
    return (host or "", name)


def load_options(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The request's load-time options, as given (an option not given is the server's default)."""
    options = inputs.get("options")
    if not isinstance(options, Mapping):
        return {}
    return {name: options[name] for name in LOAD_OPTIONS if options.get(name) is not None}


def keep_alive_seconds(value: Any) -> float | None:
    """How long the server keeps the model after the call: seconds, ``inf`` for a negative value.

    The SDK passes ``keep_alive`` through: a number is seconds, a string a Go duration (``"5m"``,
    ``"1h30m"``, ``"0"``). None when absent or unreadable: the server's default then applies.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        text = text.lstrip("+-")
        if text == "0":
            return 0.0
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sign * sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    else:
        return None
    if math.isnan(seconds):
        return None
    return math.inf if seconds < 0 else seconds


def model_load(response: Any, threshold_ns: int) -> bool | None:
    """Whether the call waited for a model load: ``load_duration`` at or above the threshold; None without one."""
    load = get_field(response, "load_duration")
    return load >= threshold_ns if _count(load) else None


def context_signals(inputs: Mapping[str, Any], response: Any, running_num_ctx: int | None = None) -> dict[str, Any]:
    """The context length the call asked for, and the fraction of it the prompt and the output filled.

    From the request's own ``options.num_ctx``: without it the server's default applies, which
    depends on the server's version, its settings and (from 0.15.5) its GPU memory, so only the
    server can tell it: ``running_num_ctx``, the loaded model's ``/api/ps`` ``context_length``
    (with model details on; ``_model_details``), is used then.
    """
    options = inputs.get("options")
    num_ctx = options.get("num_ctx") if isinstance(options, Mapping) else None
    if not _count(num_ctx) or not num_ctx:
        num_ctx = running_num_ctx
    if not _count(num_ctx) or not num_ctx:
        return {}
    signals: dict[str, Any] = {NUM_CTX: num_ctx}
    prompt, output = get_field(response, "prompt_eval_count"), get_field(response, "eval_count")
    if _count(prompt) and _count(output):
        signals[USED_FRACTION] = round((prompt + output) / num_ctx, 4)
    return signals


def prompt_truncated(method: str, inputs: Mapping[str, Any], response: Any) -> bool | None:
    """Whether the server cut a ``generate`` prompt to fit the context; None where that cannot be told.

    ``context`` (``raw`` false) holds every token of the prompt as rendered, before the runner's cut,
    then the output; ``prompt_eval_count`` counts the prompt tokens read after the cut, plus a
    beginning-of-sequence token where the model has one, and ``eval_count`` counts the output plus
    its end token. So with no cut, ``len(context) - eval_count - prompt_eval_count`` is 0, -1 or
    -2, and a cut of k tokens adds k: positive means cut. A cut of 1 or 2 tokens can read as
    whole. Never for chat (no ``context``), a raw prompt, or a prompt with images (their tokens are
    in ``prompt_eval_count`` but not in ``context``).
    """
    if method != "generate" or inputs.get("raw") or inputs.get("images"):
        return None
    context = get_field(response, "context")
    length = len(context) if isinstance(context, list) else get_field(context, "length") if context else None
    prompt, output = get_field(response, "prompt_eval_count"), get_field(response, "eval_count")
    if not (_count(length) and _count(prompt) and _count(output)):
        return None
    return bool(length - output - prompt > 0)


def other_duration(response: Any) -> int | None:
    """The server's time not spent loading, reading the prompt or generating: mostly queueing for a busy slot.

    ``total_duration - load_duration - prompt_eval_duration - eval_duration``, when all four are known.
    """
    total, load = get_field(response, "total_duration"), get_field(response, "load_duration")
    prompt, output = get_field(response, "prompt_eval_duration"), get_field(response, "eval_duration")
    if not (_count(total) and _count(load) and _count(prompt) and _count(output)):
        return None
    rest: int = total - load - prompt - output
    return rest if rest >= 0 else None


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0  # not a bool, which is an int too
