"""The experiment MLflow's environment variables name, set for installs where MLflow cannot read them.

With only ``mlflow-tracing`` installed (no ``mlflow`` or ``mlflow-skinny``), MLflow 3.17 resolves
``MLFLOW_EXPERIMENT_NAME``, ``MLFLOW_EXPERIMENT_ID`` and the default experiment through names that
exist only in full MLflow, so every span fails to start ("name 'MlflowClient' is not defined").
``mlflow.set_experiment()`` works there, so this module calls it with what the environment asks
for, resolved the way full MLflow resolves it. Full MLflow reads the variables itself: nothing to do.
"""

from __future__ import annotations

import os
import threading

from mlflow_ollama._safety import redact_url, report, warn

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "EXPERIMENT_ID_ENV",
    "EXPERIMENT_NAME_ENV",
    "WAIT_SECONDS",
    "from_environment",
    "requested",
]

EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
DEFAULT_EXPERIMENT_ID = "0"
"""MLflow's "Default" experiment, which full MLflow uses when neither variable is set (outside Databricks)."""

WAIT_SECONDS = 3.0
"""How long ``import ollama`` may wait for the tracking server to answer. The lookup goes on in
the background after that; MLflow's own retries would otherwise hold the import for minutes."""


def requested() -> tuple[str, str, str]:
    """What the environment asks for: ``(variable, kind, value)``, ``kind`` being ``"name"`` or ``"id"``.

    The name wins over the id, as in full MLflow; with neither, the Default experiment.
    """
    name = os.environ.get(EXPERIMENT_NAME_ENV, "").strip()
    experiment_id = os.environ.get(EXPERIMENT_ID_ENV, "").strip()
    if name:
        return EXPERIMENT_NAME_ENV, "name", name
    if experiment_id:
        return EXPERIMENT_ID_ENV, "id", experiment_id
    return "the default", "id", DEFAULT_EXPERIMENT_ID


def from_environment() -> None:
    """With ``mlflow-tracing`` alone, set the experiment the environment names, unless code set one.

    Waits at most ``WAIT_SECONDS`` for the tracking server; never raises.
    """
    try:
        import mlflow
        import mlflow.version

        if not getattr(mlflow.version, "IS_TRACING_SDK_ONLY", False):
            return  # full MLflow reads the variables itself
        if getattr(mlflow.tracking.fluent, "_active_experiment_id", None):
            return  # set in code (mlflow.set_experiment) before ollama was imported: the code wins
        uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not uri:
            return  # mlflow-tracing alone has no store to look in; `mlflow-ollama doctor` says so
        variable, kind, value = requested()
        if variable == "the default" and uri.startswith("databricks"):
            return  # Databricks has its own default experiment; leave it to MLflow
    except Exception as exc:
        report("read the MLflow experiment from the environment", exc)
        return
    thread = threading.Thread(target=_set, args=(variable, kind, value), name="mlflow-ollama-experiment", daemon=True)
    thread.start()
    thread.join(WAIT_SECONDS)
    if thread.is_alive():
        warn(
            f"mlflow-ollama: the tracking server at {redact_url(uri)} did not answer within {WAIT_SECONDS:.0f} s while "
            f"setting the experiment ({variable}={value!r}); spans started before it answers are not recorded."
        )


def _set(variable: str, kind: str, value: str) -> None:
    import mlflow

    wanted_id = os.environ.get(EXPERIMENT_ID_ENV, "").strip()
    try:
        if kind == "name":
            experiment = mlflow.set_experiment(experiment_name=value)
            if wanted_id and wanted_id != experiment.experiment_id:
                warn(
                    f"mlflow-ollama: {EXPERIMENT_ID_ENV}={wanted_id!r} is not the id of {EXPERIMENT_NAME_ENV}="
                    f"{value!r} ({experiment.experiment_id}); traces go to {value!r}."
                )
        else:
            mlflow.set_experiment(experiment_id=value)
    except Exception as exc:
        report(f"set the MLflow experiment from {variable} ({value!r}), so no trace is recorded", exc)
