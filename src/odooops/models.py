"""The shapes of what clients send, shared by the API and the console: one
definition of each input and its bounds, so that a form and a JSON body are
refused for the same reasons."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

SLUG = "^[a-z0-9][a-z0-9-]{0,62}$"
# the database's integer and bigint: a number past them is bad input, not a query that fails
INT4_MAX, INT8_MAX = 2**31 - 1, 2**63 - 1
RunId = Annotated[int, Path(ge=1, le=INT8_MAX, description="A run's id.")]
CHECK = ("Check first, with `git ls-remote` (15 s at most), that the repository can be read and has the branch; "
         "`false` skips it, for a repository the control plane cannot reach yet.")
OdooVersion = Literal["16.0", "17.0", "18.0", "19.0"]
Seq = Annotated[int, Query(ge=0, le=INT4_MAX, description="A log line's seq: the lines after it.")]


class OrgIn(BaseModel):
    slug: str = Field(pattern=SLUG)
    name: str | None = Field(None, min_length=1, max_length=200)


class ProjectIn(BaseModel):
    org: str = Field(pattern=SLUG)
    slug: str = Field(pattern=SLUG)
    repo_url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(None, min_length=1, max_length=200)
    default_branch: str = Field("main", min_length=1, max_length=255)
    odoo_version: OdooVersion = "17.0"
    check: bool = Field(True, description=CHECK)


class BranchIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    stage: Literal["production", "staging", "development"] = "development"
    check: bool = Field(True, description=CHECK)


class BranchUpdate(BaseModel):
    """One change at a time: a new stage, or settings to merge in."""

    stage: Literal["production", "staging", "development"] | None = Field(
        None, description="The stage to move to; Odoo.sh's rules apply.")
    settings: dict[str, Any] | None = Field(
        None, description="Settings to merge in (admins): `odoo_modules` (\"own\", \"all\" or a list of module "
                          "names) and `odoo_test_tags` (odoo-bin's --test-tags); see `odooops branch set --help`.")


Role = Literal["viewer", "developer", "admin", "owner"]
RunStatus = Literal["awaiting_authorization", "queued", "claimed", "running", "succeeded", "failed", "canceled",
                    "superseded"]


class MemberIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role = "developer"


class RoleIn(BaseModel):
    role: Role


class ProjectUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    repo_url: str | None = Field(None, min_length=1, max_length=2000)
    odoo_version: OdooVersion | None = None
    settings: dict[str, Any] | None = Field(None, description="Settings to merge in; see `odooops project set --help`.")


class BuildRequest(BaseModel):
    commit: str | None = Field(None, description="Commit to build; default: the branch head in the repository.",
                               pattern="^[0-9a-fA-F]{7,64}$")


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Literal["read", "write"]] = Field(["read"], min_length=1, description="`write` implies `read`.")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Default: never.")


class IngestTokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
