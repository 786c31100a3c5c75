-- Folders of this host's disk the operator gave an org: a project of the org
-- may use a local repository only inside one of them. Only the control plane
-- (the operator's CLI) assigns them; an org's members may see theirs.

create table ops.org_repo_roots (
    org_id uuid not null references ops.orgs (id) on delete cascade,
    path text not null,               -- absolute, symlinks resolved when assigned
    created_at timestamptz not null default now(),
    primary key (org_id, path),
    constraint org_repo_roots_path_check check (path like '/%')
);

alter table ops.org_repo_roots enable row level security;
alter table ops.org_repo_roots force row level security;
create policy service_all on ops.org_repo_roots for all to service_role using (true) with check (true);
create policy member_select on ops.org_repo_roots for select to authenticated
    using (org_id in (select org_id from ops.my_orgs()));

grant select, insert, delete on ops.org_repo_roots to service_role;
grant select on ops.org_repo_roots to authenticated;
