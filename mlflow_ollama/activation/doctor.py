"""``mlflow-ollama doctor``: the checks to run when no trace shows up, each with its finding and its fix.

In order: the installed versions (a mixed MLflow install among them), the switches that turn
tracing off (ours and MLflow's), the tracking URI and whether it answers, the experiment, the
Ollama server at ``OLLAMA_HOST`` (its version, and the models it has loaded: context length, and
whether they run on the GPU, the CPU or split, as ``ollama ps`` shows), and one real traced call,
read back from the store. The checks read the same environment your app would, in this process:
run the doctor where you run the app.

The exit status is 1 when a check failed, else 0. Warnings do not fail: they name settings that
send traces somewhere you may not be looking.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import platform
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlflow_ollama import _compat, _exit
from mlflow_ollama._config import ACCEPTED, AUTOLOG_ENV, LOG_CONTENT_ENV, meaning, switched_off
from mlflow_ollama._safety import redact_url
from mlflow_ollama.activation import _experiment

__all__ = ["Doctor", "Finding", "main", "processor"]

Status = Literal["ok", "warn", "fail", "skip"]
_LABELS: dict[Status, str] = {"ok": "[ok]  ", "warn": "[WARN]", "fail": "[FAIL]", "skip": "[skip]"}

TIMEOUT_SECONDS = 5
"""How long each probe waits. MLflow's own HTTP settings are lowered to this, in this process only:
with its defaults, a request to a tracking server that is down is retried for about four minutes."""

DOCTOR_PROMPT = "mlflow-ollama doctor: reply with OK."


@dataclass
class Finding:
    """One check's result: what was found and, when something is wrong, what to do about it."""

    check: str
    status: Status
    finding: str
    fix: str = ""

    def render(self) -> str:
        """The finding as printed: a label, the check, the finding, and the fix on its own line."""
        lines = [f"{_LABELS[self.status]} {self.check}: {self.finding}"]
        if self.fix:
            lines.append(f"{'':7}fix: {self.fix}")
        return "\n".join(lines)


@dataclass
class Doctor:
    """The checks, run in order; later ones use what earlier ones found.

    Args:
        double: Make the traced call against the built-in loopback Ollama double instead of the
            server at ``OLLAMA_HOST``; a server that does not answer is then a warning, not a failure.
        model: The model for the traced call; by default the first one the server lists
            (``llama3.2`` with ``double``).
    """

    double: bool = False
    model: str | None = None
    findings: list[Finding] = field(default_factory=list, init=False)
    """Every finding so far, in order."""
    # What earlier checks found, for the later ones.
    _mlflow_ok: bool = field(default=False, init=False, repr=False)
    _tracking_ok: bool = field(default=False, init=False, repr=False)
    _tracking_uri: str | None = field(default=None, init=False, repr=False)
    _models: list[str] = field(default_factory=list, init=False, repr=False)

    def add(self, check: str, status: Status, finding: str, fix: str = "") -> Finding:
        """Record a finding."""
        found = Finding(check, status, finding, fix)
        self.findings.append(found)
        return found

    def run(self) -> int:
        """Run every check, printing each finding as it comes; the exit status."""
        for check in (self.versions, self.switches, self.tracking, self.experiment, self.ollama, self.traced_call):
            before = len(self.findings)
            try:
                check()
            except Exception as exc:  # a bug in a check must not hide the others
                self.add(check.__name__.replace("_", " "), "fail", f"the check itself failed: {_reason(exc)}")
            for finding in self.findings[before:]:
                print(finding.render(), flush=True)
        failed = sum(f.status == "fail" for f in self.findings)
        warned = sum(f.status == "warn" for f in self.findings)
        print()
        if failed:
            print(f"{failed} problem(s) found{f', {warned} warning(s)' if warned else ''}: see the fixes above.")
        else:
            print(f"No problem found{f' ({warned} warning(s) above)' if warned else ''}.")
        return 1 if failed else 0

    # -- versions -------------------------------------------------------------------------------

    def versions(self) -> None:
        """Python, mlflow-ollama, ollama, wrapt and MLflow's distributions; a mixed install; MLflow imports."""
        found = {"Python": platform.python_version()}
        for name in ("mlflow-ollama", "ollama", "wrapt"):
            found[name] = _version(name) or "not installed"
        mlflow_versions = _compat.installed_versions()
        found.update(mlflow_versions)
        described = ", ".join(f"{name} {version}" for name, version in found.items())
        problems = _compat.problems(mlflow_versions)
        if found["ollama"] == "not installed":
            self.add("versions", "fail", f"{described}: no ollama SDK", 'python -m pip install "ollama>=0.4"')
        elif not mlflow_versions:
            self.add("versions", "fail", f"{described}: no MLflow", 'python -m pip install "mlflow-ollama[mlflow]"')
        elif problems:
            message, _, fix = problems[0].partition(" Fix: ")
            self.add("versions", "fail", message.removeprefix("mlflow-ollama: "), fix)
        else:
            self.add("versions", "ok", described)
        try:
            import mlflow  # noqa: F401
        except Exception as exc:
            self.add(
                "versions",
                "fail",
                f"MLflow does not import: {type(exc).__name__}: {exc}",
                "reinstall MLflow at one version (see the versions finding above)",
            )
            return
        self._mlflow_ok = True

    # -- switches -------------------------------------------------------------------------------

    def switches(self) -> None:
        """Ours (``MLFLOW_OLLAMA_AUTOLOG``, ``MLFLOW_OLLAMA_LOG_CONTENT``) and MLflow's that stop or divert traces."""
        autolog = os.environ.get(AUTOLOG_ENV)
        if meaning(autolog) is False:
            self.add("switches", "fail", f"{AUTOLOG_ENV}={autolog!r} turns tracing off", f"unset {AUTOLOG_ENV}")
        elif autolog is not None and meaning(autolog) is None:
            unknown = f"{AUTOLOG_ENV}={autolog!r} is not a known value (tracing stays on)"
            self.add("switches", "warn", unknown, f"use {ACCEPTED}")
        if meaning(os.environ.get(LOG_CONTENT_ENV)) is False:
            hidden = f"{LOG_CONTENT_ENV}=false: traces are recorded without prompts or replies (model, tokens stay)"
            self.add("switches", "ok", hidden)
        ratio = os.environ.get("MLFLOW_TRACE_SAMPLING_RATIO", "").strip()
        if ratio:
            try:
                sampled = float(ratio)
            except ValueError:
                sampled = 1.0
            if sampled <= 0:
                self.add(
                    "switches",
                    "fail",
                    f"MLFLOW_TRACE_SAMPLING_RATIO={ratio} keeps no trace",
                    "unset MLFLOW_TRACE_SAMPLING_RATIO (or set a ratio above 0, up to 1)",
                )
            elif sampled < 1:
                share = f"MLFLOW_TRACE_SAMPLING_RATIO={ratio}: MLflow keeps only that share of traces"
                self.add("switches", "warn", share)
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            self.add(
                "switches",
                "fail",
                "OTEL_SDK_DISABLED=true: OpenTelemetry, which MLflow traces with, makes no span",
                "unset OTEL_SDK_DISABLED",
            )
        route, endpoint = _export_route()
        if route == "otlp-server":
            self.add(
                "switches",
                "ok",
                f"traces go by OTLP to the tracking server's own {redact_url(endpoint)}, which stores them; "
                "none of the switches turns tracing off",
            )
        elif route == "otlp":
            self.add(
                "switches",
                "warn",
                f"traces go to the OTLP endpoint {redact_url(endpoint)}, not to the MLflow tracking store",
                "look for them there; to keep them in the tracking store as well, set "
                "MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT=true (not when the endpoint is the tracking server itself, "
                "which would then store every trace twice)",
            )
        if not any(f.check == "switches" for f in self.findings):
            self.add("switches", "ok", f"none turns tracing off ({AUTOLOG_ENV}, MLFLOW_TRACE_SAMPLING_RATIO, OTEL_*)")

    # -- tracking URI ---------------------------------------------------------------------------

    def tracking(self) -> None:
        """Where traces go, and whether that store answers."""
        if not self._mlflow_ok:
            self.add("tracking URI", "skip", "MLflow does not import")
            return
        import mlflow

        given = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        tracing_only = _tracing_only()
        if tracing_only and not given.startswith(("http://", "https://", "databricks")):
            what = f"MLFLOW_TRACKING_URI={redact_url(given)}" if given else "MLFLOW_TRACKING_URI is not set"
            self.add(
                "tracking URI",
                "fail",
                f"{what}, and mlflow-tracing alone can only send traces to a tracking server",
                "set MLFLOW_TRACKING_URI=http://HOST:PORT of a running `mlflow server`, "
                'or python -m pip install "mlflow-ollama[mlflow]" for a local store',
            )
            return
        uri = mlflow.get_tracking_uri()
        self._tracking_uri = uri
        source = "from MLFLOW_TRACKING_URI" if given else "MLflow's default: MLFLOW_TRACKING_URI is not set"
        shown = f"{redact_url(uri)} ({source})"
        if uri.startswith(("http://", "https://")):
            self._probe_server(uri, shown)
            return
        where = ""
        if uri.startswith("sqlite:///"):
            path = uri.removeprefix("sqlite:///")
            if not given:
                where = "; an app run from another directory writes its own mlflow.db there"
            elif not os.path.isabs(path):
                here = Path(path).resolve()
                where = f"; relative: each app writes it in its own working directory (from here: {here})"
            if not Path(path).exists():
                self._tracking_ok = True
                self.add("tracking URI", "ok", f"{shown}: no such file yet, the first trace creates it{where}")
                return
        self._probe_store(uri, shown, where)

    def _probe_server(self, uri: str, shown: str) -> None:
        url = f"{redact_url(uri).rstrip('/')}/health"  # /health needs no credentials; urllib takes none in a URL
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                answered = response.status == 200
                detail = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            answered, detail = False, f"HTTP {exc.code} from /health"
        except (OSError, ValueError) as exc:
            answered, detail = False, _reason(exc)
        if answered:
            self._tracking_ok = True
            self.add("tracking URI", "ok", f"{shown} answers")
        else:
            self.add(
                "tracking URI",
                "fail",
                f"{shown} does not answer: {detail}",
                "start the tracking server (mlflow server --host 127.0.0.1 --port PORT), "
                "or point MLFLOW_TRACKING_URI at the one you use",
            )

    def _probe_store(self, uri: str, shown: str, where: str) -> None:
        try:
            _tracking_client(uri).search_experiments(max_results=1)
        except Exception as exc:
            self.add(
                "tracking URI",
                "fail",
                f"{shown} cannot be read: {_reason(exc)}",
                "fix the store (for an old schema: mlflow db upgrade URI), or point MLFLOW_TRACKING_URI elsewhere",
            )
            return
        self._tracking_ok = True
        self.add("tracking URI", "ok", f"{shown} opens{where}")

    # -- experiment -----------------------------------------------------------------------------

    def experiment(self) -> None:
        """The experiment the environment names (or the default), and whether traces can go there."""
        if not self._tracking_ok or self._tracking_uri is None:
            self.add("experiment", "skip", "no usable tracking store (see above)")
            return
        variable, kind, value = _experiment.requested()
        label = f"{variable}={value!r}" if variable != "the default" else "not set, so MLflow's Default experiment (0)"
        client = _tracking_client(self._tracking_uri)
        try:
            found = client.get_experiment_by_name(value) if kind == "name" else _get_experiment(client, value)
        except Exception as exc:
            self.add("experiment", "fail", f"{label}: the lookup failed: {_reason(exc)}")
            return
        wanted_id = os.environ.get(_experiment.EXPERIMENT_ID_ENV, "").strip()
        if found is None and kind == "name":
            self.add("experiment", "ok", f"{label}: does not exist yet; the first trace creates it")
        elif found is None:
            self.add(
                "experiment",
                "fail",
                f"{label}: no such experiment at {redact_url(self._tracking_uri)}",
                f"use an existing id, or set {_experiment.EXPERIMENT_NAME_ENV}=NAME instead (created when missing)",
            )
        elif getattr(found, "lifecycle_stage", "active") != "active":
            self.add(
                "experiment",
                "fail",
                f"{label}: experiment {found.experiment_id} is deleted, and MLflow records nothing into it",
                f"restore it (mlflow experiments restore --experiment-id {found.experiment_id}) or choose another",
            )
        elif kind == "name" and wanted_id and wanted_id != found.experiment_id:
            self.add(
                "experiment",
                "fail",
                f"{label} is experiment {found.experiment_id}, but {_experiment.EXPERIMENT_ID_ENV}={wanted_id!r}: "
                "MLflow refuses the pair",
                "unset one of them",
            )
        else:
            self.add("experiment", "ok", f"{label}: experiment {found.experiment_id}, {found.name!r}")
        if _tracing_only() and self.findings[-1].status == "ok":
            self.add(
                "experiment",
                "warn",
                "with mlflow-tracing alone, MLflow 3.17 starts no span for an experiment from the environment (or "
                "none) unless the app runs under `mlflow-ollama run` or `%load_ext mlflow_ollama`",
                "run the app with `mlflow-ollama run`, or call mlflow.set_experiment(...) in its code",
            )

    # -- Ollama ---------------------------------------------------------------------------------

    def ollama(self) -> None:
        """The server at ``OLLAMA_HOST``: does it answer, which models does it have."""
        try:
            import ollama
        except Exception as exc:
            self.add("Ollama server", "skip", f"the ollama SDK does not import: {_reason(exc)}")
            return
        client = ollama.Client(timeout=TIMEOUT_SECONDS)
        host = _host(client)
        source = "OLLAMA_HOST" if os.environ.get("OLLAMA_HOST") else "the SDK's default: OLLAMA_HOST is not set"
        status: Status = "warn" if self.double else "fail"
        also = " (the traced call uses the loopback double)" if self.double else ""
        try:
            listed = client.list()
        except Exception as exc:
            self.add(
                "Ollama server",
                status,
                f"no Ollama server answers at {host} ({source}): {_reason(exc)}{also}",
                "start it (ollama serve), or set OLLAMA_HOST to the server your app uses",
            )
            return
        self._models = [str(m.model) for m in listed.models if m.model]
        if not self._models:
            self.add(
                "Ollama server",
                status,
                f"{host} ({source}) answers, but has no model{also}",
                "ollama pull llama3.2 (or the model your app uses)",
            )
            return
        shown = ", ".join(self._models[:5]) + (f" and {len(self._models) - 5} more" if len(self._models) > 5 else "")
        version = _server_json(client, "/api/version")
        number = version.get("version") if isinstance(version, dict) else None
        said = f" (Ollama {number})" if isinstance(number, str) and number else ""
        self.add("Ollama server", "ok", f"{host} ({source}) answers{said}; models: {shown}")
        self._loaded_models(client)

    def _loaded_models(self, client: Any) -> None:
        """The models the server has loaded now, with their context length and where they run, as ``ollama ps``."""
        check = "loaded models"
        answer = _server_json(client, "/api/ps")
        models = answer.get("models") if isinstance(answer, dict) else None
        if not isinstance(models, list):
            self.add(check, "skip", "the server did not say which models it has loaded (/api/ps)")
            return
        if not models:
            self.add(check, "ok", "none loaded now (a model loads on its first call)")
            return
        described, on_cpu = [], []
        for model in models:
            if not isinstance(model, dict):
                continue
            name = str(model.get("name") or model.get("model") or "?")
            where = processor(model.get("size"), model.get("size_vram"))
            context = model.get("context_length")
            parts = [f"context {context}" if isinstance(context, int) and context > 0 else "", where or ""]
            described.append(f"{name} ({', '.join(p for p in parts if p) or 'no details'})")
            if where is not None and where != "100% GPU":
                on_cpu.append(f"{name} ({where})")
        shown = "; ".join(described)
        if on_cpu:
            self.add(
                check,
                "warn",
                f"{shown}. Running on the CPU, wholly or in part, is slow: {', '.join(on_cpu)}",
                "free GPU memory (unload other models: ollama stop NAME), or use a smaller model, quantization "
                "or num_ctx; with no GPU, this is expected",
            )
        else:
            self.add(check, "ok", shown)

    # -- one traced call ------------------------------------------------------------------------

    def traced_call(self) -> None:
        """One real call through the patched SDK, the trace read back from the store."""
        check = "traced call"
        if not (self._mlflow_ok and self._tracking_ok):
            self.add(check, "skip", "no call made: MLflow or its store is not usable (see above)")
            return
        if not self.double and not self._models:
            self.add(
                check,
                "skip",
                "no call made: no Ollama server with a model (see above)",
                "mlflow-ollama doctor --double checks the tracing path against the built-in loopback Ollama double",
            )
            return
        import mlflow

        from mlflow_ollama.activation import _autolog
        from mlflow_ollama.testing import OllamaDouble

        model = self.model or ("llama3.2" if self.double else self._models[0])
        with contextlib.ExitStack() as stack:
            host = stack.enter_context(OllamaDouble()).url if self.double else None
            _autolog.activate()  # as `mlflow-ollama run` does once the app imports ollama
            import ollama

            client = ollama.Client(host=host, timeout=120)
            where = "the loopback double" if self.double else _host(client)
            before = mlflow.get_last_active_trace_id()
            # By OTLP, MLflow keeps no "last active trace": the span's own trace id is noted instead.
            route, endpoint = _export_route()
            noted = _SpanNotes() if route != "store" else None
            with _mlflow_warnings() as warnings:
                try:
                    if noted is not None:
                        noted.attach()
                    kind = _call(client, model)
                except Exception as exc:
                    self.add(check, "fail", f"{model} at {where} failed: {_reason(exc)}", "use --model NAME")
                    return
            trace_id = mlflow.get_last_active_trace_id() if noted is None else noted.trace_id(f"ollama.{kind}")
            if trace_id is not None and route == "otlp-server":
                trace_id = f"tr-{trace_id}"  # the id MLflow's server gives a trace it takes by OTLP
        if trace_id is None or trace_id == before:
            said = f"; MLflow said: {warnings[0]}" if warnings else ""
            if switched_off():
                said = f" ({AUTOLOG_ENV} is off){said}"
            self.add(check, "fail", f"the {kind} call to {model} at {where} worked, but made no trace{said}")
            return
        if route == "otlp":
            _flush_export()
            self.add(
                check,
                "ok",
                f"ollama.{kind} to {model} at {where} recorded as trace {trace_id} and exported by OTLP to "
                f"{redact_url(endpoint)}; the doctor cannot read it back from there: look for it in that backend",
            )
            return
        self._read_back(check, trace_id, kind, f"{model} at {where}")

    def _read_back(self, check: str, trace_id: str, kind: str, what: str) -> None:
        from mlflow.tracing.client import TracingClient

        _flush_export()
        # A trace that went by OTLP is stored when the server has taken the request: allow it a moment.
        deadline = time.monotonic() + (10 if _export_route()[0] == "otlp-server" else 0)
        while True:
            try:
                trace = TracingClient(self._tracking_uri).get_trace(trace_id)
                break
            except Exception as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                self.add(check, "fail", f"trace {trace_id} was made but the store does not have it: {_reason(exc)}")
                return
        spans = [s for s in trace.data.spans if s.name == f"ollama.{kind}"]
        if not spans:
            names = [s.name for s in trace.data.spans]
            self.add(check, "fail", f"trace {trace_id} has no ollama.{kind} span (spans: {names})")
            return
        experiment_id = trace.info.experiment_id
        uri = self._tracking_uri or ""
        if uri.startswith(("http://", "https://")):
            url = f"{redact_url(uri).rstrip('/')}/#/experiments/{experiment_id}/traces?selectedEvaluationId={trace_id}"
            see = f"; open it: {url}"
        else:
            see = f"; see it with: mlflow ui --backend-store-uri {redact_url(uri)}"
        self.add(check, "ok", f"ollama.{kind} to {what} recorded as {trace_id} in experiment {experiment_id}{see}")


def _export_route() -> tuple[str, str]:
    """Where MLflow sends traces: ``store`` (the tracking store, or both with dual export), ``otlp-server``
    (OTLP to the tracking server's own ``/v1/traces``, which stores them), or ``otlp`` (elsewhere); and the endpoint."""
    endpoint = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
    )
    enabled = meaning(os.environ.get("MLFLOW_ENABLE_OTLP_EXPORTER")) is not False
    dual = meaning(os.environ.get("MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT")) is True
    if not endpoint or not enabled or dual:
        return "store", endpoint
    tracking = urllib.parse.urlsplit(os.environ.get("MLFLOW_TRACKING_URI", ""))
    target = urllib.parse.urlsplit(endpoint)
    same = tracking.scheme in ("http", "https") and (tracking.scheme, tracking.hostname, tracking.port) == (
        target.scheme,
        target.hostname,
        target.port,
    )
    return ("otlp-server" if same else "otlp"), endpoint


class _SpanNotes:
    """Notes the OpenTelemetry trace id (32 hex digits) of each span MLflow's tracer provider ends, by span name."""

    def __init__(self) -> None:
        self._ended: dict[str, str] = {}

    def attach(self) -> None:
        from mlflow.tracing import provider
        from opentelemetry.sdk.trace import SpanProcessor

        ended = self._ended

        class Notes(SpanProcessor):  # OpenTelemetry's base class; only on_end matters
            def on_end(self, span: Any) -> None:
                ended[span.name] = f"{span.context.trace_id:032x}"

        provider._get_tracer("mlflow_ollama")  # MLflow makes its tracer provider on first use
        add = getattr(_exit.tracer_provider(), "add_span_processor", None)
        if add is not None:
            add(Notes())

    def trace_id(self, name: str) -> str | None:
        return self._ended.get(name)


def _flush_export() -> None:
    """What MLflow still holds, exported: its own queue, and the OTLP route's processor too."""
    import mlflow

    mlflow.flush_trace_async_logging()
    force_flush = getattr(_exit.tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(30_000)


def _call(client: Any, model: str) -> str:
    """The cheapest real call the model takes: a one-token chat, or an embedding for embedding-only models."""
    import ollama

    try:
        client.chat(model=model, messages=[{"role": "user", "content": DOCTOR_PROMPT}], options={"num_predict": 1})
    except ollama.ResponseError as exc:
        if "does not support" not in str(exc.error):
            raise
        client.embed(model=model, input=DOCTOR_PROMPT)
        return "embed"
    return "chat"


@contextlib.contextmanager
def _mlflow_warnings() -> Iterator[list[str]]:
    """MLflow's own warnings while the block runs ("Failed to start span ..."), to explain a missing trace."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("mlflow")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tracing_only() -> bool:
    """MLflow's own test (``IS_TRACING_SDK_ONLY``): neither ``mlflow`` nor ``mlflow-skinny`` installed."""
    return not any(_version(name) for name in ("mlflow", "mlflow-skinny"))


def _tracking_client(uri: str) -> Any:
    """The client ``mlflow.set_experiment()`` itself uses; unlike ``MlflowClient`` it exists in mlflow-tracing."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    return TrackingServiceClient(uri)  # type: ignore[no-untyped-call]


def _get_experiment(client: Any, experiment_id: str) -> Any:
    """The experiment, or None when the store has no such id (stores raise for that)."""
    try:
        return client.get_experiment(experiment_id)
    except Exception as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _host(client: Any) -> str:
    """``scheme://host:port`` of an ``ollama.Client``, never userinfo."""
    url = getattr(getattr(client, "_client", None), "base_url", None)
    return redact_url(str(url)).rstrip("/") if url is not None else "<unknown>"


def processor(size: Any, size_vram: Any) -> str | None:
    """Where a loaded model runs, as ``ollama ps`` prints it: ``100% GPU``, ``100% CPU`` or ``48%/52% CPU/GPU``."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, size_vram)):
        return None
    if size <= 0 or not 0 <= size_vram <= size:
        return None
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    gpu = round(100 * size_vram / size)
    return f"{100 - gpu}%/{gpu}% CPU/GPU"


def _server_json(client: Any, path: str) -> Any:
    """The server's JSON answer to GET ``path``, through the client's connection and headers; None on failure."""
    try:
        response = client._client.get(path)
        response.raise_for_status()
        return response.json()
    except Exception:
        return None


def _reason(exc: BaseException) -> str:
    """A one-line reason: the innermost cause of a URL error, else the exception's type and message."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        exc = reason
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(double: bool = False, model: str | None = None) -> int:
    """Run every check with this process's environment, print the findings; 1 if a check failed."""
    # This process only: a tracking server that is down answers in seconds, not minutes.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(TIMEOUT_SECONDS)
    print(f"mlflow-ollama doctor ({sys.executable})\n", flush=True)
    return Doctor(double=double, model=model).run()
