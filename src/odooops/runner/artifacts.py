"""A content-addressed store of artifacts under the data directory: a file
is kept once by its sha256, whichever runs produced it."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    name: str
    sha256: str
    size: int
    content_type: str
    uri: str


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, source: Path, name: str) -> Stored:
        digest, size = _hash(source)
        target = self.path_of(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)  # atomic: readers never see half a file
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Stored(name, digest, size, content_type, f"cas:sha256:{digest}")

    def collect(self, folder: Path) -> list[Stored]:
        """Every file a run left in its artifacts folder, named by its path there."""
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        return [self.put(p, p.relative_to(folder).as_posix()) for p in files]


def _hash(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
