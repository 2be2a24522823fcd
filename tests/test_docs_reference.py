"""The docs' reference facts agree with the code: each is written from it (docs/reference_tables.py)."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import ollama
import pytest

from mlflow_ollama._patch import TRACED_METHODS, UNTRACED_METHODS

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_tables", ROOT / "docs" / "reference_tables.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tables = _generator()


def test_the_pages_say_what_the_code_says() -> None:
    stale = [str(page.relative_to(ROOT)) for page in tables.stale_pages()]
    assert stale == [], "run: python docs/reference_tables.py"


def test_a_page_that_disagrees_is_found() -> None:
    page = "before\n<!-- generated: untraced -->\nNot traced: `pull`.\n<!-- end generated -->\nafter\n"
    written = tables.rewrite(page)
    assert written != page
    assert "`web_fetch`" in written
    assert written.startswith("before\n")
    assert written.endswith("<!-- end generated -->\nafter\n")
    assert tables.rewrite(written) == written


def test_every_generated_block_is_used() -> None:
    used = {name for page in tables.PAGES for name in re.findall(r"<!-- generated: ([\w-]+) -->", page.read_text())}
    assert used == set(tables.GENERATORS)


def test_every_variable_the_package_reads_is_in_the_table() -> None:
    documented = {name for name, _ in tables.environment_variables()}
    read = {
        name
        for module in tables.PACKAGE.rglob("*.py")
        for name in re.findall(r"MLFLOW_OLLAMA_[A-Z_]+", module.read_text(encoding="utf-8"))
    }
    assert read == documented


@pytest.mark.parametrize("client", [ollama.Client, ollama.AsyncClient])
def test_every_public_sdk_method_is_traced_or_left_untraced_by_decision(client: type) -> None:
    """A method a new ollama release adds fails here until someone decides whether it runs a model."""
    public = {name for name, member in inspect.getmembers(client, inspect.isfunction) if not name.startswith("_")}
    undecided = public - set(TRACED_METHODS) - set(UNTRACED_METHODS)
    assert undecided == set()
    assert not set(TRACED_METHODS) & set(UNTRACED_METHODS)
