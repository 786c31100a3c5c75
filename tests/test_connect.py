"""The "Connect as" header value: signed for a login, checked by the Odoo side."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from odooops.environments.connect import MAX_AHEAD, sign, verify

SECRET = "s3cret-of-the-environment"
NOW = 1_800_000_000


def resign(parts: list[str], secret: str = SECRET) -> str:
    payload = ".".join(parts[:4])
    return f"{payload}.{hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()}"


def test_a_signed_value_lets_its_login_in_until_it_expires():
    value = sign(SECRET, "admin", ttl=60, now=NOW)
    assert verify(SECRET, value, now=NOW) == "admin"
    assert verify(SECRET, value, now=NOW + 59) == "admin"
    assert verify(SECRET, value, now=NOW + 60) is None
    assert verify(SECRET, value, now=NOW + 3600) is None


def test_the_format():
    value = sign(SECRET, "jane@example.com", ttl=30, now=NOW)
    version, login, expires, nonce, mac = value.split(".")
    assert (version, expires) == ("v1", str(NOW + 30))
    assert base64.urlsafe_b64decode(login + "=" * (-len(login) % 4)) == b"jane@example.com"
    assert "=" not in login
    assert len(nonce) == 32 and int(nonce, 16) >= 0
    assert mac == hmac.new(SECRET.encode(), ".".join([version, login, expires, nonce]).encode(),
                           hashlib.sha256).hexdigest()
    assert sign(SECRET, "jane@example.com", ttl=30, now=NOW) != value  # a fresh nonce each time


def test_logins_of_any_characters_round_trip():
    for login in ("a", "ünïcødé@exämple.org", "with.dots and spaces", "x" * 300, "?>~"):
        assert verify(SECRET, sign(SECRET, login, now=NOW), now=NOW) == login


def test_a_tampered_value_is_refused():
    parts = sign(SECRET, "demo", now=NOW).split(".")
    admin = base64.urlsafe_b64encode(b"admin").rstrip(b"=").decode()
    for index, replacement in ((1, admin), (2, str(NOW + 120)), (3, "0" * 32), (4, "0" * 64)):
        tampered = parts.copy()
        tampered[index] = replacement
        assert verify(SECRET, ".".join(tampered), now=NOW) is None
    flipped = parts[4][:-1] + ("0" if parts[4][-1] != "0" else "1")
    assert verify(SECRET, ".".join([*parts[:4], flipped]), now=NOW) is None
    assert verify(SECRET, ".".join(["v2", *parts[1:]]), now=NOW) is None
    assert verify(SECRET, resign(["v2", *parts[1:4]]), now=NOW) is None


def test_another_secret_is_refused():
    value = sign(SECRET, "admin", now=NOW)
    assert verify("another secret", value, now=NOW) is None
    assert verify("", value, now=NOW) is None
    assert verify(SECRET + " ", value, now=NOW) is None


def test_an_expiry_more_than_300_seconds_ahead_is_refused_even_well_signed():
    parts = sign(SECRET, "admin", now=NOW).split(".")
    assert verify(SECRET, resign([*parts[:2], str(NOW + MAX_AHEAD), parts[3]]), now=NOW) == "admin"
    assert verify(SECRET, resign([*parts[:2], str(NOW + MAX_AHEAD + 1), parts[3]]), now=NOW) is None
    assert verify(SECRET, resign([*parts[:2], str(NOW), parts[3]]), now=NOW) is None


@pytest.mark.parametrize("value", [
    "", ".", "v1", "v1....", "v1.a.b.c.d", "v1.YWRtaW4.1800000060.00.00", "garbage",
    "v1.YWRtaW4.1800000060." + "a" * 32 + "." + "A" * 64,           # upper-case hex
    "v1.YWRtaW4=.1800000060." + "a" * 32 + "." + "a" * 64,          # padding
    "v1.YWRtaW4.-1800000060." + "a" * 32 + "." + "a" * 64,          # a sign
    "v1.YWRtaW4.１８００." + "a" * 32 + "." + "a" * 64,               # digits that are not ASCII
    "v1.YWRtaW4.1800000060." + "a" * 32 + "." + "é" * 64,           # not ASCII where hex is due
    "v1.YWRtaW4.1800000060." + "a" * 32 + "." + "a" * 64 + ".more",
    "v1.YWRtaW4.1800000060." + "a" * 32 + "." + "a" * 64 + "\n",
])
def test_malformed_values_are_refused_without_raising(value):
    assert verify(SECRET, value, now=NOW) is None


def test_well_signed_but_undecodable_logins_are_refused():
    for login in ("YWRtaW4x1", "_w", "gA"):  # a length base64 cannot have; bytes that are not UTF-8
        assert verify(SECRET, resign(["v1", login, str(NOW + 60), "ab" * 16]), now=NOW) is None


def test_not_a_string_is_refused():
    assert verify(SECRET, None, now=NOW) is None  # type: ignore[arg-type]
    assert verify(SECRET, b"v1.x", now=NOW) is None  # type: ignore[arg-type]


def test_sign_refuses_what_verify_would():
    with pytest.raises(ValueError):
        sign("", "admin")
    with pytest.raises(ValueError):
        sign(SECRET, "")
    for ttl in (0, -5, MAX_AHEAD + 1):
        with pytest.raises(ValueError):
            sign(SECRET, "admin", ttl=ttl)
    assert verify(SECRET, sign(SECRET, "admin", ttl=MAX_AHEAD, now=NOW), now=NOW) == "admin"


def test_now_defaults_to_the_clock():
    assert verify(SECRET, sign(SECRET, "admin")) == "admin"
