"""Opt-in model details: what model a call ran on, and where, from the server's ``/api/show`` and ``/api/ps``.

Off by default (``autolog(model_details=True)`` or ``MLFLOW_OLLAMA_MODEL_DETAILS=true``): when off,
no request is ever made. When on, each inference span gets the model's family, parameter size,
quantization and trained context length (``/api/show``, which reads the model file: cached for
10 minutes), and the loaded model's digest, its share in GPU memory and its running context length
(``/api/ps``, from the server's memory: re-read after a call that loaded the model, or when older
than 30 seconds). The lookups are made at the span's end, to the call's own server with the
client's own headers (never recorded), with a 1 second timeout. A failed lookup is remembered for
60 seconds and its attributes are absent: a server error is "unknown", never a failed call.

The pure parts (``show_attributes``, ``ps_entry``, ``ps_attributes``, ``running_num_ctx``) turn the
server's JSON into attributes; ``details`` holds the state: one record per server and model, at
most ``_MAX_ENTRIES`` of them (least recently used go first), behind one lock, each with its own
lock so that concurrent calls to one model make one lookup. The attributes are public API,
defined exactly in ``docs/signals.md``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow_ollama._config import logger
from mlflow_ollama._safety import report

__all__ = [
    "CONTEXT_LENGTH",
    "DIGEST",
    "FAMILY",
    "GPU_FRACTION",
    "PARAMETER_SIZE",
    "QUANTIZATION",
    "Lookup",
    "details",
    "ps_attributes",
    "ps_entry",
    "running_num_ctx",
    "show_attributes",
]

FAMILY = "ollama.model.family"
PARAMETER_SIZE = "ollama.model.parameter_size"
QUANTIZATION = "ollama.model.quantization"
CONTEXT_LENGTH = "ollama.model.context_length"
DIGEST = "ollama.model.digest"
GPU_FRACTION = "ollama.model.gpu_fraction"

TIMEOUT_S = 1.0
SHOW_TTL_S = 600.0
PS_TTL_S = 30.0
FAILURE_TTL_S = 60.0
_MAX_ENTRIES = 256


# --- pure: the server's JSON into attributes ------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def show_attributes(show: Any) -> dict[str, Any]:
    """Family, parameter size, quantization and trained context length from an ``/api/show`` answer."""
    if not isinstance(show, Mapping):
        return {}
    found: dict[str, Any] = {}
    info = show.get("details")
    if isinstance(info, Mapping):
        for name, key in ((FAMILY, "family"), (PARAMETER_SIZE, "parameter_size"), (QUANTIZATION, "quantization_level")):
            value = _text(info.get(key))
            if value is not None:
                found[name] = value
    model_info = show.get("model_info")
    if isinstance(model_info, Mapping):
        architecture = _text(model_info.get("general.architecture"))
        length = _count(model_info.get(f"{architecture}.context_length")) if architecture else None
        if length:
            found[CONTEXT_LENGTH] = length
    return found


def _name(model: Any) -> str | None:
    """``llama3.2`` and ``llama3.2:latest`` are one model."""
    if not isinstance(model, str) or not model:
        return None
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def ps_entry(ps: Any, model: str) -> dict[str, Any] | None:
    """The loaded model ``model`` in an ``/api/ps`` answer; None when it is not loaded."""
    models = ps.get("models") if isinstance(ps, Mapping) else None
    if not isinstance(models, list):
        return None
    wanted = _name(model)
    for entry in models:
        if isinstance(entry, Mapping) and wanted in (_name(entry.get("name")), _name(entry.get("model"))):
            return dict(entry)
    return None


def ps_attributes(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """The loaded model's digest and the share of it in GPU memory (``size_vram / size``, 0 = CPU only)."""
    if not entry:
        return {}
    found: dict[str, Any] = {}
    digest = _text(entry.get("digest"))
    if digest is not None:
        found[DIGEST] = digest
    size, vram = _count(entry.get("size")), _count(entry.get("size_vram"))
    if size and vram is not None and vram <= size:
        found[GPU_FRACTION] = round(vram / size, 4)
    return found


def running_num_ctx(entry: Mapping[str, Any] | None) -> int | None:
    """The context length the model runs with (``/api/ps`` ``context_length``, server 0.10+)."""
    value = _count(entry.get("context_length")) if entry else None
    return value or None


# --- the lookups and their cache ------------------------------------------------------------------


@dataclass
class _Entry:
    """What is known of one model on one server, and since when (``time.monotonic()``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while this model's lookups run: concurrent calls wait for one lookup, not make eight."""
    show: dict[str, Any] | None = None
    show_at: float = -1e18
    show_failed: bool = False
    ps: dict[str, Any] | None = None
    """The model's ``/api/ps`` entry; None when it was not loaded, or unknown."""
    ps_at: float = -1e18
    ps_failed: bool = False


@dataclass(frozen=True)
class Lookup:
    """One call's way to its model's details: the server's key, its base URL and the client's headers."""

    key: tuple[str, str]
    """``(server, model)``: ``ollama.host`` and the model with its tag."""
    base_url: Any
    """The client's base URL (an ``httpx.URL`` or a string), turned into text only when a lookup is made."""
    headers: Any
    """The client's headers (authentication included), read only when a lookup is made: sent, never recorded."""

    @classmethod
    def of(cls, instance: Any, host: str | None, model: Any) -> Lookup | None:
        """The lookup for a call through ``instance`` (an ollama ``Client`` or ``AsyncClient``)."""
        name = _name(model)
        http = getattr(instance, "_client", None)
        base_url = getattr(http, "base_url", None)
        if name is None or not host or base_url is None:
            return None
        return cls((host, name), base_url, getattr(http, "headers", None))


class _Details:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._http: Any = None
        self._pid = 0

    def _entry(self, key: tuple[str, str]) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > _MAX_ENTRIES:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return entry

    def attributes(self, lookup: Lookup, loaded: bool) -> tuple[dict[str, Any], int | None]:
        """The model's detail attributes and its running ``num_ctx``; looked up when not cached.

        ``loaded``: the call waited for a model load, so what ``/api/ps`` said before is stale.
        Never raises for the server's sake: what cannot be looked up is absent.
        """
        entry = self._entry(lookup.key)
        with entry.lock:
            now = time.monotonic()
            if now - entry.show_at > (FAILURE_TTL_S if entry.show_failed else SHOW_TTL_S):
                answer = self._get(lookup, "POST", "/api/show")
                entry.show_at, entry.show_failed = time.monotonic(), answer is None
                entry.show = show_attributes(answer) if answer is not None else None
            age = now - entry.ps_at
            # After a load the listing is stale: the model may have moved (GPU, CPU) or changed num_ctx.
            fresh = not (loaded or age > PS_TTL_S)
            if not (age <= FAILURE_TTL_S if entry.ps_failed else fresh):
                answer = self._get(lookup, "GET", "/api/ps")
                entry.ps_at, entry.ps_failed = time.monotonic(), answer is None
                entry.ps = ps_entry(answer, lookup.key[1]) if answer is not None else None
            found = {**(entry.show or {}), **ps_attributes(entry.ps)}
            return found, running_num_ctx(entry.ps)

    def _client(self) -> Any:
        import httpx  # the ollama SDK's own dependency; imported only once details are on

        with self._lock:
            if self._http is None or self._pid != os.getpid():  # a forked child gets a pool of its own
                self._http = httpx.Client(timeout=TIMEOUT_S)
                self._pid = os.getpid()
            return self._http

    def _get(self, lookup: Lookup, method: str, path: str) -> Any:
        """The server's JSON answer, or None when it gave none (an error status, a timeout, no server)."""
        import httpx

        try:
            body = {"model": lookup.key[1]} if method == "POST" else None
            url = str(lookup.base_url).rstrip("/") + path
            response = self._client().request(method, url, json=body, headers=lookup.headers)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Its type and status only: an httpx message quotes the URL, userinfo included.
            status = getattr(getattr(exc, "response", None), "status_code", None)
            what = type(exc).__name__ + (f" {status}" if status is not None else "")
            logger.debug("mlflow-ollama could not look up %s of %s on %s: %s", path, lookup.key[1], lookup.key[0], what)
            return None
        except Exception as exc:
            report("look up the model's details", exc)
            return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


details = _Details()
"""The process's one cache of model details (per server and model)."""
