-- Metrics: per-project ingest tokens, and the samples agents send with them.

-- An ingest token lets an agent write one project's metrics and nothing else:
-- it names no user, so it can read nothing. Shown once, stored as its sha256.
create table ops.ingest_tokens (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references ops.projects (id) on delete cascade,
    name text not null,
    token_hash text not null,
    created_by uuid default ops.current_user_id() references ops.users (id) on delete set null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz,
    constraint ingest_tokens_hash_key unique (token_hash),
    constraint ingest_tokens_name_check check (length(btrim(name)) between 1 and 200)
);
create index ingest_tokens_project_idx on ops.ingest_tokens (project_id);

-- Samples, append-only. One plain table rather than time partitions: every
-- read names a project and a metric, so the btree below finds a window of one
-- series whatever the table's size, and partitions created on demand would
-- need DDL rights at ingest time, a bound on how old a sample may be, and
-- locks on the parent under concurrent writers. Partitions pay off for
-- retention (dropping a day instead of deleting it); they can come with it.
--
-- No foreign keys: their checks run once per row, two lookups for each of the
-- 10,000 samples of a batch that all name the same project and branch. The
-- ingest checks the project (by its token) and the branch once per batch,
-- and the triggers below delete the samples of a deleted project or branch.
create table ops.metrics (
    project_id uuid not null,
    branch_id uuid,
    ts timestamptz not null,
    metric text collate "C" not null,  -- bytewise: names are ASCII, and btree compares fastest so
    value double precision not null,
    dims jsonb,
    -- a bounded repetition ({1,128}) would make this regex cost 25 µs a row
    constraint metrics_metric_check check (metric ~ '^[a-z0-9_.]+$' and length(metric) <= 128),
    constraint metrics_dims_check check (jsonb_typeof(dims) = 'object')
);
-- The series query: one project's metric over a time window. value and
-- branch_id are included so it is answered from the index alone (the table is
-- append-only, so autovacuum keeps the visibility map set).
create index metrics_series_idx on ops.metrics (project_id, metric, ts) include (branch_id, value);
-- Rows arrive in time order, so a BRIN index on ts is a few pages and serves
-- sweeps by time across projects (retention), which the btree cannot.
create index metrics_ts_brin on ops.metrics using brin (ts);

-- Per-minute rollup of the samples, kept by the ingest in the same transaction
-- as the samples themselves: a series in buckets of whole minutes reads one
-- row a minute per branch instead of every sample (a week of a metric sampled
-- every 10 s on four branches: 40,000 rows instead of 240,000). Buckets of
-- other sizes are read from ops.metrics. A branch key cannot be null in a
-- primary key on PostgreSQL 14, hence the nil uuid for samples of no branch.
create table ops.metrics_minutely (
    project_id uuid not null,
    metric text collate "C" not null,
    minute timestamptz not null,
    branch_key uuid not null,
    count bigint not null,
    sum double precision not null,
    min double precision not null,
    max double precision not null,
    -- the values included, so a series is read from the index alone: a
    -- metric's minutes lie on as many heap pages as there are minutes. Their
    -- updates are then never HOT; bottom-up deletion keeps the index lean.
    primary key (project_id, metric, minute, branch_key) include (count, sum, min, max)
);

-- Which project a token writes to, or null: called before the caller is known.
create function ops.ingest_token_project(p_token_hash text) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
    t record;
begin
    select k.id, k.project_id, k.last_used_at into t
      from ops.ingest_tokens k join ops.projects p on p.id = k.project_id
     where k.token_hash = p_token_hash and k.revoked_at is null and p.archived_at is null;
    if not found then
        return null;
    end if;
    -- at most one write a minute per token, however busy its agent is
    if t.last_used_at is null or t.last_used_at < now() - interval '1 minute' then
        update ops.ingest_tokens set last_used_at = now() where id = t.id;
    end if;
    return t.project_id;
end
$$;

create function ops.metrics_forget_project() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    delete from ops.metrics where project_id = old.id;
    delete from ops.metrics_minutely where project_id = old.id;
    return old;
end
$$;

create function ops.metrics_forget_branch() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    delete from ops.metrics where project_id = old.project_id and branch_id = old.id;
    delete from ops.metrics_minutely where project_id = old.project_id and branch_key = old.id;
    return old;
end
$$;

create trigger metrics_forget_project after delete on ops.projects
    for each row execute function ops.metrics_forget_project();
create trigger metrics_forget_branch after delete on ops.branches
    for each row execute function ops.metrics_forget_branch();

revoke all on all functions in schema ops from public;
grant execute on function ops.ingest_token_project(text) to anon, service_role;

grant select, insert, update, delete on ops.ingest_tokens to service_role;
grant select, insert on ops.metrics to service_role;  -- append-only
grant select, insert, update on ops.metrics_minutely to service_role;
-- never the hash, even to the admins who manage the tokens
grant select (id, project_id, name, created_by, created_at, last_used_at, revoked_at) on ops.ingest_tokens
    to authenticated;
grant insert (project_id, name, token_hash) on ops.ingest_tokens to authenticated;
grant update (revoked_at) on ops.ingest_tokens to authenticated;
grant select on ops.metrics, ops.metrics_minutely to authenticated;

alter table ops.ingest_tokens enable row level security;
alter table ops.ingest_tokens force row level security;
alter table ops.metrics enable row level security;
alter table ops.metrics force row level security;
alter table ops.metrics_minutely enable row level security;
alter table ops.metrics_minutely force row level security;

create policy service_all on ops.ingest_tokens for all to service_role using (true) with check (true);
create policy service_all on ops.metrics for all to service_role using (true) with check (true);
create policy service_all on ops.metrics_minutely for all to service_role using (true) with check (true);

-- ingest_tokens: a project's admins and owners see, create and revoke them.
create policy admin_select on ops.ingest_tokens for select to authenticated
    using (project_id in (select project_id from ops.my_projects() where role >= 'admin'));
create policy admin_insert on ops.ingest_tokens for insert to authenticated
    with check ((select ops.project_role(project_id)) >= 'admin');
create policy admin_update on ops.ingest_tokens for update to authenticated
    using (project_id in (select project_id from ops.my_projects() where role >= 'admin'));

-- metrics: every member of the project reads them; only the control plane writes.
create policy member_select on ops.metrics for select to authenticated
    using (project_id in (select project_id from ops.my_projects()));
create policy member_select on ops.metrics_minutely for select to authenticated
    using (project_id in (select project_id from ops.my_projects()));
