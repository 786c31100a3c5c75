-- What is waiting or running, found without reading the history: the queue
-- page and `odooops runs` (ops.queue()) read only these rows, however many
-- finished runs there are.
create index runs_active_idx on ops.runs (priority desc, id)
    where status in ('awaiting_authorization', 'queued', 'claimed', 'running');

-- That index can only serve a query that may test the status before row-level
-- security has had its say (enum comparisons are not leakproof), so ops.queue()
-- becomes security definer and names the caller's projects itself.
create or replace function ops.queue()
returns table (id bigint, kind text, project text, branch text, commit_sha text, status ops.run_status,
               priority integer, attempt integer, max_attempts integer, worker_id uuid, queued_at timestamptz,
               started_at timestamptz, reason text)
language sql stable security definer set search_path = '' as $$
    select r.id, r.kind, o.slug || '/' || p.slug, b.name, r.commit_sha, r.status, r.priority, r.attempt,
           r.max_attempts, r.worker_id, r.queued_at, r.started_at,
           case
               when r.status = 'awaiting_authorization' then 'waits for an admin to authorize it (pull request from a fork)'
               when r.status in ('claimed', 'running') then 'running on a worker'
               when r.not_before > now() then 'waits until ' || to_char(r.not_before, 'HH24:MI:SS')
                    || case when r.attempt > 0 then ' (retry after: ' || coalesce(r.error, 'failure') || ')'
                            else ' (quiet time after a push)' end
               when exists (select from ops.runs x where x.branch_id = r.branch_id and x.status in ('claimed', 'running'))
                    then 'branch is busy with run ' || (select min(x.id) from ops.runs x where x.branch_id = r.branch_id
                                                        and x.status in ('claimed', 'running'))
               when ops.project_setting(r.project_id, 'max_concurrent_runs', 0) > 0
                    and (select count(*) from ops.runs x where x.project_id = r.project_id
                          and x.status in ('claimed', 'running')) >= ops.project_setting(r.project_id, 'max_concurrent_runs', 0)
                    then 'project is at its limit of ' || ops.project_setting(r.project_id, 'max_concurrent_runs', 0)
                         || ' concurrent runs'
               when not exists (select from ops.workers w where w.heartbeat_at > now() - interval '30 seconds')
                    then 'no worker is running: start one with `odooops runner`'
               else 'next in line'
           end
      from ops.runs r
      join ops.projects p on p.id = r.project_id
      join ops.orgs o on o.id = p.org_id
      left join ops.branches b on b.id = r.branch_id
     where r.status in ('awaiting_authorization', 'queued', 'claimed', 'running')
       and (ops.caller_is_service() or r.project_id in (select project_id from ops.my_projects()))
     order by (r.status in ('claimed', 'running')) desc, r.priority desc, r.id
$$;
