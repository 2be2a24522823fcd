"""autolog() and revert(): what is patched, idempotence, aliases, the import hook, the switches."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import types
from typing import Any
from unittest import mock

import ollama
import pytest
import wrapt

import mlflow_ollama
from mlflow_ollama._patch import TARGETS
from mlflow_ollama.testing import OllamaDouble
from support import MODEL, chat_spans, only_trace, traces, user


def _current(target: Any) -> Any:
    parent, attribute, _ = wrapt.resolve_path(sys.modules[target.module], target.path)
    return vars(parent)[attribute]


def _present(target: Any) -> bool:
    """Whether the installed releases have this target (the GenAI export is MLflow 3.15+)."""
    if target.module.startswith("mlflow."):
        with contextlib.suppress(ImportError):
            importlib.import_module(target.module)
    try:
        _current(target)
    except (KeyError, AttributeError):
        return False
    return True


def _originals() -> dict[str, Any]:
    return {f"{t.module}:{t.path}": _current(t) for t in TARGETS if _present(t)}


def test_autolog_wraps_every_target_and_revert_restores_the_same_objects(client: Any) -> None:
    before = _originals()
    # Every target of a method this SDK has is there; the MLflow one may be missing (MLflow < 3.15).
    expected = [t for t in TARGETS if t.kind != "semconv" and (not t.method or hasattr(ollama.Client, t.method))]
    assert {f"{t.module}:{t.path}" for t in expected} <= set(before)
    mlflow_ollama.autolog()
    for target in TARGETS:
        if _present(target):
            assert isinstance(_current(target), wrapt.FunctionWrapper), target
    mlflow_ollama.revert()
    after = _originals()
    for name, original in before.items():
        assert after[name] is original, name
    assert vars(ollama.Client)["chat"] is before["ollama._client:Client.chat"]
    client.chat(model=MODEL, messages=user("hi"))
    assert traces() == []


def test_revert_when_nothing_is_patched_does_nothing() -> None:
    before = _originals()
    mlflow_ollama.revert()
    mlflow_ollama.revert()
    assert _originals() == before


def test_autolog_twice_gives_one_span_per_call_and_does_not_stack(client: Any) -> None:
    original = vars(ollama.Client)["chat"]
    mlflow_ollama.autolog()
    mlflow_ollama.autolog()
    assert vars(ollama.Client)["chat"].__wrapped__ is original
    client.chat(model=MODEL, messages=user("once"))
    assert len(chat_spans(only_trace())) == 1


def test_autolog_after_revert_traces_again(client: Any) -> None:
    mlflow_ollama.autolog()
    mlflow_ollama.revert()
    mlflow_ollama.autolog()
    client.chat(model=MODEL, messages=user("again"))
    assert len(chat_spans(only_trace())) == 1


def test_references_taken_while_patched_stop_tracing_after_revert(client: Any) -> None:
    mlflow_ollama.autolog()
    bound = client.chat
    module_level = ollama.chat
    mlflow_ollama.revert()
    bound(model=MODEL, messages=user("a"))
    module_level(model=MODEL, messages=user("b"))
    assert traces() == []


def test_chat_bound_before_autolog_is_traced_once_with_full_inputs(client: Any) -> None:
    from ollama import chat as early_chat

    early_method = client.chat  # bound to the original function, like the import above
    mlflow_ollama.autolog()
    early_chat(MODEL, user("early"), options={"temperature": 0})
    early_method(model=MODEL, messages=[ollama.Message(role="user", content="method")])
    spans = [chat_spans(t) for t in traces()]
    assert [len(s) for s in spans] == [1, 1]
    assert spans[0][0].inputs == {"model": MODEL, "messages": user("early"), "options": {"temperature": 0}}
    assert spans[1][0].inputs == {"model": MODEL, "messages": user("method")}
    assert spans[0][0].outputs["message"]["content"] == "You said: early"


def test_async_method_bound_before_autolog_is_traced_once(async_client: Any) -> None:
    early = async_client.chat
    mlflow_ollama.autolog()
    asyncio.run(early(model=MODEL, messages=user("early async")))
    [span] = chat_spans(only_trace())
    assert span.inputs == {"model": MODEL, "messages": user("early async")}


def test_other_sdk_calls_are_not_traced(client: Any) -> None:
    mlflow_ollama.autolog()
    client.list()
    client.show(MODEL)
    assert traces() == []


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE", " Off "])
def test_env_switch_turns_tracing_off_per_call(value: str, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", value)
    assert client.chat(model=MODEL, messages=user("off")).message.content == "You said: off"
    ollama.chat(model=MODEL, messages=user("off"))
    assert traces() == []


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "ON"])
def test_env_switch_on_values_keep_tracing(value: str, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", value)
    client.chat(model=MODEL, messages=user("on"))
    assert len(traces()) == 1


def test_env_switch_is_read_live_without_a_new_autolog(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
    client.chat(model=MODEL, messages=user("1"))
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "true")
    client.chat(model=MODEL, messages=user("2"))
    monkeypatch.delenv("MLFLOW_OLLAMA_AUTOLOG")
    client.chat(model=MODEL, messages=user("3"))
    assert [chat_spans(t)[0].inputs["messages"][0]["content"] for t in traces()] == ["2", "3"]


def test_while_off_a_lookup_gives_the_original_method(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    original = vars(ollama.Client)["chat"]
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
    # No wrapper on the disabled path (issue 7): the plain bound method of the original.
    looked_up_off = client.chat
    assert type(looked_up_off) is types.MethodType
    assert looked_up_off.__func__ is original
    assert isinstance(vars(ollama.Client)["chat"], wrapt.FunctionWrapper)  # still patched
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "true")
    looked_up_on = client.chat
    assert isinstance(looked_up_on, wrapt.BoundFunctionWrapper)


def test_a_mock_in_place_of_a_method_still_answers_with_tracing_off(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock.patch.object(ollama.Client, "chat", return_value="mocked"):
        mlflow_ollama.autolog()
        monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
        assert client.chat(model=MODEL, messages=user("x")) == "mocked"
        mlflow_ollama.revert()


def test_method_looked_up_while_off_and_called_when_on_is_traced_once(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
    chat = client.chat
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "true")
    assert chat(model=MODEL, messages=user("bound while off")).message.content == "You said: bound while off"
    [span] = chat_spans(only_trace())
    assert span.inputs == {"model": MODEL, "messages": user("bound while off")}


def test_method_looked_up_while_on_and_called_when_off_is_not_traced(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow_ollama.autolog()
    chat = client.chat
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "false")
    chat(model=MODEL, messages=user("bound while on"))
    assert traces() == []


def test_async_method_looked_up_while_off_and_awaited_when_on_is_traced_once(
    async_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "off")
    assert type(async_client.chat) is types.MethodType
    chat = async_client.chat
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "on")
    asyncio.run(chat(model=MODEL, messages=user("async bound while off")))
    [span] = chat_spans(only_trace())
    assert span.inputs == {"model": MODEL, "messages": user("async bound while off")}


def test_invalid_env_value_warns_once_and_keeps_tracing(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow_ollama.autolog()
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "perhaps-lifecycle")
    with caplog.at_level(logging.WARNING, logger="mlflow_ollama"):
        client.chat(model=MODEL, messages=user("1"))
        client.chat(model=MODEL, messages=user("2"))
    warnings = [r for r in caplog.records if "MLFLOW_OLLAMA_AUTOLOG" in r.getMessage()]
    assert len(warnings) == 1
    assert "true, 1, yes, on / false, 0, no, off" in warnings[0].getMessage()
    assert len(traces()) == 2


def test_silent_keeps_the_plugins_warnings_at_debug(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow_ollama.autolog(silent=True)
    monkeypatch.setenv("MLFLOW_OLLAMA_AUTOLOG", "perhaps-silent")
    with caplog.at_level(logging.DEBUG, logger="mlflow_ollama"):
        client.chat(model=MODEL, messages=user("1"))
    [record] = [r for r in caplog.records if "MLFLOW_OLLAMA_AUTOLOG" in r.getMessage()]
    assert record.levelno == logging.DEBUG


@pytest.mark.parametrize("options", [{"disable": True}, {"log_traces": False}])
def test_disable_or_log_traces_false_means_untraced(options: dict[str, bool], client: Any) -> None:
    mlflow_ollama.autolog()
    mlflow_ollama.autolog(**options)
    client.chat(model=MODEL, messages=user("x"))
    assert traces() == []
    assert not isinstance(vars(ollama.Client)["chat"], wrapt.FunctionWrapper)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tempfile.mkdtemp(prefix="mlflow-ollama-subprocess-"),  # MLflow may write ./mlruns there
    )


def test_autolog_before_import_does_not_import_ollama_and_patches_on_import(server: OllamaDouble) -> None:
    result = _run_python(
        """
        import os, sys
        import mlflow, mlflow_ollama, wrapt
        mlflow_ollama.autolog()
        assert "ollama" not in sys.modules, "autolog imported ollama"
        os.environ["OLLAMA_HOST"] = os.environ["DOUBLE_URL"]  # read when the user imports ollama
        import ollama
        assert isinstance(vars(ollama.Client)["chat"], wrapt.FunctionWrapper)
        experiment = mlflow.set_experiment("import-hook").experiment_id
        ollama.chat(model="llama3.2", messages=[{"role": "user", "content": "hook"}])
        mlflow.flush_trace_async_logging()
        [trace] = mlflow.search_traces(experiment_ids=[experiment], return_type="list")
        print([s.name for s in trace.data.spans])
        """,
        DOUBLE_URL=server.url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['ollama.chat']"


def test_a_broken_mlflow_never_breaks_import_ollama_or_the_call(server: OllamaDouble) -> None:
    """A mixed MLflow install can leave ``import mlflow`` failing; the import hook must not pass that on."""
    result = _run_python(
        """
        import logging, os, sys
        sys.modules["mlflow"] = None  # `import mlflow` now raises ImportError, as in a broken install
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        import mlflow_ollama
        mlflow_ollama.autolog()
        os.environ["OLLAMA_HOST"] = os.environ["DOUBLE_URL"]
        import ollama  # the hook tries to patch here
        reply = ollama.chat(model="llama3.2", messages=[{"role": "user", "content": "still here"}])
        print(reply.message.content, type(vars(ollama.Client)["chat"]).__name__)
        """,
        DOUBLE_URL=server.url,
        MLFLOW_OLLAMA_STRICT="false",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "You said: still here function"
    assert "mlflow-ollama failed to import MLflow, so Ollama calls are not traced" in result.stderr


def test_importing_the_package_imports_neither_ollama_nor_mlflow() -> None:
    result = _run_python("import sys, mlflow_ollama; print('ollama' in sys.modules, 'mlflow' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


def test_revert_before_import_means_import_patches_nothing() -> None:
    result = _run_python(
        """
        import mlflow_ollama, wrapt
        mlflow_ollama.autolog()
        mlflow_ollama.revert()
        import ollama
        print(isinstance(vars(ollama.Client)["chat"], wrapt.FunctionWrapper))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_one_span_when_another_wrapper_sits_on_ours_across_revert_and_autolog(client: Any) -> None:
    sdk_original = vars(ollama.Client)["chat"]
    mlflow_ollama.autolog()

    def other_tracer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    parent, attribute, original = wrapt.resolve_path(ollama.Client, "chat")
    setattr(parent, attribute, wrapt.FunctionWrapper(original, other_tracer))
    try:
        mlflow_ollama.revert()  # ours is under theirs: left in place, inert
        mlflow_ollama.autolog()  # a new wrapper on top of theirs; the old one wakes up too
        client.chat(model=MODEL, messages=user("x"))
        assert len(chat_spans(only_trace())) == 1
    finally:
        mlflow_ollama.revert()
        ollama.Client.chat = sdk_original  # type: ignore[method-assign]  # theirs and our inert one


def test_a_module_level_shim_does_not_decide_the_recorded_argument_names(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ollama, "chat", lambda *args, **kwargs: client.chat(*args, **kwargs))
    mlflow_ollama.autolog()
    client.chat(MODEL, user("positional"))
    [span] = chat_spans(only_trace())
    assert span.inputs == {"model": MODEL, "messages": user("positional")}
