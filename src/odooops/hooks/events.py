"""GitHub, GitLab and Gitea events read into one shape: what OdooOps does
with a delivery depends only on this."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson

from odooops.errors import InvalidInput

ZERO = "0" * 40
NAME_FIELDS = ("clone_url", "html_url", "ssh_url", "git_url", "url", "git_http_url", "git_ssh_url", "http_url",
               "web_url", "homepage")
BUILD_PR_ACTIONS = {"opened", "reopened", "synchronize", "synchronized", "open", "reopen", "update"}


@dataclass(frozen=True)
class HookEvent:
    action: str                 # push | branch_deleted | pull_request | ping | ignored
    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    pr_number: int | None = None
    from_fork: bool = False
    reason: str = ""            # for ignored events: why
    names: tuple[str, ...] = ()  # every URL the payload gives the repository (clone, web, ssh)
    before: str | None = None   # a push's previous head: a force-push back to an old commit is new content
    message: str | None = None  # the commit's message and author, when the payload tells them
    author: str | None = None

    def content_key(self) -> str | None:
        """What makes two deliveries the same work, whatever their ids."""
        if self.action in ("push", "branch_deleted"):
            return f"{self.action} {self.repository} {self.branch} {self.before} {self.commit}"
        if self.action == "pull_request":
            return f"pull_request {self.repository} {self.pr_number} {self.commit}"
        return None


def load(body: bytes) -> dict:
    """The payload, read within limits that no git host comes near: orjson
    refuses nesting deeper than 1,024 and numbers no double holds, where
    Python's json would raise RecursionError or overflow its int limit."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the delivery's body is not JSON within limits: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the delivery's body is not a JSON object")
    return payload


def parse(host: str, event: str, body: bytes) -> HookEvent:
    payload = load(body)
    reader = {"github": _github, "gitlab": _gitlab, "gitea": _gitea}[host]
    try:
        read = reader(event, payload)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"the {event or 'unnamed'} event lacks a field OdooOps needs: {exc}") from exc
    return replace(read, names=_names(payload))


def _names(payload: dict) -> tuple[str, ...]:
    """The repository's URLs as GitHub and Gitea (`repository`) and GitLab
    (`project`, and `repository` in older events) name it."""
    found = []
    for key in ("repository", "project"):
        repo = payload.get(key)
        if isinstance(repo, dict):
            found += [v for f in NAME_FIELDS if isinstance(v := repo.get(f), str) and v]
    return tuple(dict.fromkeys(found))


def _pr_number(value) -> int:
    number = int(value) if isinstance(value, (int, float)) or (isinstance(value, str) and len(value) < 12) else 0
    if not 0 < number < 2**31:
        raise ValueError(f"a pull request number, not {str(value)[:40]!r}")
    return number


def _branch(ref: str) -> str | None:
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None


def _push(payload: dict, repository: str | None) -> HookEvent:
    branch = _branch(payload["ref"])
    if branch is None:
        return HookEvent("ignored", repository, reason=f"not a branch: {payload['ref']}")
    after = payload.get("after") or payload.get("checkout_sha") or ZERO
    before = payload.get("before")
    if payload.get("deleted") or after == ZERO:
        return HookEvent("branch_deleted", repository, branch, before=before)
    return HookEvent("push", repository, branch, after, before=before, **_described(payload, after))


def _described(payload: dict, sha: str) -> dict:
    """The pushed head's message and author. GitHub and Gitea send it as
    `head_commit`; GitLab, and Gitea at times, only in the list of `commits`."""
    for c in [payload.get("head_commit"), *(payload.get("commits") or [])]:
        if isinstance(c, dict) and c.get("id") == sha:
            return _commit_info(c)
    return {}


def _commit_info(c: dict) -> dict:
    author = c["author"] if isinstance(c.get("author"), dict) else {}
    return {"message": _text(c.get("message")), "author": _text(author.get("name"))}


def _text(value) -> str | None:
    """A payload's string as PostgreSQL can store it (no NUL), or None."""
    return value.replace("\x00", "") if isinstance(value, str) else None


def _github(event: str, p: dict) -> HookEvent:
    repository = (p.get("repository") or {}).get("clone_url")
    if event == "ping":
        return HookEvent("ping", repository)
    if event == "push":
        return _push(p, repository)
    if event == "pull_request":
        return _pull_request(p, p["action"], repository)
    return HookEvent("ignored", repository, reason=f"event {event!r} is not built")


def _pull_request(p: dict, action: str, repository: str | None) -> HookEvent:
    """GitHub's and Gitea's pull requests share a shape."""
    pr = p["pull_request"]
    if action not in BUILD_PR_ACTIONS:
        return HookEvent("ignored", repository, reason=f"pull request {action}")
    head, base = pr["head"], pr["base"]
    head_repo = (head.get("repo") or {}).get("full_name")
    fork = head_repo is None or head_repo != (base.get("repo") or {}).get("full_name")
    return HookEvent("pull_request", repository, head["ref"], head["sha"], _pr_number(pr["number"]), fork)


def _gitlab(event: str, p: dict) -> HookEvent:
    repository = (p.get("project") or p.get("repository") or {}).get("git_http_url")
    if event == "Push Hook":
        return _push(p, repository)
    if event == "Merge Request Hook":
        mr = p["object_attributes"]
        action = mr.get("action", "")
        if action not in BUILD_PR_ACTIONS:
            return HookEvent("ignored", repository, reason=f"merge request {action or 'event'}")
        fork = mr["source_project_id"] != mr["target_project_id"]
        return HookEvent("pull_request", repository, mr["source_branch"], mr["last_commit"]["id"],
                         _pr_number(mr["iid"]), fork, **_commit_info(mr["last_commit"]))
    return HookEvent("ignored", repository, reason=f"event {event!r} is not built")


def _gitea(event: str, p: dict) -> HookEvent:
    repository = (p.get("repository") or {}).get("clone_url")
    if event == "push":
        return _push(p, repository)
    if event == "pull_request":
        return _pull_request(p, p["action"], repository)
    if event == "delete" and p.get("ref_type") == "branch":
        return HookEvent("branch_deleted", repository, p["ref"])
    return HookEvent("ignored", repository, reason=f"event {event!r} is not built")
