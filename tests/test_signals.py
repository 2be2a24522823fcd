"""Local-model signals: a model load and its reason, the context's fill, a cut prompt, the server's other time.

The pure functions on plain data (``_signals``), among them the numbers of a real server's reply;
the reasons from the process's memory of its calls (``_model_loads``); and end to end, the real
client against the double, whose scheduler loads models as Ollama's does.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import math
import threading
import time
from typing import Any

import mlflow
import ollama
import pytest

import mlflow_ollama
from mlflow_ollama import _signals as s
from mlflow_ollama._model_loads import _History
from mlflow_ollama.testing import LOAD_NS, WARM_NS, OllamaDouble, Reply
from support import MODEL, chat_spans, traces, user

THRESHOLD = 250_000_000

# A real server's final line (hermes3:8b, server of July 2025; a shell client's README): the
# prompt read whole. 16 prompt tokens in context plus BOS make prompt_eval_count 17; 44 output
# tokens in context plus the end token make eval_count 45.
REAL_REPLY = {
    "done_reason": "stop",
    "context": list(range(60)),
    "total_duration": 7632288875,
    "load_duration": 3380045000,
    "prompt_eval_count": 17,
    "prompt_eval_duration": 1595137958,
    "eval_count": 45,
    "eval_duration": 2651183208,
}


# --- pure: plain data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        ("0", 0.0),
        (300, 300.0),
        (1.5, 1.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (-1, math.inf),
        ("-1m", math.inf),
        ("-1", None),  # Go's durations need a unit, except 0
        ("300", None),
        ("soon", None),
        ("5m later", None),
        (True, None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_keep_alive_is_read_as_the_server_reads_it(value: Any, seconds: float | None) -> None:
    assert s.keep_alive_seconds(value) == seconds


def test_a_load_is_a_load_duration_at_or_above_the_threshold() -> None:
    assert s.model_load({"load_duration": THRESHOLD}, THRESHOLD) is True
    assert s.model_load({"load_duration": THRESHOLD - 1}, THRESHOLD) is False
    assert s.model_load({"load_duration": REAL_REPLY["load_duration"]}, THRESHOLD) is True
    assert s.model_load({"load_duration": 67_917_750}, THRESHOLD) is False  # the same server, warm
    assert s.model_load({}, THRESHOLD) is None  # a done_reason "load" reply has none
    assert s.model_load({"load_duration": -5}, THRESHOLD) is None


def test_the_real_servers_whole_prompt_reads_as_not_cut() -> None:
    assert s.prompt_truncated("generate", {"prompt": "Describe a rabbit"}, REAL_REPLY) is False


# Real servers' replies recorded by OpenLLMetry's Ollama tests (traceloop/openllmetry,
# packages/opentelemetry-instrumentation-ollama/tests/cassettes; llama3 and llama3.1, 2024): the
# numbers only, and the length of `context` where the reply has one.
CASSETTES: dict[str, dict[str, Any]] = {
    # test_generation/test_ollama_generation_with_events_with_no_content.yaml: the first call, a load
    "generate, loading": {
        "context": {"length": 80},
        "total_duration": 4224430375,
        "load_duration": 2037300208,
        "prompt_eval_count": 17,
        "prompt_eval_duration": 177983000,
        "eval_count": 63,
        "eval_duration": 2007110000,
    },
    # test_generation/test_ollama_async_generation_with_events_with_content.yaml: the same prompt
    # later, warm, read from the prompt cache (that server then left prompt_eval_count out)
    "generate, warm, cached prompt": {
        "context": {"length": 55},
        "total_duration": 1230275417,
        "load_duration": 988875,
        "prompt_eval_duration": 33914000,
        "eval_count": 38,
        "eval_duration": 1194343000,
    },
    # test_chat/test_ollama_chat_with_events_with_no_content.yaml
    "chat, loading": {
        "total_duration": 10386172208,
        "load_duration": 8078850750,
        "prompt_eval_count": 17,
        "prompt_eval_duration": 175861000,
        "eval_count": 66,
        "eval_duration": 2127200000,
    },
    # test_chat/test_ollama_chat_tool_calls_with_events_with_content.yaml
    "chat, warm": {
        "total_duration": 6037504209,
        "load_duration": 28126292,
        "prompt_eval_count": 44,
        "prompt_eval_duration": 182953000,
        "eval_count": 113,
        "eval_duration": 5825102000,
    },
}


@pytest.mark.parametrize(
    ("name", "load", "truncated"),
    [
        ("generate, loading", True, False),  # 80 = 17 + 63: the prompt read whole
        ("generate, warm, cached prompt", False, None),  # no prompt_eval_count: cannot tell
        ("chat, loading", True, None),  # chat: never told
        ("chat, warm", False, None),
    ],
)
def test_real_recorded_replies(name: str, load: bool, truncated: bool | None) -> None:
    reply = CASSETTES[name]
    method = name.split(",")[0]
    assert s.model_load(reply, THRESHOLD) is load
    assert s.prompt_truncated(method, {"prompt": "Tell me a joke about OpenTelemetry"}, reply) is truncated
    rest = s.other_duration(reply)  # 1.0 to 4.3 ms: templating, tokenizing, no queue
    assert rest is not None
    assert 0 < rest < 0.01 * reply["total_duration"]


def test_a_prompt_cut_to_the_context_reads_as_cut() -> None:
    # 5000 prompt tokens into a 4096 context: the runner read 4096 (plus BOS), context holds them all.
    cut = {"context": {"length": 5000 + 30}, "prompt_eval_count": 4097, "eval_count": 31}
    assert s.prompt_truncated("generate", {"prompt": "..."}, cut) is True


def test_truncation_is_never_claimed_where_it_cannot_be_told() -> None:
    cut = {"context": list(range(5030)), "prompt_eval_count": 4097, "eval_count": 31}
    assert s.prompt_truncated("chat", {"messages": []}, cut) is None
    assert s.prompt_truncated("generate", {"prompt": "...", "raw": True}, cut) is None
    assert s.prompt_truncated("generate", {"prompt": "...", "images": [{"bytes": 9}]}, cut) is None
    assert s.prompt_truncated("generate", {"prompt": "..."}, {**cut, "context": None}) is None
    assert s.prompt_truncated("generate", {"prompt": "..."}, {**cut, "prompt_eval_count": None}) is None


def test_the_context_fill_needs_the_requests_num_ctx() -> None:
    reply = {"prompt_eval_count": 2048, "eval_count": 1024}
    assert s.context_signals({"options": {"num_ctx": 4096}}, reply) == {
        s.NUM_CTX: 4096,
        s.USED_FRACTION: 0.75,
    }
    assert s.context_signals({"options": {"temperature": 0}}, reply) == {}
    assert s.context_signals({}, reply) == {}
    assert s.context_signals({"options": {"num_ctx": 4096}}, {"prompt_eval_count": 3000}) == {s.NUM_CTX: 4096}
    assert s.context_signals({"options": {"num_ctx": 0}}, reply) == {}


def test_the_servers_other_time_is_what_the_four_durations_leave() -> None:
    assert s.other_duration(REAL_REPLY) == 7632288875 - 3380045000 - 1595137958 - 2651183208
    assert s.other_duration({**REAL_REPLY, "total_duration": 1}) is None  # clocks that disagree
    assert s.other_duration({"total_duration": 5}) is None


def test_a_model_is_one_with_or_without_its_latest_tag() -> None:
    assert s.model_key("http://h:1", "llama3.2") == s.model_key("http://h:1", "llama3.2:latest")
    assert s.model_key("http://h:1", "llama3.2") != s.model_key("http://h:2", "llama3.2")
    assert s.model_key("h", "hf.co/org/model") == ("h", "hf.co/org/model:latest")
    assert s.model_key("h", None) is None


def test_only_load_time_options_count() -> None:
    options = {"num_ctx": 8192, "temperature": 0.2, "num_gpu": 0, "seed": 1}
    assert s.load_options({"options": options}) == {"num_ctx": 8192, "num_gpu": 0}


# --- the reasons, from the process's memory of its calls ------------------------------------------


KEY = ("http://h:1", "llama3.2:latest")


def test_reasons_in_turn() -> None:
    history = _History()
    first = history.begin(KEY, {}, None)
    assert first.reason() == s.FIRST_USE
    history.end(first)
    changed = history.begin(KEY, {"num_ctx": 8192}, 0)
    assert changed.reason() == s.OPTIONS_CHANGED
    history.end(changed)  # keep_alive 0: unloaded when this call ended
    expired = history.begin(KEY, {"num_ctx": 8192}, None)
    assert expired.reason() == s.KEEP_ALIVE_EXPIRED
    history.end(expired)  # the default 5 minutes now
    assert history.begin(KEY, {"num_ctx": 8192}, None).reason() == s.UNEXPLAINED


def test_a_call_still_running_keeps_the_model_from_expiring() -> None:
    history = _History()
    history.end(history.begin(KEY, {}, 0))
    running = history.begin(KEY, {}, None)
    assert history.begin(KEY, {}, None).reason() == s.UNEXPLAINED  # not expired: `running` holds it
    history.end(running)


def test_calls_begun_together_are_all_first_uses() -> None:
    history = _History()
    visits = [history.begin(KEY, {}, None) for _ in range(3)]
    assert [v.reason() for v in visits] == [s.FIRST_USE] * 3


def test_calls_running_together_with_other_options_explain_each_others_loads() -> None:
    """The server serves concurrent calls in an order of its own: either may have reloaded the model."""
    history = _History()
    history.end(history.begin(KEY, {}, None))
    small = history.begin(KEY, {"num_ctx": 4096}, None)  # changed from the previous call's
    large = history.begin(KEY, {"num_ctx": 8192}, None)
    same = history.begin(KEY, {"num_ctx": 8192}, None)  # as the call just begun, but `small` runs too
    later = history.begin(KEY, {"num_ctx": 4096}, None)  # begun while `small` still runs: its load
    # may be the reload back from `large`'s options, which `small` overlapped
    history.end(large)
    history.end(same)
    history.end(later)
    assert [v.reason() for v in (small, large, same, later)] == [s.OPTIONS_CHANGED] * 4
    history.end(small)
    alone = history.begin(KEY, {"num_ctx": 4096}, None)  # nothing else running: none of them explains it
    assert alone.reason() == s.UNEXPLAINED
    history.end(alone)


def test_running_calls_are_bounded() -> None:
    history = _History()
    for i in range(1000):
        history.begin(KEY, {"num_ctx": 1000 + i}, None)  # never ended, as streams left open
    assert len(history._models[KEY].running) <= 256
    for _ in range(1000):
        history.begin(KEY, {}, None)
    assert history._models[KEY].running[frozenset()] == 1000  # the same options: one entry, counted


def test_the_memory_is_bounded() -> None:
    history = _History()
    for i in range(1000):
        history.end(history.begin(("h", f"model-{i}:latest"), {}, None))
    assert len(history._models) == 256


# --- end to end: the real client, the double's scheduler ------------------------------------------


@pytest.fixture(autouse=True)
def _autolog() -> None:
    mlflow_ollama.autolog()


def _attributes() -> list[dict[str, Any]]:
    return [dict(span.attributes) for trace in traces() for span in trace.data.spans]


def _loads() -> list[tuple[bool | None, str | None]]:
    return [(a.get(s.MODEL_LOAD), a.get(s.MODEL_LOAD_REASON)) for a in _attributes()]


def test_first_use_then_warm_then_an_options_change_then_keep_alive_then_a_restart(
    client: Any, server: OllamaDouble
) -> None:
    loads_before = server.scheduler.loads  # the session's double counts every test's loads
    client.chat(model=MODEL, messages=user("one"))
    client.chat(model=MODEL, messages=user("two"), options={"temperature": 0.1})  # sampling: no reload
    client.chat(model=MODEL, messages=user("three"), options={"num_ctx": 8192}, keep_alive=0)
    client.chat(model=MODEL, messages=user("four"), options={"num_ctx": 8192})
    client.chat(model=MODEL, messages=user("five"), options={"num_ctx": 8192})
    server.scheduler.unload_all()  # the server restarts, or another app's model evicts ours
    client.chat(model=MODEL, messages=user("six"), options={"num_ctx": 8192})
    assert _loads() == [
        (True, s.FIRST_USE),
        (False, None),
        (True, s.OPTIONS_CHANGED),
        (True, s.KEEP_ALIVE_EXPIRED),
        (False, None),
        (True, s.UNEXPLAINED),
    ]
    assert server.scheduler.loads - loads_before == 4


def test_keep_alive_as_a_duration_runs_out(client: Any) -> None:
    client.generate(model=MODEL, prompt="one", keep_alive="1s")
    time.sleep(1.1)
    client.generate(model=MODEL, prompt="two")
    assert _loads() == [(True, s.FIRST_USE), (True, s.KEEP_ALIVE_EXPIRED)]


def test_a_negative_keep_alive_never_expires(client: Any) -> None:
    client.chat(model=MODEL, messages=user("one"), keep_alive=-1)
    client.chat(model=MODEL, messages=user("two"))
    assert _loads() == [(True, s.FIRST_USE), (False, None)]


def test_streams_and_async_calls_carry_the_signals(client: Any, async_client: Any) -> None:
    list(client.chat(model=MODEL, messages=user("one"), stream=True))

    async def both() -> None:
        await async_client.chat(model=MODEL, messages=user("two"), options={"num_ctx": 2048})
        async for _ in await async_client.generate(model=MODEL, prompt="three", stream=True):
            pass

    asyncio.run(both())
    assert _loads() == [(True, s.FIRST_USE), (True, s.OPTIONS_CHANGED), (True, s.OPTIONS_CHANGED)]


def test_embeddings_load_models_too(client: Any) -> None:
    client.embed(model="nomic-embed-text", input="one")
    client.embed(model="nomic-embed-text", input="two")
    assert _loads() == [(True, s.FIRST_USE), (False, None)]


def test_the_signals_stay_with_content_off(client: Any) -> None:
    mlflow_ollama.autolog(log_content=False)
    client.generate(model=MODEL, prompt="a b c d e f g h i j k l", options={"num_ctx": 8}, keep_alive=0)
    client.generate(model=MODEL, prompt="a b", options={"num_ctx": 8})  # unloaded after the first: reloads
    client.generate(model=MODEL, prompt="a b", options={"num_ctx": 16, "stop": ["secret"]})
    attributes, expired, changed = _attributes()
    assert attributes[s.MODEL_LOAD] is True
    assert attributes[s.MODEL_LOAD_REASON] == s.FIRST_USE
    assert attributes[s.PROMPT_TRUNCATED] is True
    assert attributes[s.NUM_CTX] == 8
    assert expired[s.MODEL_LOAD_REASON] == s.KEEP_ALIVE_EXPIRED  # keep_alive read with content off
    assert changed[s.MODEL_LOAD_REASON] == s.OPTIONS_CHANGED  # and the load options


def test_a_generate_prompt_longer_than_the_context_is_cut(client: Any) -> None:
    client.generate(model=MODEL, prompt="one two three", options={"num_ctx": 64})
    client.generate(model=MODEL, prompt=" ".join(["word"] * 100), options={"num_ctx": 64})
    short, long = _attributes()
    assert short[s.PROMPT_TRUNCATED] is False
    assert long[s.PROMPT_TRUNCATED] is True
    assert short[s.NUM_CTX] == long[s.NUM_CTX] == 64
    assert short[s.USED_FRACTION] == (3 + 5) / 64  # 3 prompt tokens; "You said: one two three" is 5
    assert long[s.USED_FRACTION] > 1  # the prompt read (64) plus the output: more than the window


def test_chat_never_claims_a_cut(client: Any) -> None:
    history = [*user(" ".join(["old"] * 50)), {"role": "assistant", "content": "ok"}, *user("now")]
    client.chat(model=MODEL, messages=history, options={"num_ctx": 16})
    [attributes] = _attributes()
    assert s.PROMPT_TRUNCATED not in attributes  # the server dropped the first message, silently
    assert attributes[s.NUM_CTX] == 16


def test_the_servers_other_time(client: Any) -> None:
    client.chat(model=MODEL, messages=user("hello there"))
    [attributes] = _attributes()
    assert attributes[s.OTHER_DURATION] == 1_000_000  # the double's templating time


def test_the_threshold_is_settable_and_a_bad_value_is_warned_about(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_OLLAMA_LOAD_THRESHOLD_MS", str(LOAD_NS / 1e6 + 1))
    client.chat(model=MODEL, messages=user("one"))
    monkeypatch.setenv("MLFLOW_OLLAMA_LOAD_THRESHOLD_MS", str(WARM_NS / 1e6))
    client.chat(model=MODEL, messages=user("two"))
    monkeypatch.setenv("MLFLOW_OLLAMA_LOAD_THRESHOLD_MS", "fast")
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        client.chat(model=MODEL, messages=user("three"), keep_alive=0)
        client.chat(model=MODEL, messages=user("four"))
    assert _loads() == [(False, None), (True, s.UNEXPLAINED), (False, None), (True, s.KEEP_ALIVE_EXPIRED)]
    assert "MLFLOW_OLLAMA_LOAD_THRESHOLD_MS='fast'" in caplog.text


def test_a_scripted_load_duration_is_reported_as_is(client: Any, server: OllamaDouble) -> None:
    server.enqueue(Reply(content="hi", load_duration=THRESHOLD))
    client.chat(model=MODEL, messages=user("one"))
    assert _loads() == [(True, s.FIRST_USE)]


def test_threads_calling_at_once(server: OllamaDouble) -> None:
    loads_before = server.scheduler.loads
    clients = [ollama.Client(host=server.url) for _ in range(8)]

    def call(i: int) -> None:
        clients[i].chat(model=MODEL, messages=user(f"thread {i}"), options={"num_ctx": 4096 + 1024 * (i % 2)})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = [span for trace in traces() for span in chat_spans(trace)]
    assert len(spans) == 8
    reasons = {span.attributes.get(s.MODEL_LOAD_REASON) for span in spans if span.attributes[s.MODEL_LOAD]}
    assert reasons <= {s.FIRST_USE, s.OPTIONS_CHANGED}
    assert sum(span.attributes[s.MODEL_LOAD] for span in spans) == server.scheduler.loads - loads_before


# --- finding the traces: MLflow's search, against the real store ---------------------------------

MLFLOW_VERSION = tuple(int(p) for p in importlib.metadata.version("mlflow").split(".")[:2])

# The filters docs/signals.md gives. MLflow matches a span attribute against the span's JSON text,
# with the pattern placed right after the key: ': "true"' is the attribute's value itself; `_`
# stands for the backslash before a string value's quotes.
LOADED = "span.attributes.ollama.model_load LIKE ': \"true\"'"
OPTIONS_CHANGED = 'span.attributes.ollama.model_load.reason LIKE \': "_"options_changed_""\''
CUT = "span.attributes.ollama.context.prompt_truncated LIKE ': \"true\"'"


@pytest.mark.skipif(MLFLOW_VERSION < (3, 6), reason="MLflow filters on span attributes from 3.6")
def test_the_documented_filters_find_exactly_those_traces(client: Any) -> None:
    client.generate(model=MODEL, prompt="one two three")  # first use
    client.generate(model=MODEL, prompt="four five six")  # warm
    client.generate(model=MODEL, prompt=" ".join(["word"] * 100), options={"num_ctx": 64})  # reload, cut
    ids = [t.info.trace_id for t in traces()]

    def found(filter_string: str) -> list[str]:
        return sorted(t.info.trace_id for t in mlflow.search_traces(filter_string=filter_string, return_type="list"))

    assert found(LOADED) == sorted([ids[0], ids[2]])
    assert found(OPTIONS_CHANGED) == [ids[2]]
    assert found(CUT) == [ids[2]]
    if MLFLOW_VERSION >= (3, 10):  # conditions on the same span
        assert found(f"span.name = 'ollama.generate' AND {LOADED}") == sorted([ids[0], ids[2]])
        assert found(f"span.name = 'ollama.chat' AND {LOADED}") == []
    # What does not work: '=' compares the pattern with the whole span's text.
    assert found("span.attributes.ollama.model_load.reason = 'options_changed'") == []
