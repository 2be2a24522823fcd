"""The package's import graph: no circles, and each module importing only what sits below it."""

from __future__ import annotations

import ast
from pathlib import Path

import mlflow_ollama

PACKAGE = Path(mlflow_ollama.__file__).parent


def _imports(module: Path) -> set[str]:
    """The package's modules ``module`` imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlflow_ollama"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mlflow_ollama"))
    return found


def test_config_imports_nothing_of_the_package() -> None:
    """Switches and the logger are the bottom: the never-break guard imports them, not the reverse."""
    assert _imports(PACKAGE / "_config.py") == set()


def test_safety_imports_only_config() -> None:
    assert {name for name in _imports(PACKAGE / "_safety.py") if not name.startswith("mlflow_ollama._config")} == set()
