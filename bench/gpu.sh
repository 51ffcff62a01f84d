#!/usr/bin/env bash
# Prepared GPU benchmark: one short run on one CUDA GPU (aim: < 8 minutes), JSON under $OUT (or bench/results/).
# Run from the repository root after the README's install step:   bash bench/gpu.sh
set -euo pipefail
out="${OUT:-bench/results}"
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name())"
# 1. Augmentation alone (BatchAugment on the GPU vs the PIL DataLoader on this host's CPUs), NAG and EMA.
"$py" -m fgvc_ref bench --device cuda --only augment,optim,ema --repeats 30 --json "$out/gpu_bench.json"
# 2. Stage 6 (ema) for 3 epochs: ResNet-50, batch 128, bf16, 224 px, on a synthetic 8,144-image cache:
#    model-only step vs the fast path vs the reference path.
"$py" -m fgvc_ref bench --device cuda --only train --repeats 30 \
  --train-config model=resnet50,image_size=224,batch=128,images=8144,stage=ema,epochs=3 --json "$out/gpu_bench_train.json"
# 3. The CUDA tests: batched augmentation equals the CPU path and never syncs with the host.
"$py" -m pytest -q tests -k cuda
