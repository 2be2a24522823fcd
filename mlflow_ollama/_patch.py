"""Lifecycle: the table of patch targets, and installing and removing the wrappers it names.

``install()`` and ``uninstall()`` both read ``TARGETS``, so what is patched and what is restored
cannot drift apart.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any, Literal

import wrapt

from mlflow_ollama._config import tracing_enabled
from mlflow_ollama._safety import logger, report, warn

__all__ = [
    "TARGETS",
    "TRACED_METHODS",
    "UNTRACED_METHODS",
    "Target",
    "TracingWrapper",
    "install",
    "install_when_imported",
    "installed",
    "uninstall",
]

Kind = Literal["sync", "async", "fallback-sync", "fallback-async", "semconv"]


@dataclass(frozen=True)
class Target:
    """One attribute to wrap.

    ``module`` is looked up in ``sys.modules``: an ``ollama`` module is never imported by us
    (importing it reads ``OLLAMA_HOST``); an ``mlflow`` one is imported if it exists, MLflow
    being loaded by then anyway.
    """

    module: str
    path: str
    kind: Kind
    method: str = ""
    """The SDK method the target is, for ``sync``/``async``; fallbacks serve them all."""


# ``ollama._client`` is a Client *instance* (the package rebinds the name), so targets name the
# module as it appears in ``sys.modules``. ``ollama.chat`` is a method bound to that instance at
# import time: patching the class does not reach it, so it is a target of its own.
TRACED_METHODS = {
    "chat": "CHAT_MODEL",
    "generate": "LLM",
    "embed": "EMBEDDING",
    "embeddings": "EMBEDDING",
    "systemone": "LLM",  # ollama 0.6.3+: a local model scores questions about a state
}
"""The SDK methods traced, with their span types: those that run a model."""

UNTRACED_METHODS = (
    *("pull", "push", "create", "create_blob", "list", "show", "ps", "delete", "copy"),  # model management
    *("web_search", "web_fetch"),  # web tools: no local model runs
    "close",  # the client's own HTTP connections
)
"""The SDK's other public methods, left untraced by design: they run no model. Every public method
of the SDK's clients is in one of the two (tests/test_surface.py), so a new one is a decision."""

TARGETS: tuple[Target, ...] = (
    *(
        target
        for method in TRACED_METHODS
        for target in (
            Target("ollama._client", f"Client.{method}", "sync", method),
            Target("ollama._client", f"AsyncClient.{method}", "async", method),
            Target("ollama", method, "sync", method),
        )
    ),
    Target("ollama._client", "Client._request", "fallback-sync"),
    Target("ollama._client", "AsyncClient._request", "fallback-async"),
    # MLflow's choice of GenAI semantic-convention converter for OTLP export (MLflow 3.15+): ours
    # for spans of our format. Runs only at export with MLFLOW_ENABLE_OTEL_GENAI_SEMCONV=true.
    Target("mlflow.tracing.export.genai_semconv.translator", "_get_converter", "semconv"),
)


class TracingWrapper(wrapt.FunctionWrapper):  # type: ignore[type-arg]  # generic in wrapt 2 only
    """A ``wrapt.FunctionWrapper`` that, while tracing is off, binds straight to the original.

    Looking a wrapped method up on an instance (``client.chat``, and the SDK's own
    ``self._request``) normally makes wrapt build a bound wrapper object, which then asks
    ``enabled`` at call time; on the disabled path that binding is most of the cost (~0.5 µs per
    layer, two layers per call). Here, when tracing is off at lookup time, the lookup returns the
    original bound method itself, so the call runs at the SDK's own speed.

    A method looked up while tracing was off and called after it came back on is still traced:
    it passes ``Client._request``, whose wrapper traces calls that reached an SDK method
    unwrapped, as it does an early-bound ``from ollama import chat`` (with that path's limits,
    see ``request_fallback``). Wrappers bound while tracing was on ask ``enabled`` again at call
    time, as before. Anything wrapt would not bind (no ``__get__``, a class, a mock put in place
    of the method) is left to wrapt.
    """

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is not None and not tracing_enabled():
            wrapped = self.__wrapped__
            bind = getattr(type(wrapped), "__get__", None)
            if bind is not None and not isinstance(wrapped, type):
                return bind(wrapped, instance, owner)
        return super().__get__(instance, owner)


@dataclass(frozen=True)
class _Installed:
    parent: Any
    attribute: str
    original: Any
    wrapper: Any


_installed: list[_Installed] = []
_lock = threading.Lock()
_hook_registered = False


def installed() -> bool:
    """Whether the wrappers are in place now."""
    return bool(_installed)


def _endpoint(method: str, function: Callable[..., Any]) -> Any:
    from mlflow_ollama._spans import Endpoint

    parameters = list(inspect.signature(function).parameters.values())
    if parameters and parameters[0].name == "self":
        parameters = parameters[1:]
    positional = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
    defaults = tuple((p.name, p.default) for p in parameters if p.default is not p.empty)
    return Endpoint(method=method, span_type=TRACED_METHODS[method], positional=positional, defaults=defaults)


def _resolve(target: Target) -> tuple[Target, Any, str, Any] | None:
    # Feature detection, not version sniffing: a target this ollama or MLflow release lacks is skipped.
    try:
        if target.module.startswith("mlflow."):
            importlib.import_module(target.module)
        return (target, *wrapt.resolve_path(sys.modules[target.module], target.path))
    except (AttributeError, KeyError, ImportError):
        logger.debug("mlflow-ollama: %s.%s not found; not patched", target.module, target.path)
        return None


def install() -> None:
    """Wrap every target. Does nothing if already installed or if ``ollama`` is not imported."""
    with _lock:
        if _installed or "ollama" not in sys.modules:
            return
        try:
            # Imports MLflow. Here, not at the top: this may run inside the user's `import ollama`
            # (the post-import hook), and a broken MLflow (a mixed install, say) must not break it.
            from mlflow_ollama import _wrappers
        except Exception as exc:
            report("import MLflow, so Ollama calls are not traced", exc)
            return
        resolved = [r for r in map(_resolve, TARGETS) if r is not None]
        # Parameter names come from the first target of each method, Client's own function: a
        # module-level ``ollama.chat`` replaced by a shim must not decide them.
        endpoints: dict[str, Any] = {}
        for t, _, _, original in resolved:
            if t.method and t.method not in endpoints:
                endpoints[t.method] = _endpoint(t.method, original)
        # The code objects of the original SDK methods, for the ``_request`` fallback.
        callers: dict[CodeType, Any] = {}
        for t, _, _, original in resolved:
            code = getattr(getattr(original, "__func__", original), "__code__", None)
            if t.method and code is not None:
                callers[code] = endpoints[t.method]
        factories: dict[Kind, Callable[[Target], Any]] = {
            "sync": lambda t: _wrappers.sync_method(endpoints[t.method]),
            "async": lambda t: _wrappers.async_method(endpoints[t.method]),
            "fallback-sync": lambda t: _wrappers.request_fallback(callers, is_async=False),
            "fallback-async": lambda t: _wrappers.request_fallback(callers, is_async=True),
            "semconv": lambda t: _wrappers.semconv_converter,
        }
        for target, parent, attribute, original in resolved:
            # The converter serves spans already made, so the tracing switch does not apply to it.
            enabled = None if target.kind == "semconv" else tracing_enabled
            wrapper = TracingWrapper(original, factories[target.kind](target), enabled=enabled)
            setattr(parent, attribute, wrapper)
            _installed.append(_Installed(parent, attribute, original, wrapper))


def uninstall() -> None:
    """Put back the original objects, newest first. Does nothing if nothing is installed."""
    with _lock:
        while _installed:
            entry = _installed.pop()
            current = vars(entry.parent).get(entry.attribute)
            if current is entry.wrapper:
                setattr(entry.parent, entry.attribute, entry.original)
            else:
                # Someone wrapped on top of us; removing ours would remove theirs too. Our wrapper
                # stays, inert: it passes calls straight through once autolog is off.
                warn(f"mlflow-ollama could not restore {entry.attribute}: it was replaced after autolog().")


def _on_ollama_imported(_module: Any) -> None:
    from mlflow_ollama._config import settings

    if settings.active:
        install()


def install_when_imported() -> None:
    """Install now if ``ollama`` is imported, else when it is (without importing it ourselves)."""
    global _hook_registered
    if "ollama" in sys.modules:
        install()
    elif not _hook_registered:
        _hook_registered = True
        wrapt.register_post_import_hook(_on_ollama_imported, "ollama")
