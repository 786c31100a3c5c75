"""The CLI against a remote OdooOps: `odooops login URL` keeps a personal
API token in the user's config, and the verbs that have an API then call it
over HTTP instead of opening a database."""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import platformdirs
import typer

from odooops import errors
from odooops.cli.context import out

LOGIN_FILE = "login.json"
# the API's error codes, back into the errors they were
STATUS_ERRORS = {401: errors.Unauthenticated, 403: errors.Forbidden, 404: errors.NotFound, 409: errors.Conflict,
                 413: errors.PayloadTooLarge, 422: errors.InvalidInput, 429: errors.TooManyRequests}


def login_path() -> Path:
    return Path(platformdirs.user_config_dir("odooops", appauthor=False)) / LOGIN_FILE


def stored() -> dict | None:
    """The stored login ({"url", "token", "token_id", "email"}), if any."""
    try:
        return json.loads(login_path().read_text())
    except FileNotFoundError:
        return None


def _store(login: dict) -> None:
    path = login_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(login, f)
    os.replace(path.with_suffix(".tmp"), path)


def _dates(value: Any) -> Any:
    """Timestamps back into datetimes, as the managers give them."""
    if isinstance(value, list):
        return [_dates(v) for v in value]
    if isinstance(value, dict):
        return {k: (datetime.fromisoformat(v) if isinstance(v, str) and (k.endswith("_at") or k == "ts") else _dates(v))
                for k, v in value.items()}
    return value


class Api:
    """A small client of /api/v1 that answers like the managers do and
    raises the same errors."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30)

    def call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.OpsError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            self._raise(response)
        return _dates(response.json())

    def _raise(self, response: httpx.Response):
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = f"{self.url} answered {response.status_code}"
        raise STATUS_ERRORS.get(response.status_code, errors.OpsError)(message)

    def events(self, path: str, **params):
        """(event, data) pairs of a Server-Sent Events stream, until it ends."""
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise(response)
                event = None
                for line in response.iter_lines():
                    key, _, value = line.partition(": ")
                    if key == "event":
                        event = value
                    elif key == "data":
                        yield event, _dates(json.loads(value))
        except httpx.HTTPError as exc:
            raise errors.OpsError(f"lost {self.url}: {exc}") from exc

    def get(self, path: str, **params) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.call("POST", path, json=body)

    def patch(self, path: str, body: dict) -> Any:
        return self.call("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


def api() -> Api | None:
    """The remote API this CLI is logged in to, if it is."""
    login = stored()
    return Api(login["url"], login["token"]) if login else None


def project_path(ref: str) -> str:
    from odooops.managers.lookup import split_project_ref

    org, slug = split_project_ref(ref)
    return f"/projects/{org}/{slug}"


def login(
    url: Annotated[str, typer.Argument(help="The OdooOps server, e.g. https://ops.example.com.")],
    email: Annotated[str | None, typer.Option(help="Sign in as this user (asked for when not given).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
    token_stdin: Annotated[bool, typer.Option(
        "--token-stdin", help="Use an API token read from standard input instead of signing in.")] = False,
) -> None:
    """Sign in to a remote OdooOps; the verbs then work against it.

    A personal API token (read and write) is made and kept in your config."""
    if token_stdin:
        token, token_id = sys.stdin.readline().strip(), None
    else:
        token, token_id = _token_by_password(url, email or typer.prompt("Email"), password_stdin)
    me = Api(url, token).get("/me")
    _store({"url": url.rstrip("/"), "token": token, "token_id": token_id and str(token_id), "email": me["email"]})
    out.print(f"logged in to {url} as [bold]{me['email']}[/]; `odooops logout` forgets it")


def _token_by_password(url: str, email: str, password_stdin: bool) -> tuple[str, str]:
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password", hide_input=True)
    session = Api(url)
    signed_in = session.post("/auth/login", {"email": email, "password": password})
    session.http.headers["X-CSRF-Token"] = signed_in["csrf_token"]
    try:
        made = session.post("/tokens", {"name": f"odooops CLI on {socket.gethostname()}", "scopes": ["read", "write"]})
    finally:
        session.post("/auth/logout")
    return made["token"], made["id"]


def logout() -> None:
    """Forget the remote login.

    Its token is revoked when the CLI made it."""
    login = stored()
    if login is None:
        out.print("not logged in")
        return
    if login.get("token_id"):
        try:
            Api(login["url"], login["token"]).delete(f"/tokens/{login['token_id']}")
        except errors.OpsError as exc:  # forgetting it locally still stands
            out.print(f"could not revoke the token on {login['url']}: {exc}")
    login_path().unlink()
    out.print(f"logged out of {login['url']}")
