"""Run inside a user-like venv (their MLflow first, then our wheel): one traced chat, read back.

``nox -s install`` makes the venvs and runs this with the venv's own Python. It uses nothing but
what the wheel and the user's MLflow installed: no pytest, no source tree on ``sys.path``. It
prints a JSON report and exits non-zero if what it saw is not what ``--expect`` says:

- ``traced``: ``autolog()`` is quiet about the install, and one chat gives one ``ollama.chat`` span
  with the chat view, read back from a local sqlite store;
- ``mixed``: ``autolog()`` warns once that the MLflow distributions are not one version, naming
  them and the fix; the Ollama call itself still returns its answer, even where the mix leaves
  ``import mlflow`` broken (it does for MLflow 3.1.0 under mlflow-tracing 3.17.2).

With ``--launched`` it does not call ``autolog()`` nor import mlflow_ollama: it runs under the
wheel's ``mlflow-ollama run``, whose bootstrap must switch autolog on when ``ollama`` is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

STORE = Path(tempfile.mkdtemp(prefix="mlflow-ollama-install-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{STORE / 'mlflow.db'}"
os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""  # no price lookups over the network


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _versions() -> dict[str, str]:
    found = {}
    for name in ("mlflow-ollama", "mlflow", "mlflow-skinny", "mlflow-tracing", "opentelemetry-sdk", "sqlalchemy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def _traced_chat(report: dict[str, Any]) -> None:
    # The call first, with nothing but ollama imported by us: in a broken install, `import mlflow`
    # fails, and the Ollama call must still work with autolog() on.
    import ollama

    from mlflow_ollama.testing import OllamaDouble

    try:
        import mlflow

        mlflow.set_experiment("install-check")
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    with OllamaDouble() as server:
        reply = ollama.Client(host=server.url).chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    report["reply"] = reply.message.content
    if "error" in report:
        return
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(return_type="list")
    report["traces"] = len(traces)
    spans = [span for trace in traces for span in trace.data.spans]
    report["spans"] = [span.name for span in spans]
    report["chat_view"] = [span.attributes.get("mlflow.chat.messages") for span in spans]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect", choices=["traced", "mixed"], required=True)
    parser.add_argument("--launched", action="store_true", help="run under `mlflow-ollama run`: no autolog() here")
    args = parser.parse_args()

    report: dict[str, Any] = {"python": sys.version.split()[0], "versions": _versions()}
    collect = _Collect()
    logging.getLogger("mlflow_ollama").addHandler(collect)

    if args.launched:
        # The bootstrap imports nothing until ollama is imported (in _traced_chat).
        report["imported_at_start"] = "mlflow_ollama" in sys.modules
    else:
        import mlflow_ollama

        mlflow_ollama.autolog()
    report["warnings"] = collect.messages
    try:
        _traced_chat(report)
    except Exception as exc:  # reported, then judged below
        report.setdefault("error", f"{type(exc).__name__}: {exc}")
    print(json.dumps(report, indent=2))

    failures = []
    if report.get("imported_at_start"):
        failures.append("mlflow_ollama was imported at interpreter start, before ollama")
    if args.expect == "traced":
        if collect.messages:
            failures.append(f"autolog() warned: {collect.messages}")
        if report.get("traces") != 1 or report.get("spans") != ["ollama.chat"]:
            failures.append(f"expected one trace with one ollama.chat span, got {report.get('spans')}")
        elif report["chat_view"][0] != [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "You said: hi"},
        ]:
            failures.append(f"unexpected chat view: {report['chat_view']}")
    else:
        mixed = [m for m in collect.messages if "not one version" in m]
        if len(mixed) != 1:
            failures.append(f"expected one mixed-install warning, got {collect.messages}")
        else:
            for name in ("mlflow", "mlflow-skinny", "mlflow-tracing"):
                if name in report["versions"] and f"{name} {report['versions'][name]}" in mixed[0]:
                    continue
                failures.append(f"the warning does not name {name} {report['versions'].get(name)}")
            if "pip uninstall -y" not in mixed[0]:
                failures.append("the warning does not give the command that fixes it")
        if report.get("reply") != "You said: hi":  # tracing must never break the call
            failures.append(f"the Ollama call did not return its answer: {report.get('error')}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
