"""The README says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from odooops.settings import DOCUMENTED

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    for name, _default, _meaning in DOCUMENTED:
        assert f"`{name}`" in README, name


def test_every_setting_the_code_reads_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    read = set(re.findall(r"\"(ODOOOPS_[A-Z_]+)\"", source)) - {"ODOOOPS_ARTIFACTS"}  # given to phases
    assert read <= {name for name, _, _ in DOCUMENTED}, read - {name for name, _, _ in DOCUMENTED}
    assert "`$ODOOOPS_ARTIFACTS`" in README


def test_readme_commands_exist():
    assert (ROOT / "scripts" / "up").stat().st_mode & 0o111
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
