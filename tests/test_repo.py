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
                "report.md", "greedy.md", "OUT/report.md", "OUT/greedy.md", "DIR/report.md"}  # written into a sweep folder


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


def readme_commands() -> list[str]:
    """Every command line the README shows: the lines of its bash blocks and the `$ ` lines of its text blocks."""
    text = (ROOT / "README.md").read_text()
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
