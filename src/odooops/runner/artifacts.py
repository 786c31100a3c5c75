"""A content-addressed store of artifacts under the data directory: a file
is kept once by its sha256, whichever runs produced it.

What a run's phases leave is masked as the log is: a text file (valid UTF-8,
no NUL byte) is stored with its secrets masked; a binary file that holds a
secret, in any of the forms the log masks, is not stored at all. Files are
read a chunk at a time, however large."""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from odooops.runner.masking import MASK, Masker

CHUNK = 1024 * 1024
MASK_BYTES = MASK.encode()


@dataclass(frozen=True)
class Stored:
    name: str
    sha256: str
    size: int
    content_type: str
    uri: str


@dataclass(frozen=True)
class Withheld:
    """A file the store refused, and why."""

    name: str
    reason: str

    @property
    def message(self) -> str:
        return f"artifact {self.name} withheld: {self.reason}"


class ArtifactStore:
    def __init__(self, root: Path, chunk: int = CHUNK):
        self.root = root
        self.chunk = chunk

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, source: Path, name: str) -> Stored:
        """The file as it is."""
        digest, size = _hash(source, self.chunk)
        target = self.path_of(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)  # atomic: readers never see half a file
        return self._stored(name, digest, size)

    def put_masked(self, source: Path, name: str, mask: Masker) -> Stored | Withheld:
        """The file with its secrets masked when it is text; refused when it
        is not and holds one (masking would corrupt it, keeping it would leak)."""
        pattern = mask.pattern
        if pattern is None:
            return self.put(source, name)
        text, secret = _sniff(source, pattern, mask.longest, self.chunk)
        if not secret:
            return self.put(source, name)
        if not text:
            return Withheld(name, "it is not text (not UTF-8, or it has NUL bytes) and holds a secret, "
                                  "which cannot be masked in it")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        h, size = hashlib.sha256(), 0
        try:
            with source.open("rb") as f, os.fdopen(fd, "wb") as out:
                for piece in _masked(f, pattern, mask.longest, self.chunk):
                    h.update(piece)
                    size += len(piece)
                    out.write(piece)
        except BaseException:
            os.unlink(tmp)
            raise
        target = self.path_of(h.hexdigest())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)  # the same content when it was there: replacing it changes nothing
        return self._stored(name, h.hexdigest(), size)

    def collect(self, folder: Path, mask: Masker) -> tuple[list[Stored], list[Withheld]]:
        """Every file a run left in its artifacts folder, named by its path
        there and masked; and the files withheld."""
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        kept = [self.put_masked(p, p.relative_to(folder).as_posix(), mask) for p in files]
        return [k for k in kept if isinstance(k, Stored)], [k for k in kept if isinstance(k, Withheld)]

    @staticmethod
    def _stored(name: str, digest: str, size: int) -> Stored:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Stored(name, digest, size, content_type, f"cas:sha256:{digest}")


def _hash(path: Path, chunk: int) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while piece := f.read(chunk):
            h.update(piece)
            size += len(piece)
    return h.hexdigest(), size


def _sniff(path: Path, pattern: re.Pattern[bytes], longest: int, chunk: int) -> tuple[bool, bool]:
    """Whether the file is text, and whether it holds a secret. Each chunk is
    searched with the end of the one before (a form's length less one byte),
    so a secret across two chunks is found."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    text, secret, tail = True, False, b""
    with path.open("rb") as f:
        while piece := f.read(chunk):
            if text:
                text = _still_text(decoder, piece)
            if not secret:
                window = tail + piece
                secret = pattern.search(window) is not None
                tail = window[max(0, len(window) - longest + 1):]
            if secret and not text:
                return False, True
    return text and _still_text(decoder, b"", final=True), secret


def _still_text(decoder: codecs.IncrementalDecoder, piece: bytes, final: bool = False) -> bool:
    if b"\0" in piece:
        return False
    try:
        decoder.decode(piece, final)
    except UnicodeDecodeError:
        return False
    return True


def _masked(f: BinaryIO, pattern: re.Pattern[bytes], longest: int, chunk: int) -> Iterator[bytes]:
    """The file's bytes with every form of a secret masked, as one search
    of the whole file would. A match can only be told from a shorter one, or
    from none, once the longest form fits after its start, so the last
    (longest - 1) bytes wait for the next chunk."""
    keep = longest - 1
    buf = b""
    while piece := f.read(chunk):
        buf += piece
        out, pos, cut = [], 0, len(buf) - keep
        for m in pattern.finditer(buf):
            if m.start() >= cut:
                break
            out += [buf[pos:m.start()], MASK_BYTES]
            pos = m.end()
        end = max(cut, pos)
        out.append(buf[pos:end])
        buf = buf[end:]
        yield b"".join(out)
    yield pattern.sub(MASK_BYTES, buf)
