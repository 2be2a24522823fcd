"""Why a model loaded: this process's memory of its earlier calls to each model on each server.

Ollama's scheduler loads a model when it is not loaded, when its ``keep_alive`` ran out after the
last call, or when a load-time option (``num_ctx`` and the others in ``_signals.LOAD_OPTIONS``)
differs from the loaded runner's. A call's reply says how long it waited (``load_duration``), not
why; the calls this process made before it can tell. What happened outside this process (another
app's calls, an eviction, a restart) cannot be seen: such a load is ``unexplained``.

State is one small record per server and model, at most ``_MAX_MODELS`` of them (the least
recently used go first), with its running calls counted by their options, behind one lock: safe
across threads and asyncio tasks. Noting a call is O(1), however many run at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from mlflow_ollama import _signals as s

__all__ = ["DEFAULT_KEEP_ALIVE_S", "Visit", "history"]

DEFAULT_KEEP_ALIVE_S = 300.0
"""The server's ``keep_alive`` when a request gives none: 5 minutes, unless the server was started
with ``OLLAMA_KEEP_ALIVE``, which a client cannot see."""

_MAX_MODELS = 256
_MAX_RUNNING = 256  # distinct option sets running at once, per model: beyond, they are forgotten


@dataclass(slots=True)
class _Model:
    options: dict[str, Any]
    """The load-time options of the latest call begun (absent ones are the server's defaults)."""
    ended: bool = False
    """Whether any call has ended: a model some call is still waiting for may be loading for it."""
    ended_at: float = 0.0
    keep_alive_s: float = DEFAULT_KEEP_ALIVE_S
    """The ``keep_alive`` of the call that ended last, in seconds (``inf``: kept loaded)."""
    running: dict[Hashable, int] = field(default_factory=dict)
    """The calls begun and not yet ended, counted by their load-time options."""
    mixed: int = 0
    """How many times a call began while calls with other load-time options were running."""

    def explain(self, options: dict[str, Any], now: float) -> str:
        """Why a call beginning now with these options would find the model loading, if it does."""
        if self.options != options:
            return s.OPTIONS_CHANGED
        if not self.ended:
            return s.FIRST_USE
        if not self.running and now - self.ended_at > self.keep_alive_s:
            return s.KEEP_ALIVE_EXPIRED
        return s.UNEXPLAINED


@dataclass(slots=True)
class Visit:
    """One call to a model: what it asked for, and what its model's earlier calls explain; ``reason()``."""

    model: _Model
    options: Hashable
    """The call's load-time options, in a form that counts."""
    keep_alive_s: float | None
    explained: str
    """The reason the calls before this one give, decided when it began."""
    mixed: int
    """The model's ``mixed`` count just before this call began."""

    def reason(self) -> str:
        """Why this call's model loaded, given that it did.

        ``options_changed`` also when, while this call ran, calls with other load-time options ran
        too: the server serves concurrent calls in an order of its own, so either may have reloaded
        the model. (Two option sets running at once always include one that differs from this call's.)
        """
        return s.OPTIONS_CHANGED if self.model.mixed != self.mixed else self.explained


_NO_OPTIONS: Hashable = frozenset()


def _counted(options: dict[str, Any]) -> Hashable:
    if not options:
        return _NO_OPTIONS
    try:
        return frozenset(options.items())
    except TypeError:  # an unhashable value where a number belongs: compared as written
        return repr(sorted(options.items(), key=str))


class _History:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], _Model] = OrderedDict()

    def begin(self, key: tuple[str, str], options: dict[str, Any], keep_alive: Any) -> Visit:
        """Note that a call to this model begins; the returned visit remembers what came before."""
        now = time.monotonic()
        counted = _counted(options)
        keep_alive_s = s.keep_alive_seconds(keep_alive)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                explained = s.FIRST_USE
                model = self._models[key] = _Model(options=options)
                while len(self._models) > _MAX_MODELS:
                    self._models.popitem(last=False)
            else:
                explained = model.explain(options, now)
                self._models.move_to_end(key)
                model.options = options
            running = model.running
            if len(running) >= _MAX_RUNNING and counted not in running:
                running.clear()  # calls whose spans never ended (streams left open): forgotten
            running[counted] = running.get(counted, 0) + 1
            seen = model.mixed
            if len(running) > 1:  # other options run now: this call's own beginning counts for it too
                model.mixed += 1
            return Visit(model, counted, keep_alive_s, explained, seen)

    def end(self, visit: Visit) -> None:
        """Note that the call ended, with or without an answer: the model's keep-alive runs from now."""
        with self._lock:
            model, running = visit.model, visit.model.running
            count = running.pop(visit.options, 0)
            if count > 1:
                running[visit.options] = count - 1
            model.ended = True
            model.ended_at = time.monotonic()
            model.keep_alive_s = DEFAULT_KEEP_ALIVE_S if visit.keep_alive_s is None else visit.keep_alive_s

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


history = _History()
"""The process's one memory of its calls (a server's scheduler is one per server, not per client)."""
