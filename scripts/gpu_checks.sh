#!/usr/bin/env bash
# Everything that needs CUDA, in one run, for a lent GPU machine that has its own torch and
# Triton (no .venv there): the CUDA tests (the fused Triton kernels compiled, the atlas on the
# GPU), the paper kernels vs the six float64 products (fused and torch-ops paths), where their GPU
# time goes, and the atlas end to end vs bare forward passes on a ~1.1B random Llama.
# Run from the repository root; about 6-8 minutes on an H200.
#   scripts/gpu_checks.sh [output folder]
set -uo pipefail
out="${1:-out/gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
  | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_triton_kernels.py 2>&1 | tee "$out/test_gpu.txt"
python3 benchmarks/feature_speed.py --device cuda 2>&1 | tee "$out/feature_speed_cuda.txt"
python3 benchmarks/cuda_profile.py 2>&1 | tee "$out/cuda_profile.txt"
timeout 300 python3 benchmarks/gpu_end_to_end.py 2>&1 | tee "$out/gpu_end_to_end.txt"
