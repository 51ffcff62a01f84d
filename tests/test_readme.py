"""Every command the README shows, run as written after its two set-up commands, in a copy that must stay clean.

The copy holds the tracked files as a git repository of its own, as a fresh clone is. The README's first set-up
command is ``./reproduce.sh``; the test runs that very script as ``./reproduce.sh --stages ema --seeds 1 --epochs 2``,
so ``runs/embedded-default/`` holds what the README's commands use (the synthetic set, its cache, the ``ema`` run at
seed 0, the report), made by the code a user runs, in seconds rather than the full run's minutes; the second, the
test command, is the suite itself. Then every command of the README's bash blocks and every ``$`` line of its
transcripts runs in order, as written, with only ``.venv/bin/python`` (and ``.venv/bin/torchrun``) replaced by this
interpreter. The ``./reproduce.sh`` lines, whose runs take minutes to hours, run with ``--dry-run``: their options
are checked and their trainings listed. To halve the wait on 2 cores, the README's sections run in two lanes side
by side (``LANES``: each lane's sections in README order, and no section reads what a section of the other lane
writes). Each command must exit 0, the transcript's unreadable file 1 with the
README's own error line; afterwards ``git status`` must show nothing, so every output landed in the ignored
``runs/``.

The README's offline message and int8 table are checked against what the code and the committed JSON give.
"""

import os
import re
import shlex
import subprocess
import sys
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from checkout import copy_checkout, git
from runs import ROOT
from test_repo import readme_commands

README = (ROOT / "README.md").read_text()
SETUP = "./reproduce.sh --stages ema --seeds 1 --epochs 2"
# Two lanes of README sections; runs/export/model.pt, which "After training" writes, is read in "Deploy" (same lane).
LANES = (("Data", "The recipe and the loop", "Tune the recipe on your data"),
         ("Quick start", "After training: evaluate, export, predict", "Open set: a model that can say \"unknown\"",
          "Deploy: the model on an edge runtime", "The Fashion-MNIST proxies"))


def sections() -> dict[str, list[str]]:
    """The README's command lines by the section (## or ### heading) they stand in."""
    parts = re.split(r"^#{2,3} (.+)$", README, flags=re.M)
    return {title: lines for title, body in zip(parts[1::2], parts[2::2]) if (lines := readme_commands(body))}


def as_run(words: list[str]) -> list[str]:
    """A README command as this test runs it: the interpreter replaced, reproduce.sh dry."""
    if words[0] == ".venv/bin/python":
        return [sys.executable, *words[1:]]
    if words[0] == ".venv/bin/torchrun":
        return [sys.executable, "-m", "torch.distributed.run", *words[1:]]
    if words[0] == "./reproduce.sh":
        return ["bash", "reproduce.sh", *words[1:], "--dry-run"]
    raise AssertionError(f"README: a command this test does not know how to run: {shlex.join(words)}")


@pytest.mark.slow
def test_every_readme_command_runs_as_written_after_the_quick_start_and_leaves_the_repository_clean(tmp_path):
    repo = copy_checkout(tmp_path / "repo", repository=True)
    env = {**os.environ, "PYTHON": sys.executable}
    setup = subprocess.run(["bash", *shlex.split(SETUP)], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (repo / "runs/embedded-default/runs/ema/seed0/final.pt").is_file()
    test_command = README.split("<!-- test-command -->\n```bash\n")[1].split("\n")[0]
    by_section = sections()
    assert sorted(by_section) == sorted(s for lane in LANES for s in lane), sorted(by_section)  # every section in a lane
    assert [line for lane in LANES for s in lane for line in by_section[s]].count(test_command) == 1
    assert sum(map(len, by_section.values())) - 1 >= 25
    error_lines = [line for line in README.splitlines() if line.startswith("error: runs/")]

    def run_lane(lane: tuple[str, ...]) -> list[str]:
        failures = []
        for line in (line for s in lane for line in by_section[s] if line != test_command):
            done = subprocess.run(as_run(shlex.split(line)), cwd=repo, env=env, capture_output=True, text=True, timeout=600)
            if line.endswith("cars_meta.mat --topk 3"):  # the transcript: an unreadable file among images, named, exit status 1
                ok = (done.returncode == 1 and bool(error_lines) and error_lines[0] in done.stderr.splitlines()
                      and [o.split(": ")[0] for o in done.stdout.splitlines()] == ["runs/embedded-default/synthetic/cars_test/00002.jpg"]
                      and done.stdout.count("%") == 3)  # --topk 3
            else:
                ok = done.returncode == 0 and (shlex.split(line)[0] != "./reproduce.sh" or "trainings, into runs/" in done.stdout)
            if not ok:
                failures.append(f"README: {line}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return failures

    with ThreadPoolExecutor(len(LANES)) as pool:
        failures = [f for lane_failures in pool.map(run_lane, LANES) for f in lane_failures]
    assert not failures, "\n\n".join(failures)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    for made in ("runs/export/model.int8.onnx", "runs/latency.json", "runs/sweeps/ema/report.md", "runs/open-set/ema/seed0/final.pt",
                 "runs/ema-ddp/seed0/final.pt", "runs/my-photos/test", "runs/cache/hub-copy/test.pt"):
        assert (repo / made).exists(), made  # the outputs are real


def test_the_quick_start_names_the_setup_this_test_makes_and_the_run_the_commands_use():
    assert SETUP.split()[0] == "./reproduce.sh" and "`runs/embedded-default/runs/ema/seed0`" in README
    assert f"`{SETUP}`" in README


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


def test_the_offline_message_the_readme_shows_is_the_one_training_prints(monkeypatch):
    """README, "Offline and air-gapped machines": the message for the recipe's default weights, with torch's cache at
    its default place under a home of ``~``, exactly as :func:`fgvc_ref.model.offline_message` words it."""
    from fgvc_ref.model import offline_message
    from fgvc_ref.recipe import STAGES

    monkeypatch.setattr(torch.hub, "get_dir", lambda: "~/.cache/torch/hub")
    stage = STAGES["base"]
    message = offline_message(stage.model, stage.weights, urllib.error.URLError("[Errno -2] Name or service not known"))
    assert f"```text\nerror: {message}\n```" in README


def test_every_flipped_int8_answer_lies_where_the_readmes_margin_argument_puts_it():
    """README, "Deploy": an answer can flip only where the fp32 margin is under the two logits' moves, so under
    2 x the p99 logit change; the committed measurement (its table is a script block, tests/test_results.py) holds it."""
    import json

    doc = json.loads((ROOT / "results/int8_margins.json").read_text())
    assert "<!-- script:int8-margins:begin -->" in README and len(doc["runs"]) == 2
    for r in doc["runs"]:
        flipped = round(r["images"] * (100 - r["identical"]) / 100)
        assert sum(b["flipped"] for b in r["flips_by_margin"]) == flipped > 0
        assert all(b["flipped"] == 0 for b in r["flips_by_margin"] if b["margin_from"] >= 2 * r["abs_logit_change"]["p99"] * (1 - 1e-12))
