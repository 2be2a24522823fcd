"""Production topology: two app processes into one ``mlflow server`` on PostgreSQL, by both routes.

PostgreSQL (Debian's package) runs in a data directory of this test's own on a loopback port;
``mlflow server --backend-store-uri postgresql://... --workers 2`` on top of it. Two app processes
per route send plain and streamed chats and the tool loop at the same time, one pair by MLflow's
default export (``MLFLOW_TRACKING_URI``), the other by OTLP to the server's own ``/v1/traces``.
Every trace must be stored (counted with SQL in the database, and through the server's API), read
back with the same spans and attributes by both routes, and render as a chat in the MLflow UI.
Rates and loss under load are the scale benchmark's business (``benchmarks/scale.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ollama
import pytest

from mlflow_ollama.testing import OllamaDouble
from support import MODEL

from .parts import MlflowServer, Postgres, need, run_app, start_mlflow_server, start_postgres
from .test_server import shape
from .test_ui import open_trace, shows, wait_shows

SCENARIOS = ["chat", "chat_stream", "tool_loop"]
SPANS = {"chat": 1, "chat_stream": 1, "tool_loop": 4}
PROCESSES = 2
ROUTES = ["default", "otlp"]


@pytest.fixture(scope="module")
def production() -> Iterator[tuple[Postgres, MlflowServer]]:
    """PostgreSQL and a two-worker ``mlflow server`` on it (job runners off: nothing here uses them)."""
    no_jobs = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with start_postgres() as postgres, start_mlflow_server(postgres.uri, workers=2, env=no_jobs) as mlflow_server:
        yield postgres, mlflow_server


def route_env(route: str, server: MlflowServer, experiment: str) -> dict[str, str]:
    """The app's whole MLflow configuration for a route, as a user would set it."""
    env = {"MLFLOW_TRACKING_URI": server.url, "APP_EXPERIMENT_ID": experiment}
    if route == "otlp":
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{server.url}/v1/traces"
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = f"x-mlflow-experiment-id={experiment}"
    return env


@pytest.fixture(scope="module")
def sent(production: tuple[Postgres, MlflowServer], server: OllamaDouble) -> dict[str, str]:
    """Both routes at once, two app processes each; the experiment each route's traces went to."""
    _, mlflow_server = production
    experiments = {route: mlflow_server.new_experiment() for route in ROUTES}
    jobs = [(route, route_env(route, mlflow_server, experiments[route])) for route in ROUTES for _ in range(PROCESSES)]
    # The apps run at once against one server: the model is loaded before, so that no app's call
    # waits for a load that another's happened to start (their spans are compared).
    ollama.Client(host=server.url).chat(model=MODEL, messages=[{"role": "user", "content": "load"}])
    with ThreadPoolExecutor(len(jobs)) as pool:
        runs = [
            pool.submit(run_app, server, env, SCENARIOS, expect_trace_ids=False, fresh_server=False) for _, env in jobs
        ]
        for (route, _), run in zip(jobs, runs, strict=True):
            result = run.result()
            if route == "default":
                assert all(result.trace_ids.values()), result.trace_ids
    return experiments


def stored(production: tuple[Postgres, MlflowServer], experiment: str) -> list[Any]:
    _, mlflow_server = production
    return list(mlflow_server.client.search_traces(experiment_ids=[experiment], max_results=500))


def key(trace: Any) -> tuple[str, str]:
    """What a trace was: its root span's name and the first message it was asked."""
    root = next(s for s in trace.data.spans if s.parent_id is None)
    chat = min((s for s in trace.data.spans if s.name == "ollama.chat"), key=lambda s: s.start_time_ns)
    return root.name, chat.attributes["mlflow.chat.messages"][0]["content"]


@pytest.mark.parametrize("route", ROUTES)
def test_postgres_stores_every_trace_from_both_processes(
    production: tuple[Postgres, MlflowServer], sent: dict[str, str], route: str
) -> None:
    postgres, _ = production
    experiment = int(sent[route])
    [(traces, spans)] = postgres.query(
        "SELECT (SELECT count(*) FROM trace_info WHERE experiment_id = %s),"
        " (SELECT count(*) FROM spans WHERE experiment_id = %s)",
        experiment,
        experiment,
    )
    assert traces == PROCESSES * len(SCENARIOS)
    assert spans == PROCESSES * sum(SPANS.values())
    read = stored(production, sent[route])
    assert len(read) == traces
    assert sorted(key(t)[0] for t in read) == sorted(["ollama.chat", "ollama.chat", "tool_loop"] * PROCESSES)
    assert all(t.info.state.name == "OK" for t in read)


def test_postgres_both_routes_read_back_the_same_spans(
    production: tuple[Postgres, MlflowServer], sent: dict[str, str]
) -> None:
    by_route = {route: sorted(stored(production, sent[route]), key=key) for route in ROUTES}
    default, otlp = by_route["default"], by_route["otlp"]
    assert [key(t) for t in default] == [key(t) for t in otlp]
    for ours, theirs in zip(default, otlp, strict=True):
        for a, b in zip(shape(ours), shape(theirs), strict=True):
            assert {**a, "attributes": None} == {**b, "attributes": None}
            assert a["attributes"].keys() == b["attributes"].keys()
            differing = {k: (v, b["attributes"][k]) for k, v in a["attributes"].items() if v != b["attributes"][k]}
            # MLflow 3.17.2's server re-encodes each OTLP attribute as JSON (Span.from_otel_proto),
            # so a number set through MLflow's span API comes back as its text: 20 as "20". Every
            # other value (strings, the chat messages, token usage) reads back unchanged.
            assert all(isinstance(x, (int, float)) and y == json.dumps(x) for x, y in differing.values()), differing
        # Trace level: the server sums token usage for both routes, and sets the same request preview.
        assert ours.info.token_usage == theirs.info.token_usage
        assert ours.info.request_preview == theirs.info.request_preview
    chat = next(
        s for t in otlp for s in t.data.spans if s.name == "ollama.chat" and "ollama.stream.chunks" in s.attributes
    )
    assert chat.attributes["mlflow.chat.messages"][-1] == {
        "role": "assistant",
        "content": "You said: Count to five, slowly please.",
    }
    assert chat.attributes["mlflow.chat.tokenUsage"]["total_tokens"] > 0


@pytest.mark.parametrize("route", ROUTES)
def test_postgres_ui_renders_the_chat_by_each_route(
    page: Any, production: tuple[Postgres, MlflowServer], sent: dict[str, str], route: str
) -> None:
    _, mlflow_server = production
    trace = next(t for t in stored(production, sent[route]) if key(t)[1] == "Count to five, slowly please.")
    open_trace(page, mlflow_server, trace)
    text = wait_shows(page, "Assistant", "You said: Count to five, slowly please.")
    assert shows(text, "User", "Count to five, slowly please."), text
    assert shows(text, "Assistant", "You said: Count to five, slowly please."), text


def test_postgres_tracing_only_install_by_otlp(production: tuple[Postgres, MlflowServer], server: OllamaDouble) -> None:
    """``mlflow-tracing`` without ``mlflow``, plus the OTLP exporter: the OTEL variables and a tracking
    URI are the whole configuration; no experiment in code, the header names it. (Without a tracking
    URI, mlflow-tracing 3.17.2 starts no span at all: "No module named 'sqlparse'".)"""
    python = os.environ.get("MLFLOW_OLLAMA_TRACING_ONLY_PYTHON", "")
    need(bool(python), "no tracing-only interpreter (MLFLOW_OLLAMA_TRACING_ONLY_PYTHON); `nox -s e2e` makes one")
    postgres, mlflow_server = production
    experiment = mlflow_server.new_experiment()
    env = {k: v for k, v in route_env("otlp", mlflow_server, experiment).items() if k != "APP_EXPERIMENT_ID"}
    run_app(server, env, ["chat", "chat_stream"], python=python, expect_trace_ids=False)
    [(traces,)] = postgres.query("SELECT count(*) FROM trace_info WHERE experiment_id = %s", int(experiment))
    assert traces == 2
    read = stored(production, experiment)
    assert sorted(key(t)[1] for t in read) == ["Answer in one line.", "Count to five, slowly please."]
    assert all(s.attributes.get("mlflow.chat.messages") for t in read for s in t.data.spans)
