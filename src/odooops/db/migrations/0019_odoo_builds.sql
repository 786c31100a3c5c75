-- Odoo builds: the exact revisions of the Odoo sources a build used, each
-- test's result as Odoo's log told it, and the Odoo versions OdooOps builds.

-- 1. Supported versions. Existing rows are not re-checked (NOT VALID): a
-- project on another version keeps its row, and must move to a supported
-- version the next time it is changed.
alter table ops.projects add constraint projects_odoo_version_supported
    check (odoo_version in ('16.0', '17.0', '18.0', '19.0')) not valid;

-- 2. Sources: [{name, url, ref, commit}] in addons path order, recorded by the
-- runner; a rebuild pins them (below), so it builds the same code again.
alter table ops.runs add column sources jsonb;

create function ops.record_sources(p_run_id bigint, p_attempt integer, p_sources jsonb) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    perform ops.fence(p_run_id, p_attempt);
    if jsonb_typeof(p_sources) <> 'array' then
        raise exception 'sources are a list' using errcode = '22023';
    end if;
    update ops.runs set sources = p_sources where id = p_run_id returning * into r;
    return r;
end
$$;

create or replace function ops.rebuild(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    r := ops.lock_visible_run(p_run_id);
    if r.kind <> 'build' then
        raise exception 'run % is a %, and only builds are rebuilt', p_run_id, r.kind using errcode = 'OP003';
    end if;
    return ops.request_build(r.branch_id, r.commit_sha, 'rebuild', r.ref, r.pr_number,
                             r.params || case when r.sources is null then '{}'::jsonb
                                              else jsonb_build_object('sources', r.sources) end);
end
$$;

-- 3. Test results, one row per test of the run's last attempt that got so far.
create type ops.test_outcome as enum ('pass', 'fail', 'error', 'skip');

create table ops.test_results (
    run_id bigint not null references ops.runs (id) on delete cascade,
    n integer not null,             -- order in the log
    attempt integer not null,
    module text not null,
    test_class text not null,
    method text not null,
    outcome ops.test_outcome not null,
    duration_ms integer,
    traceback text,
    fingerprint text,               -- the error with numbers, ids and paths normalised
    log_seq integer,                -- the log line (ops.run_events.seq) it starts at
    primary key (run_id, n),
    constraint test_results_fingerprint_check check (fingerprint ~ '^[0-9a-f]{8,64}$')
);
create index test_results_fingerprint_idx on ops.test_results (fingerprint) where fingerprint is not null;
alter table ops.test_results enable row level security;
alter table ops.test_results force row level security;
-- no policy: users read through ops.build_tests, which checks the run once

create function ops.record_test_results(p_run_id bigint, p_attempt integer, p_results jsonb) returns integer
language plpgsql security definer set search_path = '' as $$
declare
    n integer;
begin
    perform ops.fence(p_run_id, p_attempt);
    delete from ops.test_results where run_id = p_run_id;  -- an earlier attempt's
    insert into ops.test_results (run_id, n, attempt, module, test_class, method, outcome, duration_ms,
                                  traceback, fingerprint, log_seq)
    select p_run_id, t.ord, p_attempt, x.module, x.test_class, x.method, x.outcome, x.duration_ms,
           x.traceback, x.fingerprint, x.log_seq
      from jsonb_array_elements(p_results) with ordinality as t(item, ord),
           jsonb_to_record(t.item) as x(module text, test_class text, method text, outcome ops.test_outcome,
                                        duration_ms integer, traceback text, fingerprint text, log_seq integer);
    get diagnostics n = row_count;
    return n;
end
$$;

-- Failures and errors first, then skips, then passes; each in log order.
create function ops.build_tests(p_run_id bigint) returns setof ops.test_results
language sql stable security definer set search_path = '' as $$
    select t.* from ops.test_results t
     where ops.can_read_run(p_run_id) and t.run_id = p_run_id
     order by case t.outcome when 'error' then 0 when 'fail' then 0 when 'skip' then 1 else 2 end, t.n
$$;

revoke all on function ops.record_sources(bigint, integer, jsonb), ops.record_test_results(bigint, integer, jsonb),
    ops.build_tests(bigint), ops.rebuild(bigint) from public;
grant execute on function ops.record_sources(bigint, integer, jsonb), ops.record_test_results(bigint, integer, jsonb)
    to service_role;
grant execute on function ops.build_tests(bigint), ops.rebuild(bigint) to authenticated, service_role;
grant select on ops.test_results to service_role;
create policy service_all on ops.test_results for all to service_role using (true) with check (true);

-- 4. Archiving a branch (or its project) queues a cleanup: a runner drops the
-- branch's Odoo databases, filestores and role on the environments' server.
create or replace function ops.archive_branch(p_branch_id uuid) returns ops.branches
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
begin
    select * into b from ops.branches where id = p_branch_id for update;
    if not found then
        raise exception 'branch not found' using errcode = 'OP002';
    end if;
    perform ops.require_project_role(b.project_id, 'admin', 'only an admin of this project can archive branches');
    if b.stage = 'production' then
        raise exception 'branch "%" is the production branch and cannot be archived; archive the project instead',
            b.name using errcode = 'OP003';
    end if;
    if b.archived_at is null then
        update ops.branches set archived_at = now() where id = b.id returning * into b;
        perform ops.end_runs(b.project_id, b.id, format('canceled: branch %s was archived', b.name));
        perform ops.enqueue_run(b.project_id, 'cleanup', jsonb_build_object('why', 'the branch was archived'), 0,
                                b.id, 'manual');
    end if;
    return b;
end
$$;

create or replace function ops.archive_project(p_project_id uuid) returns ops.projects
language plpgsql security definer set search_path = '' as $$
declare
    p ops.projects;
    b uuid;
begin
    perform ops.require_project_role(p_project_id, 'owner', 'only an owner of this project can archive it');
    select * into p from ops.projects where id = p_project_id for update;
    if p.archived_at is null then
        update ops.projects set archived_at = now() where id = p.id returning * into p;
        perform ops.end_runs(p.id, null, 'canceled: the project was archived');
        -- archived branches take no builds, so neither does the archived project
        for b in update ops.branches set archived_at = now() where project_id = p.id and archived_at is null
                 returning id
        loop
            perform ops.enqueue_run(p.id, 'cleanup', jsonb_build_object('why', 'the project was archived'), 0, b,
                                    'manual');
        end loop;
    end if;
    return p;
end
$$;
revoke all on function ops.archive_branch(uuid), ops.archive_project(uuid) from public;
grant execute on function ops.archive_branch(uuid), ops.archive_project(uuid) to authenticated, service_role;
