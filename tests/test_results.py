"""RESULTS.md is evidence: each generated block is exactly what `report` renders from the committed
JSON it names, and the only other table numbers are the blog's (docs/recipe.md section 1)."""

import re
import shutil
from pathlib import Path

import pytest

from fgvc_ref.recipe import BLOG_TOP1
from fgvc_ref.report import write_bench_report, write_report

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- report:(?P<name>[\w-]+):begin -->\n(?P<body>.*?)<!-- report:(?P=name):end -->", re.S)


def generated_blocks(text: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def test_results_md_has_generated_blocks_each_naming_committed_sources():
    blocks = generated_blocks((ROOT / "RESULTS.md").read_text())
    assert blocks, "RESULTS.md should hold generated report blocks"
    for name, body in blocks.items():
        sources = re.findall(r"<!-- source: (\S+) -->", body)
        assert sources, f"block {name} names no source"
        for source in sources:
            assert (ROOT / source).is_file(), f"block {name}: source {source} is not committed"


@pytest.mark.parametrize("name", sorted(generated_blocks((ROOT / "RESULTS.md").read_text())))
def test_every_generated_block_is_rendered_again_byte_for_byte_from_its_sources(name, tmp_path):
    text = (ROOT / "RESULTS.md").read_text()
    body = generated_blocks(text)[name]
    sources = [ROOT / s for s in re.findall(r"<!-- source: (\S+) -->", body)]
    copy = tmp_path / "RESULTS.md"
    copy.write_text(text)
    if len(sources) == 1 and sources[0].name.endswith("runs.json"):
        saved = tmp_path / sources[0].relative_to(ROOT)
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[0], saved)
        write_report(saved, copy, section=name)
    else:
        write_bench_report(sources, copy, section=name, base=ROOT)
    assert generated_blocks(copy.read_text())[name] == body


# A table a bench script renders from its committed JSON: the block names the command, which prints it again.
SCRIPT_BLOCK = re.compile(r"<!-- script:(?P<name>[\w-]+):begin -->\n<!-- command: (?P<command>[^\n]+) -->\n(?P<body>.*?)\n<!-- script:(?P=name):end -->", re.S)


@pytest.mark.parametrize("doc", ["RESULTS.md", "README.md"])
def test_every_script_block_is_what_its_command_prints_from_committed_json(doc):
    import shlex
    import subprocess
    import sys

    blocks = list(SCRIPT_BLOCK.finditer((ROOT / doc).read_text()))
    assert blocks, f"{doc} should hold the int8-margins table as a script block (and RESULTS.md the greedy search's)"
    for m in blocks:
        words = shlex.split(m["command"])
        assert words[0] == "python" and (words[1].startswith("bench/") or words[1:3] == ["-m", "fgvc_ref"]), m["command"]
        assert all((ROOT / w).is_file() for w in words if w.endswith(".json")), f"{doc}: block {m['name']} reads an uncommitted file"
        done = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        assert m["body"] == done.stdout.rstrip("\n"), f"{doc}: block {m['name']} is not what `{m['command']}` prints"


def test_numbers_in_hand_written_tables_are_only_the_blogs():
    text = SCRIPT_BLOCK.sub("", BLOCK.sub("", (ROOT / "RESULTS.md").read_text()))
    table_lines = [line for line in text.splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]
    numbers = {float(n) for line in table_lines for n in re.findall(r"(?<![\w.])\d+\.\d+", line)}
    assert numbers <= set(BLOG_TOP1.values()), numbers - set(BLOG_TOP1.values())
