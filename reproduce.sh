#!/usr/bin/env bash
# Reproduce the recipe's progression: every stage x seeds, then the results table and plots.
#
#   ./reproduce.sh                      embedded default: synthetic fine-grained set, small model, short schedule (CPU minutes)
#   ./reproduce.sh --data ROOT          Stanford Cars (any layout): prepare the cache, run the real recipe (ResNet-50, 600 epochs)
#   ./reproduce.sh --proxy fashion-mnist[:tops]   the real-image proxy (Fashion-MNIST from Debian; see the README)
# Options: --seeds N (3), --out DIR (runs/<mode>), --gpus 0,1,... (one run per GPU at a time),
#          --epochs N (scale every stage), --stages a,b,... (subset), --set FIELD=VALUE (all runs; repeatable).
# Idempotent: finished runs are skipped, unfinished ones resume exactly, the table is rendered again.
set -euo pipefail
cd "$(dirname "$0")"

command="./reproduce.sh${*:+ $*}"
data="" proxy="" seeds=3 out="" gpus="" epochs="" stages="" sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --proxy) proxy="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --stages) stages="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "reproduce.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Set up on a fresh machine: a venv with the package (torch wheels come from the local disk here).
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import fgvc_ref, torch, torchvision" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[cars,plots,progress]'
  fi
  py=.venv/bin/python
fi

all_stages="base,large_batch_warmup,trivialaugment,cosine,label_smoothing,random_erasing,ema"
stages="${stages:-$all_stages}"
if [ -n "$data" ]; then
  mode=stanford_cars; out="${out:-runs/stanford_cars}"
  [ -f "$out/cache/test.manifest.json" ] || "$py" -m fgvc_ref prepare --data "$data" --out "$out/cache"
  source_args=(--cache "$out/cache")
  title="Stanford Cars (box crops, 224 px, ResNet-50)"
elif [ -n "$proxy" ]; then
  mode="proxy-${proxy//[:@,=]/-}"; out="${out:-runs/$mode}"
  # The proxy protocol (README, "The Fashion-MNIST proxy"): a bare fashion-mnist[:tops] gets 32 px images and a fixed
  # per-class subset sized so that 7 stages x 3 seeds fit the CPU budget; resnet18 from scratch, the recipe's LRs x 0.1,
  # every epoch-denominated field scaled to 10 epochs, EMA updated every step (an epoch has only 8 steps here).
  case "$proxy" in
    fashion-mnist) proxy="$proxy@32,train=100,test=100" ;;
    fashion-mnist:tops) proxy="$proxy@32,train=250,test=250" ;;
  esac
  source_args=(--data "$proxy")
  epochs="${epochs:-10}"
  sets=(--set model=resnet18 --set weights=none --set image_size=32 --set lr_scale=0.1 --set ema_steps=1 --set workers=0 "${sets[@]}")
  title="Proxy: $proxy, resnet18 from scratch at 32 px, ${epochs} epochs, LRs x 0.1"
else
  mode=embedded-default; out="${out:-runs/embedded-default}"
  if [ ! -f "$out/cache/test.manifest.json" ]; then
    "$py" -m fgvc_ref make-synthetic --out "$out/synthetic" --classes 10 --per-class 30 --width 64 --height 48
    "$py" -m fgvc_ref prepare --data "$out/synthetic" --out "$out/cache" --any-size --train-size 40 --test-size 32
  fi
  source_args=(--cache "$out/cache")
  epochs="${epochs:-5}"
  sets=(--set model=resnet18 --set weights=none --set image_size=32 --set workers=0 "${sets[@]}")
  title="Embedded default: synthetic fine-grained set (not Stanford Cars), resnet18 from scratch at 32 px, ${epochs} epochs"
fi
epoch_args=()
[ -n "$epochs" ] && epoch_args=(--epochs "$epochs")

run_one() {  # stage seed [gpu]
  local dir="$out/runs/$1/seed$2"
  [ -f "$dir/summary.json" ] && { echo "skip $1 seed $2 (finished)"; return 0; }
  if [ -n "${3:-}" ]; then
    CUDA_VISIBLE_DEVICES="$3" "$py" -m fgvc_ref train --stage "$1" --seed "$2" --out "$dir" "${source_args[@]}" "${epoch_args[@]}" "${sets[@]}" --quiet
  else
    "$py" -m fgvc_ref train --stage "$1" --seed "$2" --out "$dir" "${source_args[@]}" "${epoch_args[@]}" "${sets[@]}" --quiet
  fi
}

jobs_list=()
IFS=, read -ra stage_list <<< "$stages"
for stage in "${stage_list[@]}"; do
  for ((seed = 0; seed < seeds; seed++)); do jobs_list+=("$stage $seed"); done
done
if [ -n "$gpus" ]; then
  IFS=, read -ra gpu_list <<< "$gpus"
  for ((k = 0; k < ${#jobs_list[@]}; k += ${#gpu_list[@]})); do
    pids=()
    for ((g = 0; g < ${#gpu_list[@]} && k + g < ${#jobs_list[@]}; g++)); do
      run_one ${jobs_list[k + g]} "${gpu_list[g]}" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  done
else
  for job in "${jobs_list[@]}"; do run_one $job; done
fi

"$py" -m fgvc_ref report "$out/runs" --out "$out/RESULTS.md" --title "$title" --command-line "$command"
echo "results: $out/RESULTS.md (runs in $out/runs)"
