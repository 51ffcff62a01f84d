"""Checkpoints that survive crashes: atomic, hashed, the last two kept, loaded without pickle code.

A checkpoint is a dict of plain tensors, numbers, strings, lists and dicts, saved with ``torch.save``
to ``checkpoint-e{epoch}-s{step}.pt`` through :func:`fgvc_ref.data.cache.atomic_write` (temporary
file, fsync, ``os.replace``, fsync of the folder), preceded by its ``.sha256`` file; temporary files
left by a killed writer are removed when the run is loaded again. Loading takes the
newest checkpoint whose hash matches and that ``torch.load(weights_only=True)`` accepts; a corrupt
newest one is reported and the previous one used; with none left it raises rather than starting
over. Nothing is ever loaded with ``weights_only=False``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
from pathlib import Path

import torch

from fgvc_ref.data.cache import atomic_write

PATTERN = re.compile(r"^checkpoint-e(\d+)-s(\d+)\.pt$")
KEEP = 2


class CheckpointError(RuntimeError):
    """No usable checkpoint although some exist."""


def checkpoint_name(epoch: int, step: int) -> str:
    """``epoch``: the epoch to run next; ``step``: the step to run next within it (0 at an epoch boundary)."""
    return f"checkpoint-e{epoch:05d}-s{step:07d}.pt"


def save_checkpoint(run_dir: Path, state: dict, *, epoch: int, step: int) -> Path:
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    path = Path(run_dir) / checkpoint_name(epoch, step)
    # The hash goes first: a kill between the two writes then leaves a hash without a checkpoint
    # (ignored), never a published checkpoint without its hash (which would read as corrupt).
    atomic_write(path.with_name(path.name + ".sha256"), lambda f: f.write(hashlib.sha256(data).hexdigest().encode()))
    atomic_write(path, lambda f: f.write(data))
    for old in list_checkpoints(run_dir)[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    found = [(tuple(map(int, m.groups())), p) for p in Path(run_dir).glob("checkpoint-*.pt") if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_checkpoints(run_dir: Path) -> None:
    """Delete every checkpoint and its hash (a finished run keeps its final weights instead)."""
    for path in list_checkpoints(run_dir):
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete temporary files (``.NAME.tmp-PID``) left by a writer that no longer runs; return them.
    A live writer's file is kept: another rank of the same run may be writing it right now."""
    stale = [p for p in sorted(Path(run_dir).glob(".*.tmp-*")) if not _alive(p.name.rpartition("-")[2])] if Path(run_dir).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_checkpoint(run_dir: Path, map_location="cpu") -> tuple[dict, Path] | None:
    """The newest valid checkpoint and its path; None if there is none at all."""
    for p in remove_stale_temporaries(run_dir):
        print(f"removed {p.name}, left by an interrupted write", file=sys.stderr)
    candidates = list_checkpoints(run_dir)
    problems = []
    for path in reversed(candidates):
        try:
            data = path.read_bytes()
            expected = path.with_name(path.name + ".sha256").read_text().strip()
            if hashlib.sha256(data).hexdigest() != expected:
                raise CheckpointError("sha256 does not match its .sha256 file")
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as e:  # corrupt, truncated, missing hash, or refused by weights_only
            problems.append(f"{path.name}: {type(e).__name__}: {e}")
            print(f"warning: checkpoint {path} is unusable ({type(e).__name__}: {e}); trying an older one", file=sys.stderr)
            continue
        if problems:
            print(f"resuming from the older checkpoint {path}", file=sys.stderr)
        return state, path
    if candidates:
        raise CheckpointError(f"{run_dir}: no usable checkpoint among {len(candidates)}: " + "; ".join(problems)
                              + ". Not starting over silently: move the run folder away to start afresh.")
    return None
