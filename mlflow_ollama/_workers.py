"""Worker processes: MLflow's trace export kept working in forked children, and flushed when a worker leaves.

MLflow exports traces in the background: spans wait in a batch span processor (OpenTelemetry's,
which re-creates its own thread after a fork) and then in MLflow's ``AsyncTraceExportQueue``, whose
threads do not survive ``os.fork()`` and which has no fork handling of its own. Three things lose
traces in worker processes, and this module answers each:

- **A child of a parent that already exported** inherits a queue marked active with no thread
  draining it: its traces pile up, and its ``atexit`` flush waits for them forever. After a fork,
  each MLflow export queue is reset in the child to the state of a new one (the parent's pending
  exports stay the parent's to send), so the child starts threads of its own on first use.
- **multiprocessing workers leave with ``os._exit``**, after multiprocessing's own finalizers but
  without ``atexit``: what is still queued is dropped. A finalizer flushes the export, bounded.
- **``Pool.terminate()`` (the ``with Pool()`` form) sends SIGTERM**: a worker with SIGTERM's
  default action now flushes, bounded, and then dies of SIGTERM as before. Python runs signal
  handlers in the main thread only, and the kernel may hand the signal to another thread (MLflow's
  export threads) while the main thread waits in C for the pool's queue lock, which the parent
  holds once it terminates: the handler would then never run and the worker never die. A watcher
  thread, woken through Python's signal wakeup fd, interrupts the main thread in that case.
- **Celery's prefork pool processes** (billiard) leave with ``os._exit`` straight from the worker
  loop, without multiprocessing's finalizers; the one hook they run is Celery's
  ``worker_process_shutdown`` signal, which flushes. (Celery resets SIGTERM to its default action
  in its pool processes: a cold shutdown's terminated pool process drops what it still holds.)

Every flush at exit is bounded (``_exit``: ``MLFLOW_OLLAMA_EXIT_FLUSH_TIMEOUT``, 10 s); what is still
unexported then is dropped, and a warning says how much. Nothing here runs in a process that does
not fork or is not a worker, and nothing here touches an Ollama call.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Any

from mlflow_ollama._config import settings
from mlflow_ollama._exit import exit_flush_timeout, export_queues, flush_bounded
from mlflow_ollama._safety import report

__all__ = ["install"]

# The multiprocessing flavours whose workers leave through their own finalizers and os._exit:
# the standard library's, and billiard's (Celery's prefork pool), which has the same API.
_MULTIPROCESSING_UTILS = ("multiprocessing.util", "billiard.util")

_installed = False
_guarded_pid = 0  # the worker process whose exit is already guarded


class _Anchor:
    """What multiprocessing's after-fork registry keeps a weak reference to (it needs an object)."""


_ANCHOR = _Anchor()


def install() -> None:
    """Watch forks from now on, and guard this process's exit if it is already a worker. Idempotent.

    Called by ``autolog()``. A spawned or forkserver worker calls ``autolog()`` itself (through
    ``initializer=`` or ``mlflow-ollama run``): that is when its exit gets guarded.
    """
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _installed = True
    for name in _MULTIPROCESSING_UTILS:
        package = sys.modules.get(name.split(".")[0])
        parent_process = getattr(package, "parent_process", None)
        if parent_process is not None and parent_process() is not None:
            _guard_worker(sys.modules.get(name))


def _after_fork_in_child() -> None:
    # Runs in every child of os.fork() (multiprocessing's fork and forkserver children, gunicorn
    # and Celery workers, bare forks), before the child does anything else. Must never raise.
    if not settings.active:
        return
    try:
        global _guarded_pid, _terminating
        _guarded_pid = 0
        _terminating = False
        _forget_inherited_watcher()
        for queue in export_queues():
            _reset(queue)
        # A bare fork that leaves with sys.exit runs atexit: ours, registered last, runs first
        # and bounds the flush that MLflow's own atexit callback would make without a limit.
        atexit.register(_flush_at_exit, "exit")
        for name in _MULTIPROCESSING_UTILS:
            util = sys.modules.get(name)
            if util is not None:
                # Run by multiprocessing's bootstrap of the child, after it clears the finalizers
                # the child inherited: only then can the child's own finalizer be registered.
                util.register_after_fork(_ANCHOR, lambda _anchor, util=util: _guard_worker(util))
        _connect_celery()
    except Exception as exc:
        report("prepare MLflow's trace export in a forked process", exc)


def _guard_worker(util: Any) -> None:
    """Flush at this worker's exit (multiprocessing's finalizers) and on SIGTERM's default action."""
    global _guarded_pid
    if _guarded_pid == os.getpid():
        return
    _guarded_pid = os.getpid()
    try:
        if util is not None:
            util.Finalize(None, _flush_at_exit, args=("worker exit",), exitpriority=0)
        # Only SIGTERM's default action is replaced: an app's own handler stays its own.
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _watch_sigterm()
    except Exception as exc:
        report("guard a worker process's exit", exc)


_terminating = False  # set when _on_sigterm starts: the main thread got there on its own
_wakeup_pipe: tuple[int, int] | None = None  # (read, write): the signal wakeup fd the watcher reads


def _watch_sigterm() -> None:
    # Python's C-level handler writes each caught signal's number to the wakeup fd, whichever
    # thread the kernel delivered it to; the watcher reads it and, if the main thread has not run
    # _on_sigterm, sends SIGTERM to the main thread itself, which interrupts the wait it is blocked
    # in (a lock, a socket). Only where no wakeup fd is set: an app's own (asyncio's) stays its own.
    global _wakeup_pipe
    if not hasattr(signal, "pthread_kill"):
        return
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)
        os.close(reader)
        os.close(writer)
        return
    _wakeup_pipe = (reader, writer)
    main = threading.main_thread().ident
    threading.Thread(target=_watch, args=(reader, main), name="mlflow-ollama-sigterm-watch", daemon=True).start()


def _watch(reader: int, main: int | None) -> None:
    while caught := os.read(reader, 64):
        if signal.SIGTERM in caught and not _terminating and main is not None:
            signal.pthread_kill(main, signal.SIGTERM)


def _forget_inherited_watcher() -> None:
    # A worker's child inherits the worker's wakeup fd, but not the thread that read it: unset it,
    # so that this process can have a watcher of its own.
    global _wakeup_pipe
    if _wakeup_pipe is None:
        return
    reader, writer = _wakeup_pipe
    _wakeup_pipe = None
    previous = signal.set_wakeup_fd(-1)
    if previous != writer:
        signal.set_wakeup_fd(previous)  # the child set its own since: keep it
    os.close(reader)
    os.close(writer)


def _connect_celery() -> None:
    # Celery's pool processes: billiard's worker loop ends in os._exit, so neither atexit nor the
    # finalizers run; Celery sends worker_process_shutdown just before. Only where Celery is
    # already imported (it is, in the child of a Celery worker); connected in the child, so the
    # parent's receivers stay as they were.
    signals = sys.modules.get("celery.signals")
    if signals is None:
        return
    signals.worker_process_shutdown.connect(_on_celery_process_shutdown, weak=False, dispatch_uid=_CELERY_UID)


_CELERY_UID = "mlflow-ollama-workers"


def _on_celery_process_shutdown(**_kwargs: Any) -> None:
    _flush_at_exit("Celery pool process exit")


def _on_sigterm(signum: int, _frame: Any) -> None:
    # Flush, bounded, then die of SIGTERM as the default action would have: same exit status.
    # Runs once: the watcher's SIGTERM may arrive while this one flushes.
    global _terminating
    if _terminating:
        return
    _terminating = True
    _flush_at_exit("terminated")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _flush_at_exit(why: str) -> None:
    try:
        flush_bounded(exit_flush_timeout(), why)
    except Exception as exc:
        report("flush MLflow's trace export at exit", exc)


def _reset(queue: Any) -> None:
    # The queue's own constructor, run again on the child's copy: whatever state this MLflow release
    # keeps (locks, events, the queue, the flags) is back to new, and the next put starts threads
    # of the child's own. The tasks copied from the parent are the parent's to export.
    registered = getattr(queue, "_atexit_callback_registered", None)
    queue.__init__()
    if registered is not None:
        # Releases that register their atexit flush on first use (MLflow 3.4 to 3.10) would do it
        # after ours, and so run first, unbounded; ours does that flush.
        queue._atexit_callback_registered = True
