"""mlflow-ollama demo: traced scenarios, then the trace tree printed in the terminal.

Uses the Ollama server at ``OLLAMA_HOST`` (default http://127.0.0.1:11434) when one answers, and
otherwise the project's loopback double, and says which. Traces go to ``sqlite:///mlflow.db``
unless ``MLFLOW_TRACKING_URI`` says otherwise. The model is ``MLFLOW_OLLAMA_DEMO_MODEL``
(default ``llama3.2``); it needs tool support for scenarios 2 and 3 on a real server.

    python docs/examples/demo.py
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import mlflow_ollama

# autolog() before `import ollama`: the patches go in when ollama is imported, and importing is
# left to us, because it reads OLLAMA_HOST.
mlflow_ollama.autolog()


def _ollama_answers(host: str) -> bool:
    url = host if "://" in host else f"http://{host}"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return b"Ollama is running" in response.read()
    except OSError:
        return False


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
      city: The name of the city
    """
    return f"22°C and sunny in {city}"


def main() -> int:
    host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    double = None
    if _ollama_answers(host):
        print(f"Using the Ollama server at {host}.")
    else:
        from mlflow_ollama.testing import OllamaDouble

        double = OllamaDouble().start()
        os.environ["OLLAMA_HOST"] = double.url
        print(f"No Ollama server answers at {host}: using the loopback double at {double.url}.")

    import mlflow
    import ollama
    from mlflow.entities import SpanType

    os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    experiment = mlflow.set_experiment("mlflow-ollama-demo")
    model = os.environ.get("MLFLOW_OLLAMA_DEMO_MODEL", "llama3.2")
    trace_ids: list[str] = []

    print("\n1. A plain chat")
    response = ollama.chat(model=model, messages=[{"role": "user", "content": "Why is the sky blue? One line."}])
    print("  ", response.message.content)
    trace_ids.append(_last_trace_id(mlflow))

    print("\n2. A tool call")
    response = ollama.chat(
        model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[get_weather]
    )
    for call in response.message.tool_calls or []:
        print(f"   the model calls {call.function.name}({call.function.arguments})")
    trace_ids.append(_last_trace_id(mlflow))

    print("\n3. The tool-calling loop")

    @mlflow.trace(span_type=SpanType.TOOL)
    def weather_tool(city: str) -> str:
        return get_weather(city)

    @mlflow.trace(span_type=SpanType.CHAIN, name="tool_loop")
    def tool_loop(question: str) -> str:
        messages: list[Any] = [{"role": "user", "content": question}]
        first = ollama.chat(model=model, messages=messages, tools=[get_weather])
        messages.append(first.message)
        for call in first.message.tool_calls or []:
            messages.append(
                {"role": "tool", "content": weather_tool(**call.function.arguments), "tool_name": "get_weather"}
            )
        return str(ollama.chat(model=model, messages=messages).message.content)

    print("  ", tool_loop("What is the weather in Tokyo?"))
    trace_ids.append(_last_trace_id(mlflow))

    print("\n4. A streamed chat")
    print("   ", end="")
    for part in ollama.chat(model=model, messages=[{"role": "user", "content": "Count to five."}], stream=True):
        print(part.message.content, end="", flush=True)
    print()
    trace_ids.append(_last_trace_id(mlflow))

    mlflow.flush_trace_async_logging()
    print("\nTraces:")
    for trace_id in trace_ids:
        _print_tree(mlflow.get_trace(trace_id))
    uri = mlflow.get_tracking_uri()
    page = f"#/experiments/{experiment.experiment_id}/traces"
    if uri.startswith(("http://", "https://")):  # a tracking server serves the UI itself
        print(f"\nOpen them in the MLflow UI:\n   {uri.rstrip('/')}/{page}")
    else:
        print(f"\nOpen them in the MLflow UI:\n   {ui_command(uri)}")
        print(f"   then http://127.0.0.1:5000/{page}")
    if double is not None:
        double.stop()
    return 0


def ui_command(uri: str) -> str:
    """``mlflow ui`` for this store, to run exactly as printed, from any directory.

    ``nox -s demo`` runs in a venv of its own, so a plain ``mlflow`` is not on the user's PATH: the
    command names the ``mlflow`` next to this interpreter, and a relative sqlite path is made absolute.
    """
    mlflow_cli = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    if uri.startswith("sqlite:///") and not os.path.isabs(uri.removeprefix("sqlite:///")):
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve().as_posix()}"
    command = [mlflow_cli, "ui", "--backend-store-uri", uri]
    return subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command)


def _last_trace_id(mlflow: Any) -> str:
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None, "no trace was recorded"
    return str(trace_id)


def _print_tree(trace: Any) -> None:
    spans = trace.data.spans
    children: dict[str | None, list[Any]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)

    def show(span: Any, depth: int) -> None:
        millis = (span.end_time_ns - span.start_time_ns) / 1e6
        usage = span.attributes.get("mlflow.chat.tokenUsage") or {}
        tokens = f"  tokens in/out {usage.get('input_tokens', '?')}/{usage.get('output_tokens', '?')}" if usage else ""
        if "ollama.stream.chunks" in span.attributes:
            tokens += f"  streamed {span.attributes['ollama.stream.chunks']} chunks"
        print(f"   {'  ' * depth}{span.name} [{span.span_type}] {millis:.1f} ms{tokens}")
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_time_ns):
            show(child, depth + 1)

    print(f"   trace {trace.info.trace_id} ({trace.info.status})")
    for root in children.get(None, []):
        show(root, 1)


if __name__ == "__main__":
    sys.exit(main())
