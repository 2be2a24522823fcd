"""The user-facing pages work as written.

docs/getting-started.md: its ``python`` code blocks are run, in order, each as its own script in a
fresh directory, with ``OLLAMA_HOST`` pointing at a loopback double and the user's MLflow defaults
(asynchronous export included); the trace they write is then read back from that directory's
store. Its ``bash`` blocks (pip install, ollama, mlflow ui) are not run. A code block with any other
language, or none, fails the test: each block is either run or marked as a shell command.

README.md is the package index's long description, where a relative link leads nowhere: every link
must be absolute (``http://``, ``https://``) or an anchor on the page itself, and a link into the
published site (mkdocs.yml's ``site_url``) must name a page of ``docs/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from mlflow_ollama.testing import OllamaDouble

ROOT = Path(__file__).resolve().parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
README = ROOT / "README.md"

RUN = "python"
NOT_RUN = {"bash"}

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)")  # [text](target) and ![alt](target)
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)  # [name]: target
_HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """The page's fenced code blocks, as (language, code)."""
    return [(match.group(1), match.group(2)) for match in _FENCE.finditer(text)]


def link_targets(text: str) -> list[str]:
    """Every link target of a markdown page outside code: inline, image, reference and HTML links."""
    prose = _INLINE_CODE.sub("", _FENCE.sub("", text))
    return [*_LINK.findall(prose), *_REFERENCE.findall(prose), *_HTML.findall(prose)]


def relative_links(text: str) -> list[str]:
    return [t for t in link_targets(text) if not t.startswith(("http://", "https://", "#"))]


def test_every_code_block_of_getting_started_is_run_or_marked_as_shell() -> None:
    blocks = code_blocks(GETTING_STARTED.read_text(encoding="utf-8"))
    assert [lang for lang, _ in blocks if lang != RUN and lang not in NOT_RUN] == []
    assert any("ollama.chat(" in code for lang, code in blocks if lang == RUN)


def test_getting_started_runs_as_written(tmp_path: Path) -> None:
    """The page's Python, pasted into files and run, leaves an ``ollama.chat`` span in the store."""
    scripts = [code for lang, code in code_blocks(GETTING_STARTED.read_text(encoding="utf-8")) if lang == RUN]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OLLAMA_"))}
    # A failure inside the plugin raises instead of being logged; no model catalog over the network.
    env.update(MLFLOW_TRACKING_URI=store, MLFLOW_OLLAMA_STRICT="true", MLFLOW_MODEL_CATALOG_URI="")
    if "PYTHONPATH" in os.environ:  # a run against a working tree rather than an installed package
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    with OllamaDouble() as double:
        env["OLLAMA_HOST"] = double.url
        outputs = []
        for number, code in enumerate(scripts, 1):
            script = tmp_path / f"block{number}.py"
            if sys.version_info[:3] in ((3, 12, 0), (3, 12, 1)) and "ollama.chat(" in code:
                # The page's own advice for these two releases (no thread may start at exit there).
                code += "mlflow.flush_trace_async_logging()\n"
            script.write_text(code, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
            )
            assert done.returncode == 0, f"code block {number} failed:\n{code}\n{done.stderr}"
            outputs.append(done.stdout)
    assert "You said: Hello!" in outputs[0]

    # A client of its own: mlflow.set_tracking_uri() would outlive this test on MLflow before 3.5,
    # where it wins over the MLFLOW_TRACKING_URI later tests set.
    client = mlflow.MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_traces(experiment_ids=experiments)
    names = [span.name for trace in found for span in trace.data.spans]
    assert "ollama.chat" in names, names


def test_readme_links_are_absolute() -> None:
    """README.md is the package index's page: a relative link there leads nowhere."""
    assert relative_links(README.read_text(encoding="utf-8")) == []


def test_readme_links_into_the_site_name_pages_that_exist() -> None:
    """``<site>/<page>/`` is built from ``docs/<page>.md``; a renamed page would leave the link dead."""
    site = re.search(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE)
    assert site, "mkdocs.yml has no site_url"
    root = site.group(1).rstrip("/") + "/"
    dead = []
    for target in link_targets(README.read_text(encoding="utf-8")):
        if not target.startswith(root):
            continue
        path = target.removeprefix(root).split("#")[0]
        if path in ("", "index.html"):
            path = "index.md"
        elif path.endswith("/"):
            path = path.rstrip("/") + ".md"
        if not (ROOT / "docs" / path).is_file():
            dead.append(target)
    assert dead == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("[docs](docs/usage.md)", ["docs/usage.md"]),
        ("![shot](docs/images/a.png)", ["docs/images/a.png"]),
        ("[CONTRIBUTING.md]: CONTRIBUTING.md", ["CONTRIBUTING.md"]),
        ('<img src="docs/images/a.png">', ["docs/images/a.png"]),
        ("[site](https://example.org/x/) [top](#install) [http](http://example.org)", []),
        ("`[not a link](inside/code)`\n```python\nx = [a](b)\n```\n", []),
    ],
)
def test_the_relative_link_check_sees_relative_links(text: str, found: list[str]) -> None:
    assert relative_links(text) == found
