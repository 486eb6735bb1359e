"""python -m training --help: its examples are the README's commands (issue 17: they disagreed)."""
from __future__ import annotations

import re
from pathlib import Path

from training.cli import EPILOG

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_commands() -> set[str]:
    text = README.read_text().replace("\\\n", " ")  # join shell continuation lines
    return {" ".join(m.split("#")[0].split()) for m in re.findall(r"\.venv/bin/(python -m training [^\n]*)", text)}


def test_help_examples_are_readme_commands():
    examples = [" ".join(line.split("#")[0].split()) for line in EPILOG.splitlines()
                if line.strip().startswith("python -m training")]
    assert len(examples) >= 6
    missing = [e for e in examples if e not in _readme_commands()]
    assert not missing, f"--help examples not in the README: {missing}"
