-- name: rotate
select * from ops.rotate_hook(%(project_id)s);

-- name: get
select id, project_id, created_at, rotated_at from ops.hooks where project_id = %(project_id)s;

-- name: find
select h.id, h.project_id, h.salt from ops.hooks h join ops.projects p on p.id = h.project_id
 where h.id = %(hook_id)s and p.archived_at is null;

-- name: record
insert into ops.hook_deliveries (host, hook_id, project_id, delivery_id, event, headers, body)
values (%(host)s, %(hook_id)s, %(project_id)s, %(delivery_id)s, %(event)s, %(headers)s, %(body)s)
on conflict (host, hook_id, delivery_id) do nothing
returning id;

-- name: deliveries
select id, host, delivery_id, event, received_at, status, attempts, next_attempt_at, processed_at, outcome, run_id
  from ops.hook_deliveries where project_id = %(project_id)s order by id desc limit %(limit)s;

-- name: next_pending
select * from ops.hook_deliveries where status = 'pending' and next_attempt_at <= now()
 order by next_attempt_at, id limit 1 for update skip locked;

-- name: claim_effect
insert into ops.hook_effects (project_id, key, delivery_id) values (%(project_id)s, %(key)s, %(delivery_id)s)
on conflict do nothing returning delivery_id;

-- name: effect_of
select delivery_id from ops.hook_effects where project_id = %(project_id)s and key = %(key)s;

-- name: branch
select * from ops.branches where project_id = %(project_id)s and name = %(name)s for update;

-- name: new_branch
insert into ops.branches (project_id, name) values (%(project_id)s, %(name)s) returning *;

-- name: revive_branch
update ops.branches set archived_at = null where id = %(id)s returning *;

-- name: archive_branch
select * from ops.archive_branch(%(id)s);

-- name: enqueue
-- the control plane's own decision: a fork's pull request waits for an admin
select * from ops.enqueue_build_v2(%(branch_id)s, %(commit)s, %(trigger)s, %(ref)s, %(pr_number)s, '{}',
                                   %(authorized)s);

-- name: describe_commit
-- what the payload says of the commit, unless the run knows it already (a runner reads it from the checkout)
update ops.runs set commit_message = %(message)s, commit_author = %(author)s
 where id = %(run_id)s and commit_sha = lower(%(commit)s) and commit_message is null and commit_author is null;

-- name: settle
update ops.hook_deliveries
   set status = %(status)s, attempts = attempts + 1, processed_at = now(), outcome = %(outcome)s,
       run_id = %(run_id)s
 where id = %(id)s;

-- name: retry
update ops.hook_deliveries
   set attempts = attempts + 1, outcome = %(outcome)s,
       status = case when attempts + 1 >= %(max_attempts)s then 'failed' else 'pending' end::ops.delivery_status,
       processed_at = case when attempts + 1 >= %(max_attempts)s then now() end,
       next_attempt_at = now() + make_interval(secs => least(300, 2 ^ attempts))
 where id = %(id)s
returning status, attempts;

-- name: project_repository
select repo_url from ops.projects where id = %(project_id)s;

-- name: may_manage
select ops.caller_is_service() or coalesce(ops.project_role(%(project_id)s) >= 'admin', false) as ok;
