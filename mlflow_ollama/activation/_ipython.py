"""``%load_ext mlflow_ollama``: autolog on in a notebook or IPython shell; ``%unload_ext`` turns it off.

IPython looks these two functions up on the package (``mlflow_ollama.load_ipython_extension``);
their bodies live here. Loading does what ``mlflow-ollama run`` does for a process: ``autolog()``
with the options the environment gives, and with ``mlflow-tracing`` alone, the experiment that
``MLFLOW_EXPERIMENT_NAME`` / ``MLFLOW_EXPERIMENT_ID`` name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mlflow_ollama``: trace every Ollama call made from now on (``autolog()``).

    Options come from the environment (``MLFLOW_OLLAMA_LOG_CONTENT``, ``MLFLOW_OLLAMA_LOG_EMBEDDINGS``,
    ``MLFLOW_OLLAMA_SILENT``); ``%env MLFLOW_OLLAMA_AUTOLOG=false`` pauses tracing as usual.
    ``ollama`` need not be imported yet. Loading it again changes nothing.
    """
    from mlflow_ollama.activation._autolog import activate

    activate()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mlflow_ollama``: stop tracing and put the SDK's functions back (``revert()``)."""
    from mlflow_ollama import revert

    revert()
