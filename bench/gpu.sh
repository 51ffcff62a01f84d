#!/usr/bin/env bash
# Prepared GPU benchmark: one short run on one CUDA GPU (aim: < 8 minutes), JSON under $OUT (or results/).
# Run from the repository root after the README's install step:   bash bench/gpu.sh
# Then render it into RESULTS.md:   .venv/bin/python -m fgvc_ref report --bench results/gpu_bench.json --out RESULTS.md --section bench-gpu
set -euo pipefail
out="${OUT:-results}"
mkdir -p "$out"
py="${PYTHON:-.venv/bin/python}"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name())"
# 1. Everything side by side in one process: NAG vs torch SGD, EMA vs AveragedModel, BatchAugment on the GPU vs the
#    PIL DataLoader on this host's CPUs, and stage 6 (ema) for 3 epochs with ResNet-50, batch 128, bf16, 224 px on a
#    synthetic Stanford-Cars-sized cache (8,144 images): model-only step vs the fast path vs the reference path, plus
#    the evaluation forward; the report turns these into the projected wall time of the full reproduction.
"$py" -m fgvc_ref bench --device cuda --only optim,ema,augment,train --repeats 30 \
  --train-config model=resnet50,image_size=224,batch=128,images=8144,stage=ema,epochs=3 --json "$out/gpu_bench.json"
# 2. The CUDA tests: batched augmentation equals the CPU path and never syncs with the host.
"$py" -m pytest -q tests -k cuda
