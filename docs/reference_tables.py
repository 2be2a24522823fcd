"""The docs' reference facts, written from the code: one source for each.

Each fact lives between two markers in the pages that show it:

    <!-- generated: environment -->
    ...
    <!-- end generated -->

- ``environment``: the table of mlflow-ollama's environment variables, from the docstrings of the
  package's ``*_ENV`` constants;
- ``untraced``: the SDK methods left untraced, from ``mlflow_ollama._patch.UNTRACED_METHODS``;
- ``support``: the supported releases, from pyproject.toml's floors and the Pythons of noxfile.py.

    python docs/reference_tables.py           # rewrite the blocks
    python docs/reference_tables.py --check   # exit 1, naming the stale pages (tests/test_docs_reference.py)
"""

from __future__ import annotations

import argparse
import ast
import itertools
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlflow_ollama"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)


def environment_variables() -> list[tuple[str, str]]:
    """Each ``MLFLOW_OLLAMA_*`` variable the package reads, with its docstring as markdown, by name."""
    found: dict[str, str] = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        body = ast.parse(module.read_text(encoding="utf-8")).body
        for statement, following in itertools.pairwise(body):
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
                continue
            target, value = statement.targets[0], statement.value
            if not (isinstance(target, ast.Name) and target.id.endswith("_ENV")):
                continue
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                continue
            if not value.value.startswith("MLFLOW_OLLAMA_"):
                continue
            if not (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)):
                raise SystemExit(f"{module.relative_to(ROOT)}: {target.id} has no docstring to document it")
            found[value.value] = _markdown(str(following.value.value))
    return sorted(found.items())


def _markdown(docstring: str) -> str:
    # Docstrings are written for mkdocstrings and help() alike: ``code`` becomes `code`, one line.
    return " ".join(docstring.split()).replace("``", "`")


def environment() -> str:
    rows = [f"| `{name}` | {text} |" for name, text in environment_variables()]
    return "\n".join(["| variable | effect |", "|---|---|", *rows])


def untraced() -> str:
    sys.path.insert(0, str(ROOT))
    from mlflow_ollama._patch import UNTRACED_METHODS

    names = [f"`{name}`" for name in UNTRACED_METHODS]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"Not traced, by design: {listed}. They manage models, call web tools or close the client: no model runs."


def support() -> str:
    """The supported releases: the floors pyproject.toml requires, the Pythons the test matrix runs."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")

    def floor(package: str) -> str:
        found = re.search(rf'"{re.escape(package)}>=([\d.]+)"', pyproject)
        if found is None:
            raise SystemExit(f"pyproject.toml requires no {package}>=")
        return found.group(1)

    pythons = re.search(r"^PYTHONS = \[(.*)\]$", noxfile, re.MULTILINE)
    if pythons is None:
        raise SystemExit("noxfile.py has no PYTHONS list")
    versions = re.findall(r'"([\d.]+)"', pythons.group(1))
    return (
        f"Supported: Python {versions[0]} to {versions[-1]}, `ollama` {floor('ollama')} and newer, "
        f"MLflow {floor('mlflow-tracing')} and newer, wrapt {floor('wrapt')} and newer (1.x and 2.x). "
        "The unit tests run on the oldest release of each and on the newest."
    )


GENERATORS: dict[str, Callable[[], str]] = {"environment": environment, "support": support, "untraced": untraced}


def rewrite(text: str) -> str:
    """``text`` with every generated block written anew."""

    def block(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in GENERATORS:
            raise SystemExit(f"unknown generated block {name!r}")
        return f"{match.group(1)}{GENERATORS[name]()}\n{match.group(4)}"

    return _BLOCK.sub(block, text)


def stale_pages() -> list[Path]:
    """The pages whose generated blocks differ from what the code says now."""
    return [page for page in PAGES if (text := page.read_text(encoding="utf-8")) != rewrite(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is stale")
    options = parser.parse_args()
    stale = stale_pages()
    if options.check:
        for page in stale:
            print(f"{page.relative_to(ROOT)}: stale; run python docs/reference_tables.py")
        raise SystemExit(1 if stale else 0)
    for page in stale:
        page.write_text(rewrite(page.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"rewrote {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
