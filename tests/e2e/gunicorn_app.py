"""A WSGI app that asks Ollama once per request, traced by mlflow-ollama, for ``gunicorn --preload``.

As a service does: ``autolog()`` and one warm-up call when the app is imported, in the master, so
that the first request does not pay for the model load; gunicorn then forks its workers. Each
request makes one chat (with a client of the worker's own: an HTTP connection must not be shared
across a fork) and answers with the worker's pid.

    gunicorn --preload --workers 2 --bind 127.0.0.1:PORT gunicorn_app:application
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import mlflow_ollama

mlflow_ollama.autolog()

import mlflow  # noqa: E402
import ollama  # noqa: E402

MODEL = "llama3.2"
mlflow.set_experiment("gunicorn")
ollama.Client(host=os.environ["OLLAMA_HOST"]).chat(model=MODEL, messages=[{"role": "user", "content": "warm up"}])
# Exported before the workers are forked, as it is a moment later in any long-lived master.
mlflow.flush_trace_async_logging()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    client = ollama.Client(host=os.environ["OLLAMA_HOST"])
    client.chat(model=MODEL, messages=[{"role": "user", "content": environ.get("PATH_INFO", "/")}])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
