"""A copy of this checkout: what git tracks, and what it would track (new files not ignored), without .venv or runs/."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    """``git args`` in ``repo`` (its identity given, for commits in a copy); the output."""
    return subprocess.run(["git", "-c", "user.name=fgvc_ref tests", "-c", "user.email=tests@localhost", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def copy_checkout(dest: Path, *, repository: bool = False) -> Path:
    """Copy the checkout's files into ``dest``; ``repository``: make the copy a git repository of its own with them
    committed, as a checkout is, so that ``git status`` there shows what a command wrote."""
    for name in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    if repository:
        git(dest, "init", "-q")
        commit_all(dest, "the checkout")
    return dest


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
