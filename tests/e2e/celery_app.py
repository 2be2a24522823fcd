"""A Celery app whose task asks Ollama, traced by mlflow-ollama, run by a prefork worker.

As a job queue does: in the worker (``CELERY_APP_ROLE=worker``), ``autolog()`` and one warm-up call
happen when the app is imported, in the main process, which then forks its pool processes. The
broker and the result store are folders (kombu's ``filesystem://`` transport and Celery's ``file://``
backend) under ``CELERY_APP_DIR``, so no broker server is needed.

    CELERY_APP_ROLE=worker celery -A celery_app worker --pool prefork --concurrency 2
    python celery_app.py N      # sends N tasks, waits for their results, prints how many came back
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery import Celery

MODEL = "llama3.2"
_DIR = Path(os.environ["CELERY_APP_DIR"])
for _folder in ("broker", "processed", "results", "control"):
    (_DIR / _folder).mkdir(parents=True, exist_ok=True)

app = Celery("ollama_jobs", broker="filesystem://", backend=f"file://{_DIR / 'results'}")
app.conf.broker_transport_options = {
    "data_folder_in": str(_DIR / "broker"),
    "data_folder_out": str(_DIR / "broker"),
    "processed_folder": str(_DIR / "processed"),
    "control_folder": str(_DIR / "control"),  # else kombu writes ./control
}
app.conf.broker_connection_retry_on_startup = True

if os.environ.get("CELERY_APP_ROLE") == "worker":
    import mlflow_ollama

    mlflow_ollama.autolog()

    import mlflow
    import ollama

    mlflow.set_experiment("celery")
    ollama.Client(host=os.environ["OLLAMA_HOST"]).chat(model=MODEL, messages=[{"role": "user", "content": "warm up"}])
    mlflow.flush_trace_async_logging()  # exported before the pool forks, as in a long-lived worker


@app.task(name="summarise")  # type: ignore[untyped-decorator]  # one name for the worker (celery_app) and the sender (__main__)
def summarise(i: int) -> int:
    import ollama

    ollama.Client(host=os.environ["OLLAMA_HOST"]).chat(
        model=MODEL, messages=[{"role": "user", "content": f"Summarise document {i}."}]
    )
    return os.getpid()


if __name__ == "__main__":
    results = [summarise.delay(i) for i in range(int(sys.argv[1]))]
    print(len([r.get(timeout=120) for r in results]))
