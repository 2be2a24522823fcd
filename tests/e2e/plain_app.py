"""An Ollama app that knows nothing of MLflow: the launcher's end-to-end tests run it unmodified.

    python plain_app.py NAME [--child] [--embed] [--exit N]

It chats once, saying ``hello from NAME``, with ``from ollama import chat`` bound at import time;
with ``--embed`` it also embeds NAME; with ``--child`` it runs itself again as ``NAME-child`` in a
new Python process, and fails if that fails; then it exits with N. Its last line of output is JSON:
whether this process ended up with MLflow and mlflow-ollama imported (it imports neither itself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import ollama
from ollama import chat

options = argparse.ArgumentParser()
options.add_argument("name")
options.add_argument("--child", action="store_true")
options.add_argument("--embed", action="store_true")
options.add_argument("--exit", type=int, default=0)
args = options.parse_args()

print(chat(model="llama3.2", messages=[{"role": "user", "content": f"hello from {args.name}"}]).message.content)
if args.embed:
    ollama.embed(model="all-minilm", input=[args.name])
if args.child:
    subprocess.run([sys.executable, __file__, f"{args.name}-child"], check=True)
print(json.dumps({"imported": sorted(m for m in ("mlflow", "mlflow_ollama") if m in sys.modules)}), flush=True)
sys.exit(args.exit)
