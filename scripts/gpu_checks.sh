#!/usr/bin/env bash
# The checks that need CUDA, for a GPU machine that has its own torch (no .venv there):
# the CUDA tests and the feature benchmark on the GPU. Run from the repository root.
#   scripts/gpu_checks.sh [output folder]
set -uo pipefail
out="${1:-out/gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py 2>&1 | tee "$out/test_gpu.txt"
python3 benchmarks/feature_speed.py --device cuda 2>&1 | tee "$out/feature_speed_cuda.txt"
