"""Span lifecycle: open an MLflow span for one Ollama call and close it with the result or error.

Every function here may raise; callers in ``_wrappers`` guard them so the Ollama call is never
affected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.entities import LiveSpan, NoOpSpan, SpanEvent, SpanType

from mlflow_ollama import _frameworks, _previews
from mlflow_ollama import _mapping as m
from mlflow_ollama import _model_details as md
from mlflow_ollama import _signals as signals
from mlflow_ollama._config import content_enabled, details_enabled, load_threshold_ns, settings
from mlflow_ollama._model_loads import Visit, history

_Attachment: Any
try:  # MLflow 3.11+: images go into the trace as attachments the UI can show
    from mlflow.tracing.attachments import Attachment as _Attachment
except ImportError:  # older MLflow: images are summarised only
    _Attachment = None

_TraceManager: Any
try:  # where MLflow keeps a trace until its root span ends; the public API reaches only current spans
    from mlflow.tracing.trace_manager import InMemoryTraceManager as _TraceManager
except ImportError:
    _TraceManager = None

__all__ = ["Endpoint", "TracedCall", "start"]


@dataclass(frozen=True)
class Endpoint:
    """One traced SDK method (each runs a model: ``_patch.TRACED_METHODS``): span name, type, parameters."""

    method: str
    """The SDK method name, e.g. ``"chat"``."""

    span_type: str
    """An MLflow ``SpanType`` value."""

    positional: tuple[str, ...]
    """Names of the parameters that may be passed by position, after ``self``, in order."""

    defaults: tuple[tuple[str, Any], ...]
    """Every parameter name with its default, for reading a call back from a frame's locals."""

    @property
    def span_name(self) -> str:
        return f"ollama.{self.method}"

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, however they were passed."""
        named = dict(zip(self.positional, args, strict=False))  # extra args: the SDK raises
        named.update(kwargs)
        return named

    def arguments_from_locals(self, local_vars: dict[str, Any]) -> dict[str, Any]:
        """The arguments of a call seen only through its frame: those that differ from the default."""
        return {
            name: local_vars[name]
            for name, default in self.defaults
            # Identity, not equality: defaults are None/''/False, and == on user objects may raise.
            if name in local_vars and local_vars[name] is not default
        }


def _make_encoder() -> Any:
    """``json.dumps(value, ensure_ascii=False)``, byte for byte, made once instead of per call.

    ``JSONEncoder.encode`` builds a new C encoder for every value (~1 µs, most of the cost of a small
    one). This one is built once, without the circular-reference check: our values come from the
    mapping, which turns cycles into notes. Where the C encoder is missing or disagrees, the plain
    ``JSONEncoder`` is used.
    """
    plain = json.JSONEncoder(ensure_ascii=False)
    make, quote = json.encoder.c_make_encoder, json.encoder.c_encode_basestring  # type: ignore[attr-defined]
    if make is None or quote is None:
        return plain.encode
    iterencode = make(None, plain.default, quote, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        if type(value) is str:
            return quote(value)  # type: ignore[no-any-return]
        return "".join(iterencode(value, 0))

    sample = {"a": [1, 2.5, None, True, "é\n"], "b": {"c": "d"}}
    return encode if encode(sample) == plain.encode(sample) else plain.encode


_encode = _make_encoder()


def _encode_fields(fields: dict[str, Any], known: dict[int, str]) -> str:
    """``_encode(fields)`` for a dict of str keys, reusing the text of values already encoded."""
    return "{" + ", ".join(f"{_encode(k)}: {known.get(id(v)) or _encode(v)}" for k, v in fields.items()) + "}"


# MLflow's attribute names for a span's inputs and outputs (``SpanAttributeKey``), spelled out.
_INPUTS = "mlflow.spanInputs"
_OUTPUTS = "mlflow.spanOutputs"


def _set_attributes(span: Any, attributes: dict[str, Any]) -> None:
    """``span.set_attributes(attributes)``, with the same result at a fraction of the cost.

    MLflow stores every attribute as JSON text, ``json.dumps(value, cls=TraceJSONEncoder,
    ensure_ascii=False)``, building a new encoder per attribute, and hands them to the
    OpenTelemetry span one at a time. Our values are JSON-ready already; for those one shared
    plain encoder writes the very same text (TraceJSONEncoder only adds ``default`` for other
    types), and the OpenTelemetry span takes them in one call. A value the plain encoder cannot
    write, or a span that is not MLflow's live span, goes through MLflow as before.

    Inputs and outputs come this way too (``_INPUTS``/``_OUTPUTS``), unless they hold images to
    attach: ``span.set_inputs()`` is ``set_attribute()`` plus, from MLflow 3.11, a walk of the
    whole value for ``Attachment`` objects and, in recent releases, two more walks for base64
    content to extract (about 230 µs for a 20-message history). Ours hold neither: images are
    attached by us, and text is recorded as the text Ollama got.
    """
    otel_span = getattr(span, "_span", None) if isinstance(span, LiveSpan) else None
    if otel_span is None:
        span.set_attributes(attributes)
        return
    encoded: dict[str, str] = {}
    rest: dict[str, Any] = {}
    known: dict[int, str] = {}  # lists written once and again inside the inputs: the tools
    for key, value in attributes.items():
        try:
            if key == _INPUTS and type(value) is dict and all(type(k) is str for k in value):
                text = _encode_fields(value, known)
            else:
                text = _encode(value)
        except (TypeError, ValueError, RecursionError):
            rest[key] = value
            continue
        encoded[key] = text
        if type(value) is list:
            known[id(value)] = text
    otel_span.set_attributes(encoded)
    if rest:
        span.set_attributes(rest)


def _host(instance: Any) -> str | None:
    """``scheme://host:port`` of the client's server. Never userinfo, path or query."""
    url = getattr(getattr(instance, "_client", None), "base_url", None)
    if url is None:
        return None
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


class TracedCall:
    """The span of one Ollama call, with what is needed to close it."""

    __slots__ = ("details", "endpoint", "inputs", "log_content", "span", "visit")

    def __init__(
        self,
        endpoint: Endpoint,
        span: LiveSpan,
        inputs: dict[str, Any],
        log_content: bool,
        visit: Visit | None = None,
        details: md.Lookup | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.span = span
        self.inputs = inputs
        self.log_content = log_content
        self.visit = visit
        """This call's view of its model's earlier calls, which explains a load (``_model_loads``)."""
        self.details = details
        """Where to look up the model's details, when they are switched on (``_model_details``)."""

    def _request_messages(self) -> list[dict[str, Any]]:
        messages = self.inputs.get("messages")
        return messages if isinstance(messages, list) else []

    def _record(self, response: Any, extra: dict[str, Any] | None) -> None:
        """Set the attributes read off ``response``, then ``extra``, and the outputs.

        The response is made JSON-ready once; the attributes and the chat view are read from that
        form, not from the SDK object a second time.
        """
        outputs = None
        source = response
        if response is not None:
            outputs = m.response_outputs(response, settings.log_embeddings and self.log_content)
            if isinstance(outputs, dict):  # an odd object that did not become a dict is read as it is
                source = outputs
        attributes = self._attributes(source)
        if extra:
            attributes.update(extra)
        recorded = None
        try:
            if response is not None:
                recorded = attributes[_OUTPUTS] = outputs if self.log_content else m.without_content(outputs)
        finally:  # if the outputs could not be made, the attributes are still written
            _set_attributes(self.span, attributes)
        if self.span.parent_id is None:  # never the previews of a trace whose root is the user's
            self._set_previews(recorded)

    def _set_previews(self, outputs: Any) -> None:
        """Set the trace's request and response previews, as the traces list shows them.

        Only for a trace whose root is this span, before it ends: MLflow then keeps them instead of
        deriving its own from the root's inputs and outputs, which it would parse back from JSON.
        From what was recorded, so with content off no content reaches a preview.
        """
        if _TraceManager is None:
            return
        method = self.endpoint.method
        request = _previews.request_preview(method, self.inputs)
        response = _previews.response_preview(method, outputs) if outputs is not None else None
        if request is None and response is None:
            return
        with _TraceManager.get_instance().get_trace(self.span.trace_id) as trace:
            if trace is None:
                return
            if request is not None:
                trace.info.request_preview = request
            if response is not None:
                trace.info.response_preview = response

    def succeed(self, response: Any, extra: dict[str, Any] | None = None) -> None:
        """Record the response (an SDK object or its dict form) and end the span, status OK.

        ``extra`` attributes are added (a stream's chunk count, say). The span is ended even if
        mapping or recording the response fails: no span is ever left open.
        """
        try:
            self._record(response, extra)
        finally:
            self._end()

    def fail(self, exc: BaseException, partial: Any = None, extra: dict[str, Any] | None = None) -> None:
        """Record the exception (ERROR status plus an exception event) and end the span.

        ``partial`` is what arrived before the error, if anything (a stream's first chunks).
        """
        try:
            self._record_exception(exc)
            status_code = getattr(exc, "status_code", None)
            if isinstance(status_code, int):
                extra = {**(extra or {}), "ollama.error.status_code": status_code}
            self._record(partial, extra)
        finally:
            self._end("ERROR")

    def _end(self, status: str | None = None) -> None:
        if self.visit is not None:
            history.end(self.visit)
            self.visit = None
        try:
            self.span.end(status=status)
        finally:
            # MLflow's end() logs and swallows failures of its own, and then may leave the span
            # open. End the OpenTelemetry span beneath it, so the trace is still exported and
            # does not stay in MLflow's in-memory trace manager.
            otel_span = getattr(self.span, "_span", None)
            if otel_span is not None and otel_span.is_recording():
                otel_span.end()

    def _record_exception(self, exc: BaseException) -> None:
        if self.log_content:
            # LiveSpan.record_exception is feature-detected: some MLflow snapshots lack it (the
            # mlflow-skinny 3.0.0 wheel). The event it adds is all we need: fail() sets ERROR. It
            # takes only Exceptions; KeyboardInterrupt or CancelledError still end the call.
            record = getattr(self.span, "record_exception", None)
            if record is not None and isinstance(exc, Exception):
                record(exc)
            else:
                self.span.add_event(SpanEvent.from_exception(exc))  # type: ignore[arg-type]  # any BaseException works
            return
        # An exception's message can quote the input (pydantic does): keep only its type.
        name = type(exc).__name__
        event: dict[str, Any] = {"exception.type": name, "exception.message": m.NOT_LOGGED}
        event["exception.stacktrace"] = m.NOT_LOGGED
        self.span.add_event(SpanEvent(name="exception", attributes=event))  # type: ignore[abstract]  # fail() ends it as ERROR

    def _attributes(self, response: Any) -> dict[str, Any]:
        method = self.endpoint.method
        embedding = self.endpoint.span_type == SpanType.EMBEDDING
        attributes = m.response_attributes(response, embedding) if response is not None else {}
        if attributes.get(m.MODEL) is not None and attributes[m.MODEL] == self.inputs.get("model"):
            del attributes[m.MODEL]  # already set from the request when the span started
        if response is not None:
            attributes.update(self._signals(response))
        if method == "chat":
            message = m.get_field(response, "message") if response is not None else None
            reply = m.message_dict(message) if message is not None else None
            request_messages = self._request_messages()
            if reply is not None or request_messages:
                attributes[m.MESSAGES] = m.chat_messages(request_messages, reply)
        elif method == "generate":
            attributes[m.MESSAGES] = m.generate_messages(self.inputs, response)
        if not self.log_content and m.MESSAGES in attributes:
            attributes[m.MESSAGES] = m.without_content(attributes[m.MESSAGES])
        return attributes

    def _signals(self, response: Any) -> dict[str, Any]:
        """Whether the call waited for a model load and why, its context's fill, a cut prompt, queueing;
        with model details on, the model's details too (looked up, or cached, now)."""
        found: dict[str, Any] = {}
        load = signals.model_load(response, load_threshold_ns())
        if load is not None:
            found[signals.MODEL_LOAD] = load
            if load and self.visit is not None:
                found[signals.MODEL_LOAD_REASON] = self.visit.reason()
        running_num_ctx = None
        if self.details is not None:
            details, running_num_ctx = md.details.attributes(self.details, loaded=bool(load))
            found.update(details)
        found.update(signals.context_signals(self.inputs, response, running_num_ctx))
        truncated = signals.prompt_truncated(self.endpoint.method, self.inputs, response)
        if truncated is not None:
            found[signals.PROMPT_TRUNCATED] = truncated
        other = signals.other_duration(response)
        if other is not None:
            found[signals.OTHER_DURATION] = other
        return found


def _attachment_factory() -> tuple[m.Attach | None, list[Any]]:
    """MLflow's ``Attachment`` (3.11+) as an ``attach`` function, and the list it fills."""
    if _Attachment is None:
        return None, []
    made: list[Any] = []

    def attach(data: bytes, media_type: str) -> Any:
        made.append(_Attachment(content_type=media_type, content_bytes=data))
        return made[-1]

    return attach, made


def _with_references(value: Any, trace_id: str) -> Any:
    """``value`` with each Attachment replaced by the reference MLflow stores in its place."""
    if _Attachment is not None and isinstance(value, _Attachment):
        return value.ref(trace_id)
    if isinstance(value, dict):
        return {k: _with_references(v, trace_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_references(v, trace_id) for v in value]
    return value


def start(endpoint: Endpoint, instance: Any, arguments: dict[str, Any]) -> TracedCall | None:
    """Open the span for a call, as a child of the current span (or of its framework's), without becoming current.

    None when MLflow itself records nothing (its tracing is disabled): the call then goes untraced.
    """
    log_content = content_enabled()
    attach, attachments = _attachment_factory() if log_content else (None, [])
    inputs = m.request_inputs(arguments, attach)
    host = _host(instance)
    if not log_content:  # tool definitions are the developer's code, not conversation: they stay
        inputs = {k: v if k == "tools" else m.without_content(v, k) for k, v in inputs.items()}
    attributes: dict[str, Any] = {m.PROVIDER_KEY: m.PROVIDER, m.COST: m.ZERO_COST}
    if endpoint.span_type != SpanType.EMBEDDING:
        attributes[m.FORMAT] = m.PROVIDER
    model = inputs.get("model")
    if model:
        attributes[m.MODEL] = model
    tools = inputs.get("tools")
    if tools:
        attributes[m.TOOLS] = tools
    if host:
        attributes["ollama.host"] = host
    details = md.Lookup.of(instance, host, model) if details_enabled() else None
    # Inputs and attributes are set here rather than passed to start_span_no_context: when setting
    # them fails there, MLflow swaps in a no-op span and leaves the real one open for good.
    # The current span is the parent, unless the framework making this call keeps its own span
    # open but not current (a LlamaIndex stream, LangChain's async calls): then that span.
    parent = _frameworks.parent_span()
    span: Any = mlflow.start_span_no_context(name=endpoint.span_name, span_type=endpoint.span_type, parent_span=parent)
    if isinstance(span, NoOpSpan):  # MLflow's own switches: tracing.disable(), context(enabled=False)
        return None
    # Noted once the span exists, so that every begun visit is ended with it (TracedCall._end).
    # Load options and keep_alive are numbers and durations: content-off leaves them as they were.
    key = signals.model_key(host, inputs.get("model"))
    visit = history.begin(key, signals.load_options(inputs), inputs.get("keep_alive")) if key is not None else None
    call = TracedCall(endpoint, span, inputs, log_content, visit, details)
    try:
        if attachments:
            span.set_inputs(inputs)  # MLflow stores the images and puts references in their place
            call.inputs = _with_references(inputs, span.trace_id)  # the chat view needs them too
        else:
            attributes[_INPUTS] = inputs
        _set_attributes(span, attributes)
    except Exception:
        call._end("ERROR")  # opened, so it must be ended, whatever failed after
        raise
    return call
