"""The README's commands for using a trained model, run as written, in a copy of the repository that must stay clean.

The copy holds the tracked files (its own git repository), a tiny trained run at each run path the README names
(``runs/cars/ema/seed0``, ``runs/proxy-fashion-mnist/runs/ema/seed0``) and the user's files it names (``photo.jpg``,
``my_photos/<class>/``, ``img0.png``, ``img1.png``, ``bad.jpg``), committed there as a user's own files would be. Each
README command that uses those paths runs in it, with only its interpreter replaced by this one; afterwards
``git status`` must show nothing: every output lands in the git-ignored ``runs/``.
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fgvc_ref.data.cache import prepare
from fgvc_ref.data.folder import load_folder
from fgvc_ref.data.sources import load_data
from fgvc_ref.data.stanford_cars import official_classes
from fgvc_ref.train import train
from checkout import commit_all, copy_checkout, git
from photos import photo_dir, real_photos
from runs import ROOT, tiny
from test_repo import readme_commands

RUN_PATHS = ("runs/cars/ema/seed0", "runs/proxy-fashion-mnist/runs/ema/seed0")
USES = (*RUN_PATHS, "runs/export/", "proxy.pt")
CLASSES = official_classes()[:3]  # "Acura RL Sedan 2012" among them


def sandbox(tmp: Path) -> Path:
    """The tracked files as their own repository, with the runs and the user's files the README's commands name."""
    repo = copy_checkout(tmp / "repo", repository=True)
    photos = real_photos(64)
    for split in ("train", "test"):
        for c, name in enumerate(CLASSES):
            (tmp / "raw" / split / name).mkdir(parents=True)
            for k in range(3):
                photos[(3 * c + k + (split == "test")) % len(photos)].convert("RGB").save(tmp / "raw" / split / name / f"{k}.png")
        s = load_folder(tmp / "raw", split)
        prepare(s.records, tmp / "cache", split=split, classes=s.classes, size=20, workers=1, progress=False)
    train(tiny("ema", 1), load_data(tmp / "cache"), repo / RUN_PATHS[0], seed=0, progress=False)
    shutil.copytree(repo / RUN_PATHS[0], repo / RUN_PATHS[1])
    shutil.copytree(tmp / "raw" / "test", repo / "my_photos")
    Image.open(photo_dir() / "coffee.png").convert("RGB").save(repo / "photo.jpg")  # 600 x 400, as --box 40,30,600,400 needs
    for k in range(2):
        photos[k].convert("L").resize((28, 28)).save(repo / f"img{k}.png")
    (repo / "bad.jpg").write_bytes(b"this is not a jpg")  # 17 bytes, as the README's error line says
    commit_all(repo, "the user's files")
    return repo


@pytest.mark.slow
def test_the_readmes_commands_for_a_trained_model_run_as_written_and_leave_the_repository_clean(tmp_path):
    commands = [line for line in readme_commands() if any(use in line for use in USES)]
    assert len(commands) >= 12, commands  # evaluate (2), export, predict (2); the transcript (3); the Deploy section (4)
    repo = sandbox(tmp_path)
    readme = (ROOT / "README.md").read_text()
    for line in commands:
        words = shlex.split(line)
        assert words[0] in (".venv/bin/python", "python"), line
        done = subprocess.run([sys.executable, *words[1:]], cwd=repo, capture_output=True, text=True, timeout=600)
        if "bad.jpg" in words:  # the transcript: one unreadable file among good ones, named in an error line, exit status 1
            assert done.returncode == 1, done.stderr
            error = next(e for e in readme.splitlines() if e.startswith("error: bad.jpg: "))
            assert error in done.stderr.splitlines()
            assert [o.split(":")[0] for o in done.stdout.splitlines()] == ["img0.png", "img1.png"]
            assert all(o.count("%") == 3 for o in done.stdout.splitlines())  # --topk 3
        else:
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert (repo / "runs/export/model.int8.onnx").is_file() and (repo / "runs/latency.json").is_file()  # the outputs are real


def test_every_output_path_a_readme_command_names_is_git_ignored():
    """What a README command writes (``--out``, ``--json``) lands where git does not look, so running it dirties nothing."""
    outputs = []
    for line in readme_commands():
        words = shlex.split(line)
        outputs += [words[k + 1] for k, w in enumerate(words[:-1]) if w in ("--out", "--json")]
    assert len(outputs) >= 10
    for path in outputs:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        assert ignored.returncode == 0, f"README: {path} would be written where git sees it"
