"""mlflow-ollama's bootstrap. ``mlflow-ollama run`` puts this file's directory first on ``PYTHONPATH``.

Python imports ``sitecustomize`` at startup in every process that sees that variable, so every
Python process the command starts, children included, runs this file. It costs next to nothing:
it imports no part of mlflow-ollama, wrapt, MLflow or Ollama (mlflow-ollama's import alone takes
~0.1 s, wrapt's mostly, and a process may never use Ollama). It puts an import hook on
``sys.meta_path``; when the process imports ``ollama``, the hook switches autolog on
(``mlflow_ollama.activation._autolog.activate``). Then it runs the ``sitecustomize`` that Python would
have found without us, if there is one.

This directory holds no other module, so nothing of the user's is shadowed. The file sticks to the
standard library and plain syntax: any Python that reads ``PYTHONPATH`` runs it.
"""

import os
import sys

# `typing` alone would take ~8 ms of every process's start, and `from __future__` 0.2 ms: only the
# type checker reads the annotations, hence the quotes.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# mlflow_ollama._config's _FALSE, repeated because importing the package here costs ~0.1 s per
# process; tests/test_launcher.py keeps the two in step.
_OFF = ("false", "0", "no", "off")


def _normalised(path: str) -> str:
    return os.path.normcase(os.path.abspath(path or os.curdir))


class _OllamaImportHook:
    """A meta path finder that finds nothing itself: when ``ollama`` is imported, it hooks its loading."""

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        if fullname != "ollama":
            return None
        _uninstall()  # once: and our own lookup below must not come back here
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
            loader: Any = getattr(spec, "loader", None)
            exec_module = getattr(loader, "exec_module", None)
            if exec_module is None:
                return None  # not a loader we can hook: the import goes on as without us

            def exec_then_activate(module: "Any") -> None:
                try:
                    exec_module(module)
                finally:
                    del loader.exec_module  # the loader's own method again, for a reload
                # After the package ran: `import ollama` finishes with the patches in, so even a
                # `from ollama import chat` right after it gets the traced function.
                _activate()

            loader.exec_module = exec_then_activate
        except Exception:
            return None  # never break `import ollama`: Python's own finders take over
        return spec


def _activate() -> None:
    try:
        from mlflow_ollama.activation._autolog import activate
    except Exception as exc:  # not installed for this interpreter, or a broken install
        import logging

        logging.getLogger("mlflow_ollama").warning(
            "mlflow-ollama: this process (%s) is not traced: mlflow_ollama cannot be imported here (%s: %s). "
            "Install mlflow-ollama for this Python.",
            sys.executable,
            type(exc).__name__,
            exc,
        )
        return
    activate()


_HOOK = _OllamaImportHook()


def _install() -> None:
    if os.environ.get("MLFLOW_OLLAMA_AUTOLOG", "").strip().lower() in _OFF:
        return  # switched off: the process runs as if it had not been launched through us
    if "ollama" in sys.modules:
        _activate()  # imported before site ran (unusual, e.g. an import in a .pth file)
    else:
        sys.meta_path.insert(0, _HOOK)


def _uninstall() -> None:
    while _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def _chain() -> None:
    """Import the ``sitecustomize`` that would have run without us: the next one on ``sys.path``."""
    here = _normalised(os.path.dirname(os.path.abspath(__file__)))
    saved = list(sys.path)
    ours = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [entry for entry in sys.path if _normalised(entry) != here]
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401  # the user's, or the system's
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise  # their sitecustomize failed: site.py reports it, as it would without us
        if ours is not None:
            sys.modules["sitecustomize"] = ours  # there was none: we stay the one
    finally:
        sys.path[:] = saved


_install()
_chain()
