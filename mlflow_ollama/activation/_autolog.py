"""Autolog switched on for the user, configured by the environment: ``mlflow-ollama run`` and ``%load_ext``.

Both call ``activate()``: the launcher's bootstrap when a process imports ``ollama``, the IPython
extension when it is loaded. ``autolog()``'s options come from the environment (the flags of
``mlflow-ollama run`` are set as these variables, so child processes see them too); with
``mlflow-tracing`` alone, so does the experiment (``_experiment``).
"""

from __future__ import annotations

from mlflow_ollama._config import LOG_EMBEDDINGS_ENV, SILENT_ENV, env_flag, settings
from mlflow_ollama._safety import report
from mlflow_ollama.activation import _experiment

__all__ = ["activate"]

_hook_registered = False


def activate() -> None:
    """``autolog()`` with the options the environment gives; the experiment too where MLflow cannot read it.

    The experiment is looked up once ``ollama`` is imported (now, if it is), not before: that
    imports MLflow, and a process that never uses Ollama should not pay for it. Never raises.
    """
    global _hook_registered
    try:
        import wrapt

        from mlflow_ollama import autolog

        autolog(silent=env_flag(SILENT_ENV, False), log_embeddings=env_flag(LOG_EMBEDDINGS_ENV, False))
        if not _hook_registered:
            _hook_registered = True
            wrapt.register_post_import_hook(_set_experiment, "ollama")  # runs at once if imported
    except Exception as exc:
        report("switch autolog on", exc)


def _set_experiment(_module: object) -> None:
    if settings.active:  # not after revert() (%unload_ext)
        _experiment.from_environment()
