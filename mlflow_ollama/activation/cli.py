"""The ``mlflow-ollama`` command line (also ``python -m mlflow_ollama``): ``run`` and ``doctor``.

``mlflow-ollama run [OPTIONS] COMMAND [ARGS...]`` runs a command with every Ollama call of every
Python process it starts traced, without changing the app (``_launcher``);
``mlflow-ollama doctor`` checks why traces do not show up (``doctor``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mlflow_ollama._config import AUTOLOG_ENV, LOG_CONTENT_ENV, LOG_EMBEDDINGS_ENV, MODEL_DETAILS_ENV, SILENT_ENV

__all__ = ["build_parser", "main", "run_settings"]

_RUN_EPILOG = """\
Everything from COMMAND on is passed to it untouched; put OPTIONS before it (or end them with --).
Configure MLflow through its own variables, e.g.
  MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_EXPERIMENT_NAME=my-app %(prog)s python app.py
MLFLOW_OLLAMA_AUTOLOG=false runs the command untraced."""


def _version() -> str:
    import importlib.metadata  # ~0.03 s: only for --version, not before every `run`

    try:
        return importlib.metadata.version("mlflow-ollama")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser(prog: str = "mlflow-ollama") -> argparse.ArgumentParser:
    """The argument parser: the ``run`` and ``doctor`` commands and their options."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="MLflow Tracing for the ollama Python SDK, switched on from outside the app.",
        allow_abbrev=False,  # `--dis` is not `--disable`: a typo should be an error, not a guess
    )
    parser.add_argument("--version", action="store_true", help="show the version and exit")
    commands = parser.add_subparsers(dest="subcommand", metavar="{run,doctor}")
    run = commands.add_parser(
        "run",
        help="run a command with every Ollama call traced, in every Python process it starts",
        description="Run COMMAND with autolog on in every Python process it starts, children included. "
        "The app needs no change: it need not import mlflow or mlflow_ollama.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    run.add_argument(
        "--log-content",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"record prompts and replies (default), or not: sets {LOG_CONTENT_ENV}",
    )
    run.add_argument(
        "--log-embeddings",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"record embedding vectors, not just their count and size: sets {LOG_EMBEDDINGS_ENV}",
    )
    run.add_argument(
        "--model-details",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record each model's family, size, quantization, digest and GPU share, looked up from the "
        f"server and cached: sets {MODEL_DETAILS_ENV}",
    )
    run.add_argument(
        "--silent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"log the plugin's own warnings at debug level: sets {SILENT_ENV}",
    )
    run.add_argument("--disable", action="store_true", help=f"run the command untraced: sets {AUTOLOG_ENV}=false")
    # Shown in the help only: main() takes the command off before argparse sees it, so that its own
    # options (python -m x --help) are never read as ours.
    run.add_argument("program", nargs="?", metavar="COMMAND", help="the program to run, e.g. python")
    run.add_argument("arguments", nargs="*", metavar="ARGS", help="its arguments")
    doctor = commands.add_parser(
        "doctor",
        help="check why no trace shows up: versions, switches, tracking store, experiment, Ollama, a traced call",
        description="Check, with this environment, everything a trace needs, and make one traced call read "
        "back from the store. Each check prints its finding and, if something is wrong, the fix. "
        "Exit status 1 when a check failed.",
        allow_abbrev=False,
    )
    doctor.add_argument(
        "--double",
        action="store_true",
        help="make the traced call against the built-in loopback Ollama double, not the server at OLLAMA_HOST",
    )
    doctor.add_argument("--model", help="the model for the traced call (default: the first the server lists)")
    return parser


def _split_run(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """``run``'s own options, and the command: everything from the first non-option (or after ``--``)."""
    for index, argument in enumerate(arguments):
        if argument == "--":
            return list(arguments[:index]), list(arguments[index + 1 :])
        if not argument.startswith("-"):
            return list(arguments[:index]), list(arguments[index:])
    return list(arguments), []


def run_settings(options: argparse.Namespace) -> dict[str, str]:
    """The environment variables ``run``'s flags stand for; unset flags leave the environment as it is."""
    settings: dict[str, str] = {}
    for name, value in (
        (LOG_CONTENT_ENV, options.log_content),
        (LOG_EMBEDDINGS_ENV, options.log_embeddings),
        (MODEL_DETAILS_ENV, options.model_details),
        (SILENT_ENV, options.silent),
    ):
        if value is not None:
            settings[name] = "true" if value else "false"
    if options.disable:
        settings[AUTOLOG_ENV] = "false"
    return settings


def main(argv: Sequence[str] | None = None, prog: str = "mlflow-ollama") -> int:
    """Run the command line; the exit status. ``run`` on POSIX does not return: the command replaces us."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    command: list[str] = []
    if arguments and arguments[0] == "run":
        options, command = _split_run(arguments[1:])
        arguments = ["run", *options]
    parsed = parser.parse_args(arguments)
    if parsed.version:
        print(f"mlflow-ollama {_version()}")
        return 0
    if parsed.subcommand is None:
        parser.error("a command is required: run or doctor (see --help)")
    if parsed.subcommand == "doctor":
        from mlflow_ollama.activation import doctor

        return doctor.main(double=parsed.double, model=parsed.model)
    if not command:
        parser.error("run: a command to run is required, e.g. mlflow-ollama run python app.py")
    from mlflow_ollama.activation import _launcher

    return _launcher.execute(command, _launcher.child_environment(os.environ, run_settings(parsed)))
