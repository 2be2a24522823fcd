"""An Ollama batch job that runs its calls in worker processes, as the worker-process tests and benchmark run it.

It makes ``--calls`` chats against ``OLLAMA_HOST`` in ``--workers`` worker processes, started the way
``--how`` says, then prints one JSON line: the calls made, the seconds the workers took to finish
and exit, and the workers that had to be killed because they did not exit. MLflow is configured
only through the environment, as a user's job would be; the caller counts what reached the store.

``--tracer ours`` traces with ``mlflow_ollama.autolog()`` (in the parent; spawned and forkserver
workers get it through ``initializer=``, the documented way). ``--tracer mlflow`` does not import
mlflow-ollama at all: each call is wrapped in ``mlflow.start_span`` by hand, which is MLflow's
behaviour on its own (the upstream reproduction). ``--warm-up`` makes one traced call in the parent
first, as services do at start-up so that the first request does not pay for the model load.

    python tests/e2e/workers_app.py --how pool --start fork --ending close --tracer ours --warm-up

``--how``: ``pool`` (``multiprocessing.Pool``; ``--ending close`` is ``close()`` + ``join()``,
``with`` is the ``with`` form, which ends with ``terminate()``), ``executor``
(``ProcessPoolExecutor`` in a ``with`` block), or ``fork`` (plain ``os.fork()`` children that end
with ``sys.exit`` or ``os._exit``: ``--ending sys-exit`` / ``os-exit``; ``kill``: SIGKILL once
their calls are done, as the OOM killer or a container runtime's last word would). A pool's workers
are not killed here: one killed while waiting for work holds the pool's queue lock, and
``terminate()`` then waits on it forever (multiprocessing's own behaviour).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

MODEL = "llama3.2"
TRACER = os.environ.get("WORKERS_TRACER", "ours")


def _autolog() -> None:
    import mlflow_ollama

    mlflow_ollama.autolog()


def work(i: int) -> int:
    """One chat, traced as the tracer chosen says; returns the worker's pid."""
    import ollama

    client = ollama.Client(host=os.environ["OLLAMA_HOST"])
    messages = [{"role": "user", "content": f"Summarise document {i}."}]
    if TRACER == "mlflow":
        import mlflow

        with mlflow.start_span(name="chat") as span:
            span.set_inputs({"i": i})
            client.chat(model=MODEL, messages=messages)
    else:
        client.chat(model=MODEL, messages=messages)
    return os.getpid()


def _fork_children(options: argparse.Namespace) -> tuple[int, list[int]]:
    """Plain ``os.fork()`` children, each making its share of the calls; returns (calls, killed pids).

    ``--ending kill``: each child says when its calls are done and waits; then it gets SIGKILL.
    """
    children = []
    share = [range(w, options.calls, options.workers) for w in range(options.workers)]
    done_reader, done_writer = os.pipe()
    for calls in share:
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                for i in calls:
                    work(i)
            except BaseException:
                code = 1
            if options.ending == "kill":
                os.write(done_writer, b"." if code == 0 else b"!")
                time.sleep(3600)
            if options.ending == "os-exit":
                os._exit(code)
            sys.exit(code)
        children.append(pid)
    if options.ending == "kill":
        reports = b""
        while len(reports) < len(children):
            reports += os.read(done_reader, len(children))
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        return sum(len(c) for c, r in zip(share, reports.decode(), strict=True) if r == "."), []
    killed = []
    deadline = time.monotonic() + options.exit_timeout
    calls_done = 0
    for pid, calls in zip(children, share, strict=True):
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                calls_done += len(calls) if os.waitstatus_to_exitcode(status) == 0 else 0
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                killed.append(pid)
                calls_done += len(calls)  # they finished their calls; they did not exit
                break
            time.sleep(0.02)
    return calls_done, killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--how", choices=["pool", "executor", "fork"], required=True)
    parser.add_argument("--start", choices=["fork", "spawn", "forkserver"], default="fork")
    parser.add_argument("--ending", choices=["close", "with", "sys-exit", "os-exit", "kill"], default="close")
    parser.add_argument("--tracer", choices=["ours", "mlflow"], default="ours")
    parser.add_argument("--warm-up", action="store_true", help="one traced call in the parent first")
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--exit-timeout", type=float, default=60, help="kill workers still there after this")
    options = parser.parse_args()
    os.environ["WORKERS_TRACER"] = options.tracer  # for spawned workers, which re-import this file
    global TRACER
    TRACER = options.tracer
    if options.tracer == "ours":
        _autolog()
    import mlflow

    # As a job sets up MLflow at start-up; this also creates the store's tables once, before
    # several workers would race to create them.
    mlflow.set_experiment(os.environ.get("APP_EXPERIMENT_NAME", "workers"))
    if options.warm_up:
        work(-1)
        # Exported before the workers start, as it is a moment later in any long-lived parent
        # (MLflow batches spans for up to 5 s first): MLflow's export threads are running.
        mlflow.flush_trace_async_logging()

    started = time.monotonic()
    killed: list[int] = []
    initializer = _autolog if options.tracer == "ours" and options.start != "fork" else None
    context = multiprocessing.get_context(options.start)
    if options.how == "fork":
        calls, killed = _fork_children(options)
    elif options.how == "executor":
        with ProcessPoolExecutor(options.workers, mp_context=context, initializer=initializer) as executor:
            calls = len(list(executor.map(work, range(options.calls))))
    elif options.ending == "with":
        with context.Pool(options.workers, initializer=initializer) as pool:
            calls = len(pool.map(work, range(options.calls)))
    else:
        pool = context.Pool(options.workers, initializer=initializer)
        calls = len(pool.map(work, range(options.calls)))
        pool.close()
        pool.join()
    seconds = time.monotonic() - started

    started_flush = time.monotonic()
    mlflow.flush_trace_async_logging()
    _flush_otlp()
    result: dict[str, Any] = {
        "calls": calls,
        "workers_seconds": round(seconds, 3),
        "killed": len(killed),
        "parent_flush_seconds": round(time.monotonic() - started_flush, 3),
    }
    print(json.dumps(result), flush=True)


def _flush_otlp() -> None:
    # The OTLP route's span processor is not among what flush_trace_async_logging() drains.
    from mlflow.tracing import provider as tracing

    holder = getattr(tracing, "provider", None)
    current: Any = holder.get() if holder is not None else getattr(tracing, "_MLFLOW_TRACER_PROVIDER", None)
    if current is not None and hasattr(current, "force_flush"):
        current.force_flush()


if __name__ == "__main__":
    main()
