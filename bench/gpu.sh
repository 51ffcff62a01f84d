#!/usr/bin/env bash
# Prepared GPU benchmark: one short run on one CUDA GPU (< 8 minutes), results as JSON under $OUT
# (or bench/results/). Run from the repository root after the README's install step:
#   bash bench/gpu.sh
set -euo pipefail
out="${OUT:-bench/results}"
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name())"
# Augmentation alone (BatchAugment on the GPU vs the PIL DataLoader on this host's CPUs), NAG and EMA.
"$py" -m fgvc_ref bench --device cuda --only augment,optim,ema --repeats 30 --json "$out/gpu_bench.json"
# The CUDA tests: batched augmentation equals the CPU path and never syncs with the host.
"$py" -m pytest -q tests -k cuda
