"""Custom domains over real HTTP: a project admin gives a branch's
environment a domain of the project's own; a viewer and a read-only token
may not, a stranger sees nothing, another project cannot take it, and
names that are not domains, or that are the control plane's, are refused.
The router then takes the domain to the environment."""

from __future__ import annotations

import httpx
from conftest import owner_conn
from helpers import as_, call, envelope

from odooops.environments.routing import DatabaseRoutes
from odooops.runtime import secret_key

SHOP, LAB = "/api/v1/projects/acme/shop", "/api/v1/projects/evil/lab"


def test_admins_add_and_remove_domains_and_nobody_takes_another_projects(api, tenants, settings):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    added = httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": "Shop.Example.COM."}, headers=alice)
    assert added.status_code == 201, added.text
    assert added.json()["domain"] == "shop.example.com"
    again = httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": "shop.example.com"}, headers=alice)
    assert again.status_code == 201  # already the branch's: nothing changes
    listed = httpx.get(f"{api}{SHOP}/branches/main/domains", headers=bob).json()  # a viewer reads them
    assert [d["domain"] for d in listed] == ["shop.example.com"]

    assert "admins" in envelope(httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": "b.example.com"},
                                           headers=bob), 403, "forbidden")
    envelope(httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": "c.example.com"},
                        headers=as_(tenants["alice_read"])), 403, "forbidden")
    envelope(httpx.get(f"{api}{SHOP}/branches/main/domains", headers=eve), 404, "not_found")
    taken = envelope(httpx.post(f"{api}{LAB}/branches/main/domains", json={"domain": "shop.example.com"},
                                headers=eve), 409, "rule_violation")
    assert "taken" in taken and "acme" not in taken
    for bad, why in (("not a domain", "not a domain name"), ("localhost", "not a domain name"),
                     ("x.localhost", "under localhost"), ("127.0.0.1", "not a domain name")):
        assert why in envelope(httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": bad},
                                          headers=alice), 422, "invalid_input")

    envelope(httpx.delete(f"{api}{SHOP}/branches/main/domains/shop.example.com", headers=eve), 404, "not_found")
    assert httpx.delete(f"{api}{SHOP}/branches/main/domains/shop.example.com", headers=alice).status_code == 200
    envelope(httpx.delete(f"{api}{SHOP}/branches/main/domains/shop.example.com", headers=alice), 404, "not_found")
    assert httpx.get(f"{api}{SHOP}/branches/main/domains", headers=alice).json() == []


def test_the_router_resolves_a_custom_domain_to_its_environment(api, tenants, settings):
    alice = as_(tenants["alice"])
    with owner_conn(settings.database_url.reveal()) as conn:
        branch = conn.execute("select b.id, b.project_id from ops.branches b join ops.projects p on p.id = b.project_id "
                              "where p.slug = 'shop' and b.name = 'main'").fetchone()
        env = conn.execute("insert into ops.environments (project_id, branch_id, label, status, address) "
                           "values (%s, %s, 'main-shop-acme', 'running', '127.0.0.1:9') returning id",
                           (branch["project_id"], branch["id"])).fetchone()
    assert httpx.post(f"{api}{SHOP}/branches/main/domains", json={"domain": "shop.example.com"},
                      headers=alice).status_code == 201

    def resolve(host: str):
        return call(settings, lambda db: DatabaseRoutes(db, settings, secret_key(settings)).resolve(host))

    route = resolve("shop.example.com")
    assert route is not None and route.environment_id == env["id"] and route.http == "127.0.0.1:9"
    assert route.branch == "main" and route.stage == "production"
    assert resolve("other.example.com") is None
