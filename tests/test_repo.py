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
