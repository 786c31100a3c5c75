"""The moves the console offers (Branches.stage_moves) are exactly the moves
the database accepts: every pair of stages tried through the API, as an owner
and as a viewer."""

from __future__ import annotations

import httpx

from conftest import owner_conn
from helpers import as_
from odooops.managers.branches import STAGES, stage_moves

BRANCHES = "/api/v1/projects/acme/shop/branches"


def rows(api: str, token: str) -> list[dict]:
    return httpx.get(f"{api}{BRANCHES}", headers=as_(token)).json()


def test_offered_moves_are_the_accepted_moves(api, tenants, owner_db):
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.branches (project_id, name, stage)"
                     " select id, 'rel', 'staging' from ops.projects where slug = 'shop'")
    owner, viewer = tenants["alice"], tenants["bob"]
    for name in ("main", "rel", "feature"):
        before = {b["name"]: b["stage"] for b in rows(api, owner)}
        offered = stage_moves(rows(api, owner), "owner")[name]
        assert stage_moves(rows(api, viewer), "viewer")[name] == ()
        for stage in STAGES:
            if stage == before[name]:
                continue
            assert httpx.patch(f"{api}{BRANCHES}/{name}", json={"stage": stage},
                               headers=as_(viewer)).status_code == 403
            answer = httpx.patch(f"{api}{BRANCHES}/{name}", json={"stage": stage}, headers=as_(owner))
            assert (answer.status_code == 200) == (stage in offered), (name, before[name], stage, answer.text)
            if answer.status_code == 200:  # back where it was, by a move the rules allow too
                assert before[name] in stage_moves(rows(api, owner), "owner")[name]
                back = httpx.patch(f"{api}{BRANCHES}/{name}", json={"stage": before[name]}, headers=as_(owner))
                assert back.status_code == 200, back.text
