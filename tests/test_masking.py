"""Secrets masked as written and in the encodings tools print them in, in log
lines and in artifacts (text masked, binary withheld), however a file's
chunks fall."""

from __future__ import annotations

import base64
import os
from urllib.parse import quote, quote_plus

import pytest

from odooops.runner.artifacts import ArtifactStore, Stored, Withheld
from odooops.runner.logs import Masker

MASK = "********"
# its base64 has '+' and '/' at some alignments, so both alphabets differ
SECRET = "p>>>w???rd~~~x-42"
ENCODERS = {"standard": base64.b64encode, "urlsafe": base64.urlsafe_b64encode}


def test_the_value_itself_longest_first_and_short_values_ignored():
    mask = Masker([SECRET, SECRET[:6], "abc"])
    assert mask(f"token={SECRET};") == f"token={MASK};"
    assert mask(f"a {SECRET[:6]} b") == f"a {MASK} b"
    assert mask("abc stays") == "abc stays"
    assert Masker([])("nothing to mask") == "nothing to mask"


def test_the_alphabets_differ_for_this_secret():
    assert base64.b64encode(b"x" + SECRET.encode()) != base64.urlsafe_b64encode(b"x" + SECRET.encode())


def _kept(masked: str) -> int:
    return len(masked.replace(MASK, ""))


@pytest.mark.parametrize("alphabet", ENCODERS)
@pytest.mark.parametrize("before", range(6))  # each alignment twice: 0..2 bytes into a group, and 3..5
@pytest.mark.parametrize("after", range(4))
def test_base64_at_every_alignment_inside_longer_data(alphabet, before, after):
    encode = ENCODERS[alphabet]
    data = os.urandom(before) + SECRET.encode() + os.urandom(after)
    encoded = encode(data).decode()
    masked = Masker([SECRET])(f"payload: {encoded} end")
    assert MASK in masked and encoded not in masked
    # what is left of the encoding is what the bytes around the secret make,
    # and at most a character each side that mixes them with the secret's
    outside = -(-8 * before // 6) + -(-8 * after // 6) + 2 + encoded.count("=")
    assert _kept(masked) - len("payload:  end") <= outside + 2


@pytest.mark.parametrize("alphabet", ENCODERS)
def test_base64_of_the_secret_alone_is_masked_whole(alphabet):
    encoded = ENCODERS[alphabet](SECRET.encode()).decode()
    mask = Masker([SECRET])
    assert mask(encoded) == MASK
    assert mask(encoded.rstrip("=")) == MASK
    # `echo "$SECRET" | base64`: with the newline echo adds
    assert encoded[:-4] not in mask(ENCODERS[alphabet](SECRET.encode() + b"\n").decode())


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_hex(case):
    encoded = case(SECRET.encode().hex())
    mask = Masker([SECRET])
    assert mask(f"sha: {encoded}") == f"sha: {MASK}"
    assert mask(f"00ff{encoded}aa") == f"00ff{MASK}aa"


@pytest.mark.parametrize("encoded", [
    quote("p@ss/word+1 2&x=y", safe=""), quote("p@ss/word+1 2&x=y"), quote_plus("p@ss/word+1 2&x=y"),
    quote("p@ss/word+1 2&x=y", safe="").lower(),  # escapes in lower case (the value has no capital)
])
def test_url_encoding(encoded):
    assert Masker(["p@ss/word+1 2&x=y"])(f"https://h/?token={encoded}&next=1") == f"https://h/?token={MASK}&next=1"


def test_lines_in_a_batch_are_masked_one_by_one():
    mask = Masker([SECRET])
    lines = ["quiet", f"one {SECRET}", "two " + SECRET.encode().hex(), "quiet again"]
    assert mask.lines(lines) == [mask(line) for line in lines] == ["quiet", f"one {MASK}", f"two {MASK}",
                                                                   "quiet again"]
    untouched = ["a", "b"]
    assert mask.lines(untouched) is untouched


def test_not_covered_a_secret_split_across_lines():
    wrapped = base64.b64encode(SECRET.encode() * 5).decode()
    lines = [wrapped[:40], wrapped[40:]]
    assert Masker([SECRET * 5]).lines(lines) == lines


# artifacts

def _store(tmp_path, chunk: int) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 3, 7, 16, 1024 * 1024])
def test_a_text_artifact_is_stored_masked_whatever_its_chunks(tmp_path, chunk):
    forms = [SECRET, SECRET.encode().hex(), base64.b64encode(b"ab" + SECRET.encode()).decode(), quote(SECRET)]
    text = "".join(f"line {i}: {form}, é\n" for i, form in enumerate(forms * 3))
    source = tmp_path / "report.txt"
    source.write_text(text)
    mask = Masker([SECRET])
    stored = _store(tmp_path, chunk).put_masked(source, "report.txt", mask)
    assert isinstance(stored, Stored) and stored.content_type == "text/plain"
    kept = (tmp_path / "store" / stored.sha256[:2] / stored.sha256).read_text()
    assert kept == "".join(mask(line + "\n") for line in text.splitlines())
    assert SECRET not in kept and SECRET.encode().hex() not in kept and kept.count(MASK) == 12
    assert stored.size == len(kept.encode())


def test_an_artifact_without_secret_is_stored_as_is(tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 10)
    stored = _store(tmp_path, 100).put_masked(source, "data.bin", Masker([SECRET]))
    assert isinstance(stored, Stored)
    assert (tmp_path / "store" / stored.sha256[:2] / stored.sha256).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("form", ["plain", "hex", "base64"])
@pytest.mark.parametrize("chunk", [5, 1024 * 1024])
def test_a_binary_artifact_with_a_secret_is_withheld(tmp_path, form, chunk):
    value = {"plain": SECRET.encode(), "hex": SECRET.encode().hex().encode(),
             "base64": base64.b64encode(b"z" + SECRET.encode())}[form]
    source = tmp_path / "dump.bin"
    source.write_bytes(b"\0\1\2" * 50 + value + b"\xff\xfe" * 50)
    store = _store(tmp_path, chunk)
    got = store.put_masked(source, "out/dump.bin", Masker([SECRET]))
    assert isinstance(got, Withheld) and got.name == "out/dump.bin"
    assert "out/dump.bin" in got.message and "secret" in got.message
    assert not (tmp_path / "store").exists() or not any(p.is_file() for p in (tmp_path / "store").rglob("*"))


def test_not_utf8_counts_as_binary(tmp_path):
    source = tmp_path / "latin1.txt"
    source.write_bytes(f"caf\xe9 {SECRET}\n".encode("latin-1"))
    assert isinstance(_store(tmp_path, 4).put_masked(source, "latin1.txt", Masker([SECRET])), Withheld)


def test_collect_says_what_it_kept_and_withheld(tmp_path):
    folder = tmp_path / "artifacts"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text(f"key {SECRET}\n")
    (folder / "b.bin").write_bytes(b"\0" + SECRET.encode())
    (folder / "c.txt").write_text("fine\n")
    stored, withheld = _store(tmp_path, 1024).collect(folder, Masker([SECRET]))
    assert [s.name for s in stored] == ["c.txt", "sub/a.txt"] and [w.name for w in withheld] == ["b.bin"]
