"""The operator's password verbs, `user set-password` and `user reset-link`,
and how every user verb reads a password: asked twice on a terminal, else the
first line of standard input; an empty one is refused."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from odooops.cli.context import out, run, settings
from odooops.errors import InvalidInput
from odooops.managers.passwords import RESET_SECONDS, Passwords
from odooops.settings import public_url

PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input (the default when it is not a terminal).")]


def read_password(password_stdin: bool, if_empty: str) -> str:
    """The password a person types (twice) on a terminal, or the first line of
    standard input; `if_empty` says what to do instead of sending none."""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InvalidInput(f"no password on standard input: {if_empty}")
    return password


def set_password(email: str, password_stdin: PasswordStdin = False) -> None:
    """Give a user a new password, from standard input.

    On a terminal it is asked twice, else read from the first line of
    standard input. Their console sessions end. The operator only."""
    password = read_password(password_stdin, "pipe it in as the first line")
    user = run(lambda db, actor: Passwords(db, actor).set(email, password))
    out.print(f"{user['email']} has a new password; their console sessions have ended")


def reset_link(email: str) -> None:
    """Print a one-time link to choose a new password.

    The user opens it to choose their password. It is open for 24 hours,
    and a newer link voids it. The operator only."""
    link = run(lambda db, actor: Passwords(db, actor).start_reset(email))
    url = f"{public_url(settings())}/reset?token={link.token}"
    out.print(f"a one-time link for {link.email} to choose a new password, open for "
              f"{RESET_SECONDS // 3600} hours (until {link.expires_at:%Y-%m-%d %H:%M %Z}):")
    out.print(url, soft_wrap=True, markup=False)  # whole, so a terminal can open it
