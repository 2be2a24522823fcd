"""``python -m mlflow_ollama``: the ``mlflow-ollama`` command line."""

from __future__ import annotations

from mlflow_ollama.activation.cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m mlflow_ollama"))
