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
  CPU, the table ``benchmarks/cpu_split.py`` marks in its page;
- ``floor``, ``previews``, ``streaming``, ``unreachable``, ``launcher``: the results table of
  ``benchmarks/mlflow_floor.py``, ``benchmarks/previews.py``, ``benchmarks/stream_overhead.py``,
  ``benchmarks/unreachable_server.py`` and ``benchmarks/launcher_startup.py``, with what it was
  measured on, from the page each wrote;
- ``workers``: what worker processes store, MLflow alone and with mlflow-ollama, from
  ``docs/benchmarks/workers.json`` (written by ``benchmarks/workers.py``);
- ``scale``: what each route to one tracking server held, from ``docs/benchmarks/scale.json`` and the
  conditions line of the page ``benchmarks/scale.py`` wrote beside it.

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
# The published site: the README is PyPI's page too, where only absolute links work.
SITE = re.findall(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE)[0]
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
        f"{_us(figures['otlp']['short']['mlflow_ollama']['latency_us'])} with traces exported over "
        f"[OTLP]({SITE}#glossary), and by "
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


def _results(page: str, conditions: str = "Measured ") -> str:
    """The first table a benchmark wrote in its page, after where it comes from and its ``conditions`` line."""
    lines = (ROOT / "docs" / "benchmarks" / page).read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise SystemExit(f"docs/benchmarks/{page} has no table")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    measured = [line for line in lines[:start] if line.startswith(conditions)]
    return "\n".join([f"From [benchmarks/{page}](benchmarks/{page}).", *measured, "", *lines[start:end]])


def floor() -> str:
    """MLflow's own cost per span, release by release, and ours over it: ``benchmarks/mlflow_floor.py``."""
    return _results("floor.md")


def previews() -> str:
    """What setting trace previews costs and saves: ``benchmarks/previews.py``."""
    return _results("previews.md")


def streaming() -> str:
    """What tracing adds per streamed chunk: ``benchmarks/stream_overhead.py``."""
    return _results("streaming.md")


def unreachable() -> str:
    """Calls and exit time against a tracking server that is down: ``benchmarks/unreachable_server.py``."""
    return _results("unreachable.md", conditions="Written by ")


def launcher() -> str:
    """What ``mlflow-ollama run`` adds to a process's start: ``benchmarks/launcher_startup.py``."""
    return _results("launcher.md", conditions="Generated by ")


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


_SCALE_ROUTES = {
    "untraced": "untraced, for reference",
    "sqlite": "sqlite store, local file (baseline)",
    "default": "default export to the server",
    "otlp": "OTLP to the server's `/v1/traces`",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def scale() -> str:
    """Per route, the highest call rate that held and the CPU it took: the scale benchmark's summary."""
    folder = ROOT / "docs" / "benchmarks"
    trials: dict[str, list[dict[str, Any]]] = json.loads((folder / "scale.json").read_text(encoding="utf-8"))
    page = (folder / "scale.md").read_text(encoding="utf-8").splitlines()
    measured = next(line for line in page if line.startswith("Measured "))
    rows, per_core = [], {}
    for route, label in _SCALE_ROUTES.items():
        runs = sorted(trials[route], key=lambda trial: trial["rate"])
        held = [trial for trial in runs if trial["holds"]]
        best = held[-1]
        failed = next((trial for trial in runs if not trial["holds"] and trial["rate"] > best["rate"]), None)
        total = best["rate"] * best["processes"]
        beyond = "none up to the highest rate tried"
        if failed is not None:
            beyond = f"{failed['processes']} x {failed['rate']:g} calls/s: {failed['why']}"
        rows.append(
            f"| {label} | {f'{total:,.1f}'.removesuffix('.0')} calls/s | {_ms(best['cpu_ms_per_call'])} | "
            f"{_ms(best['server_cpu_ms_per_trace'])} | {_ms(best['db_cpu_ms_per_trace'])} | {beyond} |"
        )
        if server := best["server_cpu_ms_per_trace"]:
            per_core[route] = (1000 / server, best["db_cpu_ms_per_trace"] / server)
    header = [
        f"From [benchmarks/scale.md](benchmarks/scale.md), where every trial is listed. {measured}",
        "",
        "| route | highest rate that held, all processes | app CPU per call there | server CPU per trace | "
        "PostgreSQL CPU per trace | first rate that did not hold (per process) |",
        "|---|---|---|---|---|---|",
    ]
    cores = [
        f"{'OTLP' if route == 'otlp' else 'default'} route: one server core per "
        f"{traces:.0f} traces/s, PostgreSQL needing {share:.0%} of the server's CPU"
        for route, (traces, share) in per_core.items()
    ]
    return "\n".join([*header, *rows, "", f"Server CPU at the rate that held, as cores: {'; '.join(cores)}."])


_WORKER_CASES = {
    "pool fork, close+join": "`Pool` by fork, `close()` + `join()`",
    "pool fork, with": "`Pool` by fork, `with` (ends with `terminate()`)",
    "pool spawn, close+join": "`Pool` by spawn, `close()` + `join()`",
    "pool spawn, with": "`Pool` by spawn, `with`",
    "pool forkserver, close+join": "`Pool` by forkserver, `close()` + `join()`",
    "pool forkserver, with": "`Pool` by forkserver, `with`",
    "ProcessPoolExecutor fork": "`ProcessPoolExecutor` by fork",
    "ProcessPoolExecutor spawn": "`ProcessPoolExecutor` by spawn",
    "os.fork, sys.exit": "`os.fork()` child ending with `sys.exit`",
    "os.fork, os._exit": "`os.fork()` child ending with `os._exit`",
    "os.fork, killed (SIGKILL) after the calls": "`os.fork()` child killed with SIGKILL after its calls",
}


def workers() -> str:
    """Traces stored by worker processes, MLflow's default export: MLflow alone and with mlflow-ollama."""
    trials = json.loads((ROOT / "docs" / "benchmarks" / "workers.json").read_text(encoding="utf-8"))
    found = {(t["case"], t["tracer"], t["warm_up"]): t for t in trials if t["route"] == "mlflow"}

    def stored(case: str, tracer: str, warm_up: bool) -> str:
        trial = found[case, tracer, warm_up]
        hung = f"; {trial['killed']} **never exited** and were killed" if trial["killed"] else ""
        return f"{trial['stored']} of {trial['calls']}{hung}"

    rows = []
    for case, label in _WORKER_CASES.items():
        ours = {stored(case, "ours", warm_up) for warm_up in (False, True)}
        both = ours.pop() if len(ours) == 1 else " / ".join(stored(case, "ours", w) for w in (False, True))
        rows.append(f"| {label} | {stored(case, 'mlflow', False)} | {stored(case, 'mlflow', True)} | {both} |")
    if unknown := {case for case, _, _ in found} - set(_WORKER_CASES):
        raise SystemExit(f"docs/benchmarks/workers.json has cases with no label here: {sorted(unknown)}")
    return "\n".join(
        [
            "| how the work is run | MLflow alone, no warm-up | MLflow alone, warm-up | mlflow-ollama, either |",
            "|---|---:|---:|---:|",
            *rows,
        ]
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "cpu-split": cpu_split,
    "cost": cost,
    "environment": environment,
    "floor": floor,
    "goals": goals,
    "in-process": in_process,
    "launcher": launcher,
    "openai-route": openai_route,
    "peers": peers,
    "previews": previews,
    "scale": scale,
    "streaming": streaming,
    "support": support,
    "unreachable": unreachable,
    "untraced": untraced,
    "workers": workers,
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
