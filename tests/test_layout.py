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


CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))


def test_the_core_never_imports_the_activation_tools() -> None:
    """The data flow is one way: the tools (``activation/``) import the core, never the reverse.

    The package's ``__init__`` and ``__main__`` are the facade: IPython and ``python -m`` look there.
    """
    assert CORE, "no core modules found"
    for module in CORE:
        assert not {n for n in _imports(module) if n.startswith("mlflow_ollama.activation")}, module.name


def test_the_top_level_is_the_core_and_one_folder_of_tools() -> None:
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == ["activation"]
