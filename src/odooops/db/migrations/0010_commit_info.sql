-- A build's commit as people know it: the first line of its message and its
-- author, for branch cards. The control plane records them from a push's
-- payload when it enqueues the build; the runner records them again from its
-- checkout, which is the commit actually built.

-- Users get no grant on these columns: their insert and update grants on runs
-- (0003_security.sql) name columns, so new columns are the control plane's only.
alter table ops.runs add column commit_message text,
                     add column commit_author text;

-- Whoever writes them, they are kept to one short line; and they describe
-- the run's commit, so a commit replaced in the quiet window after a push
-- forgets them unless the same statement gives new ones.
create function ops.runs_commit_info() returns trigger
language plpgsql set search_path = '' as $$
begin
    if tg_op = 'UPDATE' and new.commit_sha is distinct from old.commit_sha
       and new.commit_message is not distinct from old.commit_message
       and new.commit_author is not distinct from old.commit_author then
        new.commit_message := null;
        new.commit_author := null;
    end if;
    new.commit_message := nullif(left(btrim(split_part(btrim(new.commit_message, E' \t\r\n'), E'\n', 1),
                                            E' \t\r'), 200), '');
    new.commit_author := nullif(left(btrim(new.commit_author, E' \t\r\n'), 200), '');
    return new;
end
$$;

create trigger runs_commit_info before insert or update of commit_sha, commit_message, commit_author on ops.runs
    for each row execute function ops.runs_commit_info();

-- Runner side, fenced like every other write of an attempt.
create function ops.record_commit(p_run_id bigint, p_attempt integer, p_message text, p_author text)
returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    perform ops.fence(p_run_id, p_attempt);
    update ops.runs set commit_message = p_message, commit_author = p_author where id = p_run_id returning * into r;
    return r;
end
$$;

-- ops.project_branches with the last build's commit message and author; a
-- new name because a function's result columns cannot change in place.
create function ops.project_branches_v2(p_project_id uuid, p_include_archived boolean default false)
returns table (
    id uuid, project_id uuid, name text, stage ops.stage, build_count bigint,
    last_build_id bigint, last_build_status ops.run_status, last_build_result ops.run_result,
    last_build_commit text, last_build_commit_message text, last_build_commit_author text,
    last_build_at timestamptz, created_at timestamptz, archived_at timestamptz)
language sql stable set search_path = '' as $$
    select b.id, b.project_id, b.name, b.stage,
           (select count(*) from ops.runs r where r.branch_id = b.id and r.kind = 'build'),
           lb.id, lb.status, lb.result, lb.commit_sha, lb.commit_message, lb.commit_author,
           coalesce(lb.finished_at, lb.started_at, lb.queued_at, lb.created_at),
           b.created_at, b.archived_at
      from ops.branches b
      left join lateral (
          select r.id, r.status, r.result, r.commit_sha, r.commit_message, r.commit_author,
                 r.finished_at, r.started_at, r.queued_at, r.created_at
            from ops.runs r where r.branch_id = b.id and r.kind = 'build'
           order by r.id desc limit 1) lb on true
     where b.project_id = p_project_id and (p_include_archived or b.archived_at is null)
     order by b.stage desc, b.name
$$;

revoke all on all functions in schema ops from public;
grant execute on function ops.project_branches_v2(uuid, boolean) to authenticated, service_role;
grant execute on function ops.record_commit(bigint, integer, text, text) to service_role;
