"""Repository contracts: CI runs exactly the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    assert match, "README.md must give the test command in a fenced block after <!-- test-command -->"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_test_command()
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in lines, f".ci/run must contain the README's test command verbatim:\n{command}"


def test_test_command_installs_before_it_tests_and_fails_on_no_tests():
    """A fresh machine: the command makes its venv and installs; `&&` lets pytest's exit 5 fail CI."""
    command = readme_test_command()
    assert command.startswith("python3 -m venv .venv && ") and "pip install" in command
    assert command.endswith("&& .venv/bin/python -m pytest")


# Markdown names that a tracked file mentions but that are outputs, written by the commands, not documents of the repo.
GENERATED_MD = {"out/RESULTS.md", "RUNS_DIR/RESULTS.md", "$out/RESULTS.md", "$work/report/RESULTS.md",
                "report.md", "greedy.md", "OUT/report.md", "OUT/greedy.md", "DIR/report.md",
                "runs/sweeps/ema/report.md", "runs/report/RESULTS.md"}  # written into a sweep folder


def test_every_markdown_file_a_tracked_file_mentions_exists_in_the_repository():
    """Docstrings, error messages, README and RESULTS point at docs that a user must be able to open: each `*.md` a
    tracked file names exists, at the repository root or under docs/ (as written, relative to the root)."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    missing = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".json", ".pt"):
            continue
        for ref in set(re.findall(r"[\w$./-]*\w\.md\b", path.read_text(errors="ignore"))):
            ref = ref.lstrip("./")
            if ref not in GENERATED_MD and not any((base / ref).is_file() for base in (ROOT, ROOT / "docs", path.parent)):
                missing.append(f"{name}: {ref}")
    assert not missing, "files named but not in the repository:\n" + "\n".join(sorted(missing))
    assert {"recipe.md", "data.md", "performance.md", "reliability.md"} <= {p.name for p in (ROOT / "docs").iterdir()}


def test_the_package_has_no_import_cycle():
    """No module imports one that imports it back, even inside a function (data/fashion_mnist <-> data/sources was one)."""
    import ast

    graph = {}
    for path in (ROOT / "fgvc_ref").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                       and (node.module or "").startswith("fgvc_ref")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep in graph and dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_pyproject_and_readme_give_the_same_python_version_and_it_is_the_one_running():
    """`requires-python` is the README's minimum, and the suite runs on a version that satisfies it (CI: 3.11)."""
    import sys

    text = (ROOT / "pyproject.toml").read_text()
    minimum = re.search(r'requires-python = ">=(\d+)\.(\d+)"', text).groups()
    readme = (ROOT / "README.md").read_text()
    assert f"Python {minimum[0]}.{minimum[1]} or newer" in readme and f"`>={minimum[0]}.{minimum[1]}`" in readme
    assert sys.version_info[:2] >= tuple(map(int, minimum))


def readme_commands(text: str | None = None) -> list[str]:
    """Every command line the README (or ``text``, a part of it) shows: the lines of its bash blocks and the `$ `
    lines of its text blocks."""
    text = (ROOT / "README.md").read_text() if text is None else text
    lines = []
    for kind, body in re.findall(r"```(bash|text)\n(.*?)\n```", text, re.S):
        for line in body.splitlines():
            line = line.strip()
            if kind == "text":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = re.split(r"\s{2,}#", line)[0].strip()  # a trailing comment
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_every_fgvc_ref_and_script_command_in_the_readme_is_accepted_as_written():
    """Each `python -m fgvc_ref ...` line parses with the CLI's own parser (every subcommand and flag exists), each
    reproduce.sh option is one the script takes, each bench script exists; the test command is CI's (above)."""
    import shlex

    from fgvc_ref.cli import build_parser

    script = (ROOT / "reproduce.sh").read_text()
    options = set(re.findall(r"^\s+(--[\w-]+)\)", script, re.M)) | {"-h", "--help"}
    seen = {"fgvc_ref": 0, "reproduce": 0}
    for line in readme_commands():
        words = shlex.split(line)
        if "fgvc_ref" in words and words[words.index("fgvc_ref") - 1] == "-m":
            args = words[words.index("fgvc_ref") + 1:]
            try:
                build_parser().parse_args(args)
            except SystemExit:
                raise AssertionError(f"README command not accepted by the CLI: {line}") from None
            seen["fgvc_ref"] += 1
        elif words[0] == "./reproduce.sh":
            unknown = [w for w in words[1:] if w.startswith("-") and w not in options]
            assert not unknown, f"README: {line}: reproduce.sh takes no {unknown}"
            seen["reproduce"] += 1
        elif words[0] == "bash":
            assert (ROOT / words[1]).is_file(), line
    assert seen["fgvc_ref"] >= 15 and seen["reproduce"] >= 4


def test_no_scripts_or_commands_default_output_lands_in_a_tracked_folder(tmp_path):
    """Run without OUT or --out, nothing a script or command writes goes into a folder that holds tracked files (results/,
    docs/, ...): a second run would overwrite evidence, and a first one dirties the checkout. Checked by git itself in a
    copy of the checkout: bench/gpu.sh, full and --smoke (stopped right after it opened its log, by a PYTHON that cannot
    import torch); reproduce.sh's output folder in each mode (--dry-run); every CLI --out / --json default; report given a
    runs JSON or --bench without --out (refused, writing nothing); the bench/*.py scripts (stdout unless --json)."""
    import ast
    import os
    import subprocess
    import sys

    from checkout import copy_checkout, git
    from fgvc_ref.cli import build_parser

    copy = copy_checkout(tmp_path / "checkout", repository=True)
    tracked_folders = {str(Path(name).parent) for name in git(copy, "ls-files").splitlines()}
    tracked_folders = {str(p) for name in tracked_folders for p in (Path(name), *Path(name).parents) if str(p) != "."}

    def in_tracked_folder(path: str) -> bool:
        return any(str(p) in tracked_folders for p in (Path(path).parent, *Path(path).parents))

    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "PYTHON")}
    for args in ([], ["--smoke"]):
        done = subprocess.run(["bash", "bench/gpu.sh", *args], cwd=copy, env={**env, "PYTHON": "/bin/false"}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
    written = [line[3:] for line in git(copy, "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()]
    assert {Path(w).name for w in written} == {"gpu.log"} and len(written) == 2  # one log per mode, so the check is not empty
    assert not [w for w in written if in_tracked_folder(w)], written
    for mode in ([], ["--proxy", "fashion-mnist"], ["--proxy-scratch", "fashion-mnist:tops"], ["--data", str(tmp_path), "--dataset", "cub"]):
        done = subprocess.run(["bash", "reproduce.sh", *mode, "--dry-run"], cwd=copy, env={**env, "PYTHON": sys.executable},
                              capture_output=True, text=True, timeout=120)
        out = re.search(r"trainings, into (\S+)/runs\n", done.stdout)
        assert done.returncode == 0 and out, done.stderr
        assert not in_tracked_folder(out[1] + "/RESULTS.md") and git(copy, "check-ignore", out[1]).strip() == out[1], mode
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.dest in ("out", "json") and isinstance(action.default, str):
                assert not in_tracked_folder(action.default) and git(copy, "check-ignore", action.default).strip(), (name, action.default)
    runs_json = next(name for name in git(copy, "ls-files", "results").splitlines() if name.endswith("_runs.json"))
    for args in ([runs_json], ["--bench", "results/cpu_bench.json"]):
        done = subprocess.run([sys.executable, "-m", "fgvc_ref", "report", *args], cwd=copy, env={**env, "PYTHONPATH": str(copy)},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "--out" in done.stderr, done.stderr
    assert git(copy, "status", "--porcelain", "--untracked-files=all") == ""
    for script in sorted((copy / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
                flag = getattr(node.args[0], "value", "")
                if flag in ("--out", "--json"):
                    default = next((k.value for k in node.keywords if k.arg == "default"), None)
                    assert isinstance(default, ast.Constant) and default.value is None, f"{script.name}: {flag}"
