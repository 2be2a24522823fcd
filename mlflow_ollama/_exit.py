"""The flush of MLflow's trace export when a process leaves, bounded in time.

MLflow exports traces in the background and, at exit, waits for every one of them with no limit:
against a tracking server that never answers, a process can take minutes per trace queued to
leave. ``flush_bounded`` exports what is left but gives up after a timeout, drops the rest with one
warning saying how much, and lets MLflow's own exit flush return at once.

Worker processes always leave this way (``_workers``: multiprocessing and Celery workers, forks,
SIGTERM). The main process does too when ``MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT`` is set: then
``install`` has the flush run at interpreter exit before any ``atexit`` callback, while MLflow's
upload threads still work in parallel. Unset, the main process's exit is MLflow's own; only on
Python 3.12.0 and 3.12.1, where no thread starts at exit and MLflow's export cannot run, a warning
says how many traces are lost.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from mlflow_ollama._safety import logger, report, warn

__all__ = [
    "EXIT_FLUSH_TIMEOUT_ENV",
    "configured_timeout",
    "exit_flush_timeout",
    "export_queues",
    "flush_bounded",
    "install",
    "tracer_provider",
    "unexported",
]

EXIT_FLUSH_TIMEOUT_ENV = "MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT"
"""Seconds a leaving process gives MLflow's trace export; what is still unexported then is dropped,
with one warning saying how much. A worker (of multiprocessing or ProcessPoolExecutor, or a fork of
a process that called `autolog()`: gunicorn `--preload` and Celery prefork workers) always bounds
its exit, by 10 s when this is unset. Any other process bounds its exit only when this is set;
unset, it waits for every trace, as MLflow does. Read when the process leaves. See
[worker processes](workers.md) and [an unreachable server](remote.md#unreachable-tracking-server)."""

_DEFAULT_TIMEOUT = 10.0  # worker processes, when the variable is unset
_installed = False


def install() -> None:
    """Have the main process's exit flush run bounded when the variable asks for it. Idempotent.

    Called by ``autolog()``. Registered with threading's exit hooks, which run before ``atexit``
    callbacks (MLflow's unbounded flush among them, whenever it was registered) and before the
    thread pools are shut down, so the uploads still run in parallel.
    """
    global _installed
    register = getattr(threading, "_register_atexit", None)  # CPython 3.9+; concurrent.futures uses it
    if _installed or register is None:
        return
    try:
        register(_flush_main_at_exit)
        _installed = True
    except RuntimeError:  # already shutting down
        pass


def _flush_main_at_exit() -> None:
    try:
        timeout = configured_timeout()
        if timeout is not None:
            flush_bounded(timeout, "exit")
            return
        # Unset: MLflow's own exit flush. Only where it cannot work at all, say so.
        try:
            threading.Thread(target=lambda: None, name="mlflow-ollama-exit-probe", daemon=True).start()
        except RuntimeError:
            _warn_no_threads("exit")
    except Exception as exc:
        report("flush MLflow's trace export at exit", exc)


def _warn_no_threads(why: str) -> None:
    # Python 3.12.0 and 3.12.1 start no thread once the interpreter exits. An MLflow export queue
    # whose threads started during the run still exports at exit; one that never started cannot,
    # so what waits for it is lost, and MLflow says nothing. (OpenTelemetry's batch processor has
    # its thread from the start.)
    if not any(getattr(queue, "_is_active", True) is False for queue in export_queues()):
        return
    if left := unexported():
        warn(
            f"mlflow-ollama: process {os.getpid()} ({why}) cannot export its last {left} trace(s): "
            f"Python {sys.version.split()[0]} starts no thread at exit, and MLflow exports in threads. "
            "Call mlflow.flush_trace_async_logging() before the program ends, or use Python 3.12.2 or later."
        )


def configured_timeout() -> float | None:
    """``MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT`` in seconds, None when unset; an invalid value is warned about."""
    raw = os.environ.get(EXIT_FLUSH_TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
        if value >= 0:
            return value
    except ValueError:
        pass
    warn(f"Ignoring {EXIT_FLUSH_TIMEOUT_ENV}={raw!r}: expected seconds, 0 or more. Using {_DEFAULT_TIMEOUT:g}.")
    return _DEFAULT_TIMEOUT


def exit_flush_timeout() -> float:
    """What a worker process gives its export at exit: the variable's seconds, 10 when unset."""
    timeout = configured_timeout()
    return _DEFAULT_TIMEOUT if timeout is None else timeout


def flush_bounded(timeout: float, why: str) -> bool:
    """Export what MLflow still holds, waiting at most ``timeout`` seconds; True when all of it went.

    On a timeout, MLflow's queues are marked stopped so that its own ``atexit`` flush returns at
    once, and one warning says what was dropped.
    """
    if "mlflow" not in sys.modules:
        return True
    finished = threading.Event()
    complete = [False]

    def run() -> None:
        try:
            import mlflow

            mlflow.flush_trace_async_logging(terminate=True)
            # OpenTelemetry's flush gives up at its timeout and says so by returning False.
            complete[0] = _flush_tracer_provider(timeout) is not False
        except Exception as exc:
            logger.debug("mlflow-ollama: flushing MLflow's export failed: %r", exc)
        finally:
            finished.set()

    try:
        threading.Thread(target=run, name="mlflow-ollama-exit-flush", daemon=True).start()
    except RuntimeError:
        _warn_no_threads(why)
        return False
    if finished.wait(timeout) and complete[0]:
        return True
    left = unexported()
    for queue in export_queues():
        if hasattr(queue, "_is_active"):
            queue._is_active = False
    what = f"at least {left} trace(s)" if left else "the traces it was still exporting"
    warn(
        f"mlflow-ollama: process {os.getpid()} ({why}) gave MLflow's trace export {timeout:g} s "
        f"({EXIT_FLUSH_TIMEOUT_ENV}) and leaves without {what}: they are lost."
    )
    return False


def unexported() -> int | None:
    """How many traces MLflow holds, waiting, in this process; None when it cannot tell.

    Counted where they wait: root spans in batch span processors, and traces (not span batches) in
    MLflow's export queues. An export already under way is not visible, so this is a lower bound.
    """
    try:
        count = 0
        for processor in _batch_processors():
            queue = getattr(getattr(processor, "_batch_processor", None), "_queue", None)
            if queue is None:
                return None
            count += sum(1 for span in list(queue) if getattr(span, "parent", None) is None)
        for export_queue in export_queues():
            pending = list(getattr(export_queue._queue, "queue", ()))
            count += sum(1 for task in pending if getattr(task.handler, "__name__", "") == "_log_trace")
        return count
    except Exception:
        return None


def export_queues() -> list[Any]:
    """MLflow's export queues in this process: the current exporter's, and those of retired providers."""
    exporters: list[Any] = []
    provider = sys.modules.get("mlflow.tracing.provider")
    get_exporter = getattr(provider, "_get_trace_exporter", None)
    if get_exporter is not None:
        exporters.append(get_exporter())
    base = sys.modules.get("mlflow.tracing.processor.base_mlflow")
    registry = getattr(base, "_batch_processor_registry", None)
    if registry is not None:
        exporters += [getattr(p, "span_exporter", None) for p in list(registry)]
    queues = {id(q): q for e in exporters if (q := getattr(e, "_async_queue", None)) is not None}
    return list(queues.values())


def _batch_processors() -> list[Any]:
    """The OpenTelemetry batch span processors MLflow exports through (its own route and OTLP)."""
    found: list[Any] = []
    for processor in getattr(getattr(tracer_provider(), "_active_span_processor", None), "_span_processors", ()):
        delegate = getattr(processor, "_batch_delegate", None) or processor
        if hasattr(delegate, "_batch_processor"):
            found.append(delegate)
    return found


def _flush_tracer_provider(timeout: float) -> object:
    # The OTLP route's batch processor is not among what flush_trace_async_logging() drains.
    force_flush = getattr(tracer_provider(), "force_flush", None)
    return force_flush(int(timeout * 1000)) if force_flush is not None else None


def tracer_provider() -> Any:
    """MLflow's tracer provider if it has made one: ``provider.get()`` from 3.10, a module global before."""
    module = sys.modules.get("mlflow.tracing.provider")
    holder = getattr(module, "provider", None)
    return holder.get() if holder is not None else getattr(module, "_MLFLOW_TRACER_PROVIDER", None)
