"""Secrets taken out of what a run shows: its log lines and its artifacts.

A secret is masked as written and in the encodings tools print it in, as CI
systems do: base64 (standard and URL-safe, at each of the three alignments a
secret can have inside a longer encoded string), hex (lower and upper case)
and URL-encoding (percent-encoded, form-encoded). All of them are one
compiled regular expression, searched once per batch of lines."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

MASK = "********"
MIN_LENGTH = 4  # shorter values would mask ordinary words


def _base64_forms(raw: bytes) -> set[str]:
    """The encoded secret, whole and padded as `base64` prints it alone, and the
    part of its encoding that stays the same wherever it sits in longer data:
    preceded by k bytes (k = 0, 1, 2) of its 3-byte group, the first characters
    mix in those bytes and the last ones the bytes after it."""
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for k in range(3):
            encoded = encode(bytes(k) + raw).decode()
            first = -(-8 * k // 6)           # the first character made of the secret's bits only
            last = 8 * (k + len(raw)) // 6   # ... and the one after the last
            forms.add(encoded[first:last])
    return forms


def _url_forms(secret: str) -> set[str]:
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    # some tools write escapes in lower case (%2f)
    return encoded | {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), e) for e in encoded}


def forms_of(secret: str) -> set[str]:
    """Every way of writing the secret that is masked."""
    raw = secret.encode()
    forms = {secret, raw.hex(), raw.hex().upper(), *_base64_forms(raw), *_url_forms(secret)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Masker:
    def __init__(self, secrets: list[str]):
        values = {s for s in secrets if len(s) >= MIN_LENGTH}
        # longest first, so a form containing another is masked whole; a value
        # of several lines can only be masked line by line, where it never is whole
        self.forms = sorted({f for s in values for f in forms_of(s) if "\n" not in f}, key=lambda f: (-len(f), f))
        self.longest = len(self.forms[0].encode()) if self.forms else 0
        alternation = "|".join(map(re.escape, self.forms))
        self._text = re.compile(alternation) if self.forms else None
        self.pattern = re.compile(alternation.encode()) if self.forms else None  # for files, in UTF-8

    def __call__(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text and self._text.search(text) else text

    def lines(self, lines: list[str]) -> list[str]:
        """The lines masked, looked through in one search while none has a
        secret (the common case: lines hold no newline, nor does a form)."""
        if self._text is None or not self._text.search("\n".join(lines)):
            return lines
        return [self(line) for line in lines]
