"""Named SQL blocks kept in .sql files beside the Python that uses them.

A file holds blocks that each start with a line `-- name: some_name`; the text
up to the next such line is the query. Files are read once, when loaded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(path: str | Path) -> dict[str, LiteralString]:
    """Parse the named blocks of one .sql file into {name: sql}. The text is the
    package's own, never built from input: a literal as far as psycopg is concerned."""
    text = Path(path).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} is defined twice")
        queries[name] = cast(LiteralString, body.strip())
    return queries


def queries_beside(module_file: str) -> dict[str, LiteralString]:
    """The queries of the .sql file named like the given Python module."""
    return load_queries(Path(module_file).with_suffix(".sql"))
