"""The docs' reference facts, written from the code: one source for each.

Each fact lives between two markers in the pages that show it:

    <!-- generated: environment -->
    ...
    <!-- end generated -->

- ``environment``: the table of mlflow-ollama's environment variables, from the docstrings of the
  package's ``*_ENV`` constants;
- ``untraced``: the SDK methods left untraced, from ``mlflow_ollama._patch.UNTRACED_METHODS``;
- ``support``: the supported releases, from pyproject.toml's floors and the Pythons of noxfile.py;
- ``cost``, ``peers``, ``openai-route``: what tracing costs, from the figures ``benchmarks/peers.py``
  writes beside its page (``docs/benchmarks/peers.json``); ``cpu-split``: the split of our added
  CPU, the table ``benchmarks/cpu_split.py`` marks in its page.

    python docs/reference_tables.py           # rewrite the blocks
    python docs/reference_tables.py --check   # exit 1, naming the stale pages (tests/test_docs_reference.py)
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The package as Python imports it: the checkout's, or an installed wheel's (nox -s build).
PACKAGE = Path(importlib.util.find_spec("mlflow_ollama").origin or "").parent  # type: ignore[union-attr]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)


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
                raise SystemExit(f"{module}: {target.id} has no docstring to document it")
            found[value.value] = _markdown(str(following.value.value))
    if not found:
        raise SystemExit(f"no MLFLOW_OLLAMA_* variable found in {PACKAGE}")
    return sorted(found.items())


def _markdown(docstring: str) -> str:
    # Docstrings are written for mkdocstrings and help() alike: ``code`` becomes `code`, one line.
    return " ".join(docstring.split()).replace("``", "`")


def environment() -> str:
    rows = [f"| `{name}` | {text} |" for name, text in environment_variables()]
    return "\n".join(["| variable | effect |", "|---|---|", *rows])


def untraced() -> str:
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


def _peers() -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((ROOT / "docs" / "benchmarks" / "peers.json").read_text(encoding="utf-8"))
    return figures


def _us(value: float) -> str:
    return f"{value:+,.0f} µs"


def cost() -> str:
    """One sentence: what tracing adds to a short chat, by OTLP and into sqlite, from the peers benchmark."""
    figures = _peers()
    ours, theirs = figures["sqlite"]["short"]["mlflow_ollama"], figures["sqlite"]["short"]["same_data"]
    ratio = ours["latency_us"] / theirs["latency_us"]
    than = "about what" if abs(ratio - 1) <= 0.1 else ("less than" if ratio < 1 else "more than")
    return (
        f"**What it costs**: a short chat's latency grows by a median "
        f"{_us(figures['otlp']['short']['mlflow_ollama']['latency_us'])} with traces exported over OTLP, and by "
        f"{_us(ours['latency_us'])} with MLflow's local sqlite store, {than} a hand-written `mlflow.start_span` "
        f"wrapper recording the same data costs ({_us(theirs['latency_us'])}); measured on loopback, "
        f"{figures['cores']} cores, MLflow {figures['mlflow']}, {figures['date']}."
    )


_PEER_ROWS = {
    "mlflow_ollama": "**mlflow_ollama**",
    "bare_span": "a bare MLflow span, nothing recorded",
    "mlflow_trace": "`@mlflow.trace` around `Client.chat`",
    "blog": "a hand-written decorator (`mlflow.start_span`, inputs and outputs)",
    "openai_autolog": "`mlflow.openai.autolog()`, OpenAI SDK to `/v1`",
    "openllmetry": "OpenLLMetry",
    "openinference": "OpenInference",
}


def peers() -> str:
    """The side-by-side table: added latency and CPU per call, each route, short chat and history."""
    figures = _peers()
    otlp = figures["otlp"]
    lines = [
        f"Side by side, {figures['date']}, {figures['cores']} cores, MLflow {figures['mlflow']}, OTLP export running:",
        "",
        "| per call | short chat: latency | short chat: CPU, export included "
        "| history + tools: latency | history + tools: CPU, export included |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in _PEER_ROWS.items():
        cells = []
        for case in ("short", "history"):
            latency, cpu = otlp[case][name]["latency_us"], otlp[case][name]["cpu_us"]
            times = (
                f" ({cpu / otlp[case]['bare_span']['cpu_us']:.2f} x the bare span)" if name == "mlflow_ollama" else ""
            )
            cells += [_us(latency), _us(cpu) + times]
        if name == "mlflow_ollama":
            cells = [f"**{cell}**" for cell in cells]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def openai_route() -> str:
    """MLflow's documented route for Ollama against ours: added latency and CPU per call."""
    otlp = _peers()["otlp"]
    lines = [
        "| | added latency, short chat | added CPU per call, short chat "
        "| added latency, 20 messages + 5 tools | added CPU per call, 20 messages + 5 tools |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("openai_autolog", "`mlflow.openai.autolog()` via `/v1`"), ("mlflow_ollama", "mlflow-ollama")):
        cells = [_us(otlp[case][name][kind]) for case in ("short", "history") for kind in ("latency_us", "cpu_us")]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _table(page: str, name: str) -> str:
    """A table a benchmark script marked in the page it wrote (``<!-- table: NAME -->``)."""
    text = (ROOT / "docs" / "benchmarks" / page).read_text(encoding="utf-8")
    found = re.search(rf"<!-- table: {name} -->\n(.*?)<!-- end table -->", text, re.DOTALL)
    if found is None:
        raise SystemExit(f"docs/benchmarks/{page} has no {name} table: run nox -s bench_peers")
    return found.group(1).rstrip()


def cpu_split() -> str:
    """The split of our added CPU, as ``benchmarks/cpu_split.py`` last wrote it in its page."""
    return f"From [benchmarks/cpu_split.md](benchmarks/cpu_split.md):\n\n{_table('cpu_split.md', 'split')}"


def goals() -> str:
    """The goals the side-by-side benchmark checks, met or not, as it last wrote them in its page."""
    figures = _peers()
    return "\n".join(
        [
            f"From [benchmarks/peers.md](benchmarks/peers.md) ({figures['date']}, {figures['cores']} cores, "
            f"MLflow {figures['mlflow']}):",
            "",
            _table("peers.md", "goals-routes"),
            "",
            _table("peers.md", "goals-peers"),
        ]
    )


def in_process() -> str:
    """Where a traced call's time goes in one process, stub client, OTLP export: the peers page's table."""
    return _table("peers.md", "micro-otlp")


GENERATORS: dict[str, Callable[[], str]] = {
    "cpu-split": cpu_split,
    "cost": cost,
    "environment": environment,
    "goals": goals,
    "in-process": in_process,
    "openai-route": openai_route,
    "peers": peers,
    "support": support,
    "untraced": untraced,
}


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
