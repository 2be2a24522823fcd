"""MLflow Tracing for the official ``ollama`` Python SDK.

```python
import mlflow_ollama

mlflow_ollama.autolog()  # once, at startup
# every ollama.chat / Client.chat / AsyncClient.chat call is now an MLflow span
mlflow_ollama.revert()  # the original functions are back
```

Without changing the app: ``mlflow-ollama run python app.py``; in a notebook: ``%load_ext mlflow_ollama``.
"""

from __future__ import annotations

from mlflow_ollama._config import (
    AUTOLOG_ENV,
    LOG_CONTENT_ENV,
    LOG_EMBEDDINGS_ENV,
    MODEL_DETAILS_ENV,
    SILENT_ENV,
    STRICT_ENV,
    settings,
)
from mlflow_ollama.activation._ipython import load_ipython_extension, unload_ipython_extension

__all__ = [
    "__version__",
    "AUTOLOG_ENV",
    "LOG_CONTENT_ENV",
    "LOG_EMBEDDINGS_ENV",
    "MODEL_DETAILS_ENV",
    "SILENT_ENV",
    "STRICT_ENV",
    "autolog",
    "load_ipython_extension",
    "revert",
    "unload_ipython_extension",
]


def autolog(
    log_traces: bool = True,
    disable: bool = False,
    silent: bool = False,
    log_embeddings: bool = False,
    log_content: bool = True,
    model_details: bool = False,
) -> None:
    """Trace every Ollama inference call as an MLflow span.

    Patches, in place with wrapt, ``chat``, ``generate``, ``embed`` and ``embeddings``: the
    module-level functions (``ollama.chat``, ...) and the methods of ``ollama.Client`` and
    ``ollama.AsyncClient``. Each call then gives exactly one span (``ollama.chat`` of type
    ``CHAT_MODEL``, ``ollama.generate`` of type ``LLM``, ``ollama.embed`` and
    ``ollama.embeddings`` of type ``EMBEDDING``), nested under whatever span is current. It
    records the arguments by name, the response, token usage, model, provider, tools, Ollama's
    durations and, for chat and generate, the conversation in the form the MLflow UI shows as a
    chat; images become trace attachments. A method bound before this call (``from ollama import
    chat``) is traced too, through ``Client._request``, which the SDK looks up on the class at call
    time. Streams (``stream=True``) give one span from the call until the stream ends, however it
    ends. Other SDK calls (``pull``, ``list``, ``show``, ...) are not traced.

    If ``ollama`` is not imported yet, nothing is imported now (importing it reads
    ``OLLAMA_HOST``): the patches go in when your code imports it.

    Tracing never changes a call: its result and its exceptions are the very objects the SDK
    produced, and a failure inside the plugin is logged once as a warning, never raised.

    Calling it again only updates the options; it never stacks wrappers.

    Set the environment variable ``MLFLOW_OLLAMA_AUTOLOG=false`` (or ``0``, ``no``, ``off``) to
    stop tracing from the next call on, without restarting (``%env`` in a notebook); ``true`` or
    unset turns it back on.

    Args:
        log_traces: If False, calls are not traced (same as ``disable=True`` here, since traces
            are all this integration logs).
        disable: If True, remove the patches, like ``revert()``.
        silent: If True, the plugin's own warnings are logged at debug level.
        log_embeddings: If True, embedding spans record the vectors themselves; by default only
            how many there are and their dimension (a 100 x 4096 batch is megabytes).
        log_content: If False, no prompt, message, response, thinking, tool-call argument,
            embedding input or image reaches a trace; model, token counts, durations, tool names,
            span structure and error types stay. ``MLFLOW_OLLAMA_LOG_CONTENT=false`` does the same
            from the next call on, read on every call like ``MLFLOW_OLLAMA_AUTOLOG``.
        model_details: If True, each inference span also records its model's details: family,
            parameter size, quantization, trained context length (``ollama.model.*``), the loaded
            model's digest and share in GPU memory, and, when the request sets no ``num_ctx``, the
            context length it runs with. They are looked up from the server (``/api/show``,
            ``/api/ps``) at the span's end and cached; a failed lookup leaves them out. Off by
            default: then no such request is made. ``MLFLOW_OLLAMA_MODEL_DETAILS=true`` switches
            them on too, read on every call.
    """
    # Imported here, not with the package: wrapt and importlib.metadata take ~0.08 s, which the
    # command line (mlflow-ollama run, before it execs the app) has no use for.
    from mlflow_ollama import _compat, _exit, _patch, _workers

    settings.silent = silent
    settings.log_embeddings = log_embeddings
    settings.log_content = log_content
    settings.model_details = model_details
    if disable or not log_traces:
        revert()
        return
    _compat.check_installed()
    settings.active = True
    _patch.install_when_imported()
    _workers.install()
    _exit.install()


def revert() -> None:
    """Remove the patches: the SDK's original functions are back, as the same objects.

    A patched function you kept a reference to while autolog was on stops tracing too. Does
    nothing when nothing is patched; ``autolog()`` afterwards works again.
    """
    from mlflow_ollama import _patch

    settings.active = False
    _patch.uninstall()


def __getattr__(name: str) -> str:
    # ``__version__`` comes from the installed metadata, whose one source is pyproject.toml. Read
    # on first use: importlib.metadata costs ~0.02 s that ``import mlflow_ollama`` (the command
    # line, the bootstrap) does not pay.
    if name == "__version__":
        from importlib.metadata import version

        return version("mlflow-ollama")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
