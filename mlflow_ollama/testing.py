"""A loopback server that speaks the Ollama REST API, for tests, demos and benchmarks.

It serves ``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/embeddings``, a few model
endpoints and the OpenAI-compatible ``/v1/chat/completions`` over real HTTP on 127.0.0.1: single
JSON objects, NDJSON streams with chunked transfer encoding, HTTP errors with ``{"error": ...}``
bodies, mid-stream error lines and dropped connections, as the real server does. The real
``ollama`` client talks to it unchanged:

.. code-block:: python

    with OllamaDouble() as server:
        client = ollama.Client(host=server.url)
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])

By default a small deterministic "toy model" answers: it calls the first tool offered to it, reads
tool results back, thinks when asked to, and counts words as tokens. Tests script exact replies
with :meth:`OllamaDouble.enqueue`. A model whose name starts with ``missing`` gives the real
server's 404. ``/api/ps`` lists the models the double's scheduler has loaded, placed in GPU memory
as :attr:`OllamaDouble.gpu_fraction` says; :attr:`OllamaDouble.errors` makes a path answer an
HTTP error.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Failure", "OllamaDouble", "RecordedRequest", "Reply", "Scheduler"]

_CREATED_AT = "2026-01-01T00:00:00.000000Z"
_REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


@dataclass
class Reply:
    """A scripted answer to the next ``/api/chat`` or ``/api/generate`` request."""

    content: str = ""
    thinking: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """``[{"name": ..., "arguments": {...}}]``; sent with ids, as the server does."""
    prompt_eval_count: int | None = 10
    eval_count: int | None = None
    """Defaults to the number of content and thinking fragments."""
    done_reason: str = "stop"
    chunks: int | None = None
    """Split the content into this many stream chunks (default: one per word)."""
    delay: float = 0.0
    """Seconds to wait before the first byte of the response."""
    logprobs: list[dict[str, Any]] | None = None
    load_duration: int | None = None
    """Nanoseconds to report as ``load_duration``; by default what the double's scheduler decides."""


@dataclass
class Failure:
    """A scripted failure for the next request."""

    message: str = "an error was encountered while running the model"
    status: int = 500
    after_chunks: int | None = None
    """For streams: send this many good chunks, then the error line (or the drop)."""
    drop: bool = False
    """Close the connection instead of sending an error line (streams only)."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the double received. Secret-bearing header values are redacted."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


def _words(text: str) -> list[str]:
    parts = re.findall(r"\S+\s*", text)
    return parts or ([text] if text else [])


def _split(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _num_ctx(body: dict[str, Any]) -> int:
    options = body.get("options") or {}
    value = options.get("num_ctx") if isinstance(options, dict) else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_NUM_CTX


def _fitted(messages: list[dict[str, Any]], num_ctx: int) -> list[dict[str, Any]]:
    """The messages the server reads: as Ollama's chatPrompt does, the oldest non-system ones are
    dropped, silently, until the rest fits the context (the last message always stays)."""
    kept = list(messages)

    def tokens() -> int:
        return sum(len(_words(str(m.get("content") or ""))) for m in kept)

    while tokens() > num_ctx:
        droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
        if not droppable:
            break
        del kept[droppable[0]]
    return kept


def _toy_chat(body: dict[str, Any]) -> Reply:
    """The default chat model: deterministic, tool-aware and just smart enough for the demos."""
    messages = body.get("messages") or []
    if not messages:
        return Reply(done_reason="load", prompt_eval_count=None, eval_count=None)
    last = messages[-1]
    text = str(last.get("content") or "")
    num_ctx = _num_ctx(body)
    prompt_tokens = min(num_ctx, sum(len(_words(str(m.get("content") or ""))) for m in _fitted(messages, num_ctx)))
    thinking = f"The user wrote {len(_words(text))} words." if body.get("think") else None
    tools = body.get("tools") or []
    if tools and last.get("role") == "user":
        function = tools[0].get("function", {})
        params = function.get("parameters") or {}
        capitalised = re.findall(r"\b[A-Z][a-z]+\b", text)
        arguments = {
            name: (capitalised[-1] if capitalised else "unknown") if spec.get("type", "string") == "string" else 1
            for name, spec in (params.get("properties") or {}).items()
        }
        call = {"name": function.get("name", "tool"), "arguments": arguments}
        return Reply(thinking=thinking, tool_calls=[call], prompt_eval_count=prompt_tokens, eval_count=8)
    if last.get("role") == "tool":
        content = f"According to {last.get('tool_name') or 'the tool'}: {text}"
    else:
        content = f"You said: {text}"
    return Reply(content=content, thinking=thinking, prompt_eval_count=prompt_tokens)


def _toy_generate(body: dict[str, Any]) -> Reply:
    prompt = str(body.get("prompt") or "")
    if not prompt:
        return Reply(done_reason="load", prompt_eval_count=None, eval_count=None)
    # A prompt longer than the context is cut by the runner, which reads num_ctx tokens of it.
    return Reply(content=f"You said: {prompt}", prompt_eval_count=min(len(_words(prompt)), _num_ctx(body)))


def _vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK then adds ~40 ms to every response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return raw.decode("utf-8", "replace")

    def _send_json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, lines: Iterator[dict[str, Any]], failure: Failure | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, line in enumerate(lines):
            if failure is not None and index == failure.after_chunks:
                break
            self._write_chunk(json.dumps(line) + "\n")
        if failure is not None:
            if failure.drop:
                self._write_chunk('{"model": "trunc')  # half a line, then the connection goes
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self._write_chunk(json.dumps({"error": failure.message}) + "\n")
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _scripted_error(self) -> bool:
        """Answer with the status :attr:`OllamaDouble.errors` sets for this path, if it sets one."""
        status = self.server.double.errors.get(self.path)
        if status is None:
            return False
        self._send_json({"error": f"scripted error for {self.path}"}, status)
        return True

    def do_GET(self) -> None:
        self.server.record(self, None)
        if self._scripted_error():
            return
        if self.path == "/api/version":
            self._send_json({"version": "0.12.6"})
        elif self.path == "/api/tags":
            self._send_json({"models": [_listed(name) for name in self.server.double.models]})
        elif self.path == "/api/ps":
            double = self.server.double
            models = [
                _running(name, num_ctx, expiry, double.gpu_fraction)
                for name, num_ctx, expiry in double.scheduler.running()
            ]
            self._send_json({"models": models})
        elif self.path == "/":
            self.send_response(200)
            self.send_header("Content-Length", "17")
            self.end_headers()
            self.wfile.write(b"Ollama is running")
        else:
            self._send_json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        body = self._read_body()
        self.server.record(self, body)
        if self._scripted_error():
            return
        if not isinstance(body, dict):
            self._send_json({"error": "missing request body"}, 400)
            return
        model = str(body.get("model") or "")
        if not model:
            self._send_json({"error": "model is required"}, 400)
            return
        if model.startswith("missing"):
            self._send_json({"error": f'model "{model}" not found, try pulling it first'}, 404)
            return
        handler = {
            "/api/chat": self._chat,
            "/api/generate": self._generate,
            "/api/embed": self._embed,
            "/api/embeddings": self._embeddings,
            "/api/show": self._show,
            "/v1/chat/completions": self._openai_chat,
            "/v1/systemone": self._systemone,
        }.get(self.path)
        if handler is None:
            self._send_json({"error": "not found"}, 404)
            return
        handler(body)

    def _respond(self, body: dict[str, Any], toy: Reply, kind: str) -> None:
        scripted = self.server.next_scripted()
        reply = scripted if isinstance(scripted, Reply) else toy
        failure = scripted if isinstance(scripted, Failure) else None
        stream = body.get("stream", True)
        if failure is not None and (not stream or failure.after_chunks is None):
            self._send_json({"error": failure.message}, failure.status)
            return
        if reply.delay:
            restarts = self.server.double.scheduler.restarts
            time.sleep(reply.delay)
            if self.server.double.scheduler.restarts != restarts:
                # Evicted meanwhile, as by a restart: the request dies with the old server (and a
                # test's abandoned slow call does not load a model in the middle of the next test).
                self.close_connection = True
                return
        load_ns = self.server.double.scheduler.run(body)
        if reply.load_duration is not None:
            load_ns = reply.load_duration
        prompt_tokens = None
        if kind == "generate" and not body.get("raw") and body.get("prompt"):
            prompt_tokens = len(_words(str(body["prompt"])))
        chunks = list(_chunks(body["model"], reply, kind, load_ns, prompt_tokens))
        if stream:
            self._send_stream(iter(chunks), failure)
        else:
            self._send_json(_merge(chunks, kind))

    def _chat(self, body: dict[str, Any]) -> None:
        self._respond(body, _toy_chat(body), "chat")

    def _generate(self, body: dict[str, Any]) -> None:
        self._respond(body, _toy_generate(body), "generate")

    def _scripted_failure(self) -> bool:
        """Answer with the next scripted answer if it is a failure; True when it was (the request is done).

        For the endpoints without a toy reply to script: a scripted ``Reply`` is used up and ignored.
        """
        scripted = self.server.next_scripted()
        if isinstance(scripted, Failure):
            self._send_json({"error": scripted.message}, scripted.status)
        return isinstance(scripted, Failure)

    def _embed(self, body: dict[str, Any]) -> None:
        if self._scripted_failure():
            return
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dimensions = int(body.get("dimensions") or 8)
        load_ns = self.server.double.scheduler.run(body)
        self._send_json(
            {
                "model": body["model"],
                "embeddings": [_vector(str(t), dimensions) for t in texts],
                "total_duration": load_ns + 13_000_000,
                "load_duration": load_ns,
                "prompt_eval_count": sum(len(_words(str(t))) for t in texts),
            }
        )

    def _systemone(self, body: dict[str, Any]) -> None:
        """System One (ollama 0.6.3's ``systemone``): each question answered, as the SDK's types give the shape."""
        if self._scripted_failure():
            return
        questions = body.get("questions")
        if not isinstance(questions, dict):
            self._send_json({"error": "questions are required"}, 400)
            return
        self.server.double.scheduler.run(body)  # it runs the model, which may have to load
        answers = {name: _systemone_answer(question) for name, question in questions.items()}
        words = len(_words(json.dumps(body.get("state")))) + len(_words(json.dumps(questions)))
        self._send_json(
            {
                "model": body["model"],
                "answers": answers,
                "usage": {"input_tokens": words, "output_tokens": len(answers)},
            }
        )

    def _embeddings(self, body: dict[str, Any]) -> None:
        self._send_json({"embedding": _vector(str(body.get("prompt") or ""), 8)})

    def _openai_chat(self, body: dict[str, Any]) -> None:
        """Ollama's OpenAI-compatible endpoint, as MLflow's docs use it: the same toy model, OpenAI's shapes."""
        scripted = self.server.next_scripted()
        if isinstance(scripted, Failure):
            self._send_json({"error": {"message": scripted.message, "type": "api_error"}}, scripted.status)
            return
        reply = scripted if isinstance(scripted, Reply) else _toy_chat(_from_openai(body))
        completion = _openai_completion(body["model"], reply)
        if not body.get("stream"):
            self._send_json(completion)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        [choice] = completion["choices"]
        head = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
        head["object"] = "chat.completion.chunk"
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": fragment} for fragment in _words(reply.content)
        ]
        if "tool_calls" in choice["message"]:
            deltas.append({"role": "assistant", "content": "", "tool_calls": choice["message"]["tool_calls"]})
        for delta in deltas:
            self._write_chunk(f"data: {json.dumps({**head, 'choices': [{'index': 0, 'delta': delta}]})}\n\n")
        last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
        self._write_chunk(f"data: {json.dumps(last)}\n\n")
        self._write_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _show(self, body: dict[str, Any]) -> None:
        details = {"parent_model": "", "families": ["llama"], **_DETAILS}
        model_info = {"general.architecture": "llama", "general.parameter_count": 3_212_749_888}
        model_info["llama.context_length"] = 131_072
        self._send_json(
            {"modelfile": "", "parameters": "", "template": "", "details": details, "model_info": model_info}
        )


def _from_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as the toy model reads an Ollama one (tool results named by their call)."""
    names: dict[str, str] = {}
    messages = []
    for message in body.get("messages") or []:
        item = dict(message)
        for call in item.get("tool_calls") or []:
            names[str(call.get("id"))] = call.get("function", {}).get("name", "")
        if item.get("role") == "tool":
            item["tool_name"] = names.get(str(item.get("tool_call_id")), "")
        messages.append(item)
    return {**body, "messages": messages}


def _openai_completion(model: str, reply: Reply) -> dict[str, Any]:
    """A reply as Ollama's ``/v1/chat/completions`` sends it (no thinking, no durations)."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i:08x}",
                "index": i,
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    completion_tokens = reply.eval_count if reply.eval_count is not None else len(_words(reply.content))
    prompt_tokens = reply.prompt_eval_count or 0
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else reply.done_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


_DETAILS = {"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
_SIZE = 2_019_393_189
_LOADED_SIZE = 3_214_867_456  # in memory: the weights plus the KV cache and the compute graph


def _listed(name: str) -> dict[str, Any]:
    """A model as ``/api/tags`` lists it."""
    return {
        "name": name,
        "model": name,
        "modified_at": _CREATED_AT,
        "size": _SIZE,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": dict(_DETAILS),
    }


def _systemone_answer(question: Any) -> dict[str, Any]:
    """A System One answer: the first choice likeliest, a score of the middle criterion, a noul of 0.75."""
    kind = question.get("type", "noul") if isinstance(question, dict) else "noul"
    criteria = question.get("criteria") if isinstance(question, dict) else None
    if kind == "choice" and isinstance(criteria, dict) and criteria:
        keys = list(criteria)
        probabilities = {key: (0.7 if i == 0 else 0.3 / max(1, len(keys) - 1)) for i, key in enumerate(keys)}
        return {"type": "choice", "choice": keys[0], "probabilities": probabilities, "confidence": 0.7}
    if kind == "score" and isinstance(criteria, list) and criteria:
        middle = len(criteria) // 2
        probabilities = {str(i): (1.0 if i == middle else 0.0) for i in range(len(criteria))}
        legend = {str(i): str(text) for i, text in enumerate(criteria)}
        return {
            "type": "score",
            "score": float(middle),
            "legend": legend,
            "probabilities": probabilities,
            "confidence": 1.0,
        }
    return {"type": "noul", "noul": 0.75}


def _running(name: str, num_ctx: int, expiry: float, gpu_fraction: float) -> dict[str, Any]:
    """A loaded model as ``/api/ps`` lists it (server 0.10+, with ``context_length``)."""
    if expiry == float("inf"):
        expires_at = "2318-09-26T04:33:09.000000Z"  # what the real server shows for keep_alive -1
    else:
        when = datetime.now(timezone.utc) + timedelta(seconds=expiry - time.monotonic())
        expires_at = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "name": name,
        "model": name,
        "size": _LOADED_SIZE,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {"parent_model": "", "families": ["llama"], **_DETAILS},
        "expires_at": expires_at,
        "size_vram": round(_LOADED_SIZE * min(1.0, max(0.0, gpu_fraction))),
        "context_length": num_ctx,
    }


def _chunks(
    model: str, reply: Reply, kind: str, load_ns: int = 5_000_000, prompt_tokens: int | None = None
) -> Iterator[dict[str, Any]]:
    """The NDJSON lines of a reply: thinking, tool calls, content, then the final ``done`` line.

    ``load_ns`` is the ``load_duration`` to report; ``prompt_tokens`` the rendered prompt's length
    before any cut, for generate's ``context``.
    """
    thinking = _words(reply.thinking) if reply.thinking else []
    content = _split(reply.content, reply.chunks) if reply.chunks else _words(reply.content)
    head = {"model": model, "created_at": _CREATED_AT}

    def line(content: str = "", thinking: str | None = None, tool_calls: Any = None) -> dict[str, Any]:
        if kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking is not None:
                message["thinking"] = thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            return {**head, "message": message, "done": False}
        out = {**head, "response": content, "done": False}
        if thinking is not None:
            out["thinking"] = thinking
        return out

    for fragment in thinking:
        yield line(thinking=fragment)
    if reply.tool_calls:
        yield line(
            tool_calls=[
                {"id": f"call_{i:08x}", "function": {"index": i, "name": c["name"], "arguments": c["arguments"]}}
                for i, c in enumerate(reply.tool_calls)
            ]
        )
    for index, fragment in enumerate(content):
        item = line(content=fragment)
        if reply.logprobs is not None and index < len(reply.logprobs):
            item["logprobs"] = [reply.logprobs[index]]
        yield item
    eval_count = reply.eval_count if reply.eval_count is not None else len(thinking) + len(content)
    final: dict[str, Any] = {**line(), "done": True, "done_reason": reply.done_reason}
    if reply.done_reason not in ("load", "unload"):
        eval_duration = max(1, eval_count) * 10_000_000
        final.update(load_duration=load_ns, prompt_eval_duration=20_000_000, eval_duration=eval_duration)
        final.update(total_duration=load_ns + 20_000_000 + eval_duration + _OTHER_NS, eval_count=eval_count)
        if reply.prompt_eval_count is not None:
            final["prompt_eval_count"] = reply.prompt_eval_count
        if kind == "generate" and prompt_tokens is not None:
            # The whole rendered prompt, before any cut, then the output: as the server returns it.
            final["context"] = list(range(1, prompt_tokens + eval_count + 1))
    yield final


def _merge(chunks: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single JSON object the server sends for ``stream: false``."""
    final = dict(chunks[-1])
    if kind == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        calls: list[Any] = []
        for chunk in chunks:
            part = chunk["message"]
            message["content"] += part.get("content", "")
            if "thinking" in part:
                message["thinking"] = message.get("thinking", "") + part["thinking"]
            calls.extend(part.get("tool_calls") or [])
        if calls:
            message["tool_calls"] = calls
        final["message"] = message
    else:
        final["response"] = "".join(c.get("response", "") for c in chunks)
        if any("thinking" in c for c in chunks):
            final["thinking"] = "".join(c.get("thinking", "") for c in chunks)
    logprobs = [lp for c in chunks for lp in c.get("logprobs", [])]
    if logprobs:
        final["logprobs"] = logprobs
    return final


DEFAULT_NUM_CTX = 4096
"""The double's context length when a request sets no ``num_ctx``: the real server's from 0.6.7 to 0.15.4."""

LOAD_NS = 1_800_000_000
"""The ``load_duration`` of a call that waited for a model load (real loads take 0.5 to 7 s)."""

WARM_NS = 5_000_000
"""The ``load_duration`` of a call to a loaded model (the real server's is a few to tens of ms)."""

_OTHER_NS = 1_000_000  # the server's time outside loading, reading and generating: templating, tokenizing
_RUNNER_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _keep_alive(value: Any) -> float:
    """Seconds the server keeps a model after a call: a number is seconds, a string one Go duration
    such as ``"10m"``; negative keeps it loaded; absent is the server's 5 minutes."""
    if value is None or isinstance(value, bool):
        return 300.0
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?", str(value).strip())
        if match is None:
            return 300.0
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    return float("inf") if seconds < 0 else seconds


class Scheduler:
    """The model scheduler of the double, as Ollama's decides when to load a model.

    A model loads on its first use, after its ``keep_alive`` ran out (``0`` unloads it after the
    call; negative keeps it), and when a load-time option (``num_ctx``, ``num_batch``, ``num_gpu``,
    ``main_gpu``, ``use_mmap``, ``num_thread``) differs from the loaded runner's. Sampling options
    never reload. Nothing actually waits: the load shows in ``load_duration``, as the server reports it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[dict[str, Any], float]] = {}  # model -> (runner options, expiry)
        self.loads = 0
        """How many loads the double has reported so far."""
        self.restarts = 0
        """How many times ``unload_all()`` evicted everything."""

    def run(self, body: dict[str, Any]) -> int:
        """Run a request on its model, loading it first if needed; returns the ``load_duration`` in ns."""
        model = str(body.get("model") or "")
        model = model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"
        given = body.get("options")
        options: dict[str, Any] = given if isinstance(given, dict) else {}
        runner = {name: options.get(name) for name in _RUNNER_OPTIONS}
        runner["num_ctx"] = runner["num_ctx"] or DEFAULT_NUM_CTX
        now = time.monotonic()
        with self._lock:
            loaded = self._loaded.get(model)
            load = loaded is None or loaded[1] <= now or loaded[0] != runner
            self.loads += load
            self._loaded[model] = (runner, now + _keep_alive(body.get("keep_alive")))
        return LOAD_NS if load else WARM_NS

    def unload_all(self) -> None:
        """Forget every loaded model, as a server restart would; a ``delay``-ed reply under way is dropped with it."""
        with self._lock:
            self._loaded.clear()
            self.restarts += 1

    def loaded(self) -> list[str]:
        """The models loaded now, as ``/api/ps`` lists them."""
        return [name for name, _, _ in self.running()]

    def running(self) -> list[tuple[str, int, float]]:
        """The models loaded now: name, the runner's ``num_ctx`` and expiry (``time.monotonic()``)."""
        now = time.monotonic()
        with self._lock:
            return [
                (name, int(runner["num_ctx"]), expiry)
                for name, (runner, expiry) in self._loaded.items()
                if expiry > now
            ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default backlog of 5 refuses bursts of concurrent clients

    def __init__(self, address: tuple[str, int], double: OllamaDouble) -> None:
        super().__init__(address, _Handler)
        self.double = double

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading a stream early (break, close()) resets the connection:
        # normal for a streaming server, so not worth a traceback on stderr.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _REDACTED_HEADERS else v) for k, v in handler.headers.items()
        }
        with self.double._lock:
            self.double.requests.append(RecordedRequest(handler.command, handler.path, body, headers))

    def next_scripted(self) -> Reply | Failure | None:
        with self.double._lock:
            return self.double._script.popleft() if self.double._script else None


class OllamaDouble:
    """An Ollama server double on a free loopback port; use it as a context manager.

    Args:
        host: The address to listen on.
        port: The port to listen on; 0 picks a free one.
        models: The models ``/api/tags`` lists (``ollama.list()``); none by default. Any model name
            is answered all the same.
        gpu_fraction: The share of each loaded model in GPU memory (:attr:`gpu_fraction`).
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, models: Sequence[str] = (), gpu_fraction: float = 1.0
    ) -> None:
        self._address = (host, port)
        self.gpu_fraction = gpu_fraction
        """The share of each loaded model in GPU memory, as ``/api/ps`` reports it (``size_vram /
        size``): 1.0 all on the GPU, 0.0 on the CPU only, between: split. Settable at any time."""
        self.errors: dict[str, int] = {}
        """Paths to answer with an HTTP error status instead, e.g. ``{"/api/show": 500}``."""
        self.models = list(models)
        """The models ``/api/tags`` lists."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._script: deque[Reply | Failure] = deque()
        self.requests: list[RecordedRequest] = []
        """Every request received so far, in order."""
        self.scheduler = Scheduler()
        """When the double's models load (first use, ``keep_alive`` run out, a load-time option changed)."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, to pass as ``ollama.Client(host=...)`` or ``OLLAMA_HOST``."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self._address[0]}:{self._server.server_port}"

    def enqueue(self, *replies: Reply | Failure) -> None:
        """Script the answers to the next requests, in order; afterwards the toy model answers."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> OllamaDouble:
        """Start serving in a daemon thread; returns the double itself."""
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ollama-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Does nothing if not running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OllamaDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the double in the foreground: ``python -m mlflow_ollama.testing [--port N] [--model NAME ...]``.

    Prints its URL on the first line of standard output, then serves until interrupted. It lists
    ``llama3.2`` as pulled (``ollama.list()``), the model the docs' examples use, unless ``--model``
    names others: ``mlflow-ollama doctor`` pointed at it then finds a model to call.
    """
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", action="append", help="a model to list as pulled (repeatable; default llama3.2)")
    options = parser.parse_args(argv)
    double = OllamaDouble(options.host, options.port, models=options.model or ["llama3.2"]).start()
    print(double.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()


if __name__ == "__main__":
    main()
