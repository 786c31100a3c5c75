"""The README says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from odooops.settings import DOCUMENTED

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# the README and the pages it links to: reference material lives in docs/
DOCS = "\n".join([README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))])


def test_every_setting_is_documented():
    for name, _default, _meaning in DOCUMENTED:
        assert f"`{name}`" in DOCS, name


def test_every_setting_the_code_reads_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    # given to phases, and to an environment's Odoo server
    read = set(re.findall(r"\"(ODOOOPS_[A-Z_]+)\"", source)) - {"ODOOOPS_ARTIFACTS", "ODOOOPS_CONNECT_SECRET"}
    assert read <= {name for name, _, _ in DOCUMENTED}, read - {name for name, _, _ in DOCUMENTED}
    assert "`$ODOOOPS_ARTIFACTS`" in DOCS


def test_readme_commands_exist():
    assert (ROOT / "scripts" / "up").stat().st_mode & 0o111
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_links_only_to_pages_and_images_that_exist():
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (ROOT / target).is_file(), target


def test_every_docs_page_is_linked_from_the_readme():
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in README, page.name
