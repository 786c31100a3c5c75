-- name: of_project
select e.*, b.name as branch, b.stage, r.commit_sha, r.finished_at as build_finished_at,
       (select max(x.finished_at) from ops.runs x where x.branch_id = e.branch_id and x.kind = 'build') as last_build_at
  from ops.environments e join ops.branches b on b.id = e.branch_id left join ops.runs r on r.id = e.build_id
 where e.project_id = %(project_id)s and b.archived_at is null
 order by case b.stage when 'production' then 0 when 'staging' then 1 else 2 end, b.name;

-- name: of_branch
select e.*, b.name as branch, b.stage, r.commit_sha, r.finished_at as build_finished_at,
       (select max(x.finished_at) from ops.runs x where x.branch_id = e.branch_id and x.kind = 'build') as last_build_at
  from ops.environments e join ops.branches b on b.id = e.branch_id left join ops.runs r on r.id = e.build_id
 where e.branch_id = %(branch_id)s;

-- name: control
select * from ops.environment_control(%(branch_id)s, %(action)s);

-- name: create_connect_token
select * from ops.create_connect_token(%(branch_id)s, %(login)s, %(sha256)s, %(ttl)s);

-- name: connections
select * from ops.environment_connections(%(branch_id)s, %(limit)s);

-- name: up
select * from ops.environment_up(%(run_id)s, %(attempt)s, %(address)s, %(websocket)s, %(database)s);

-- name: check
select ops.environment_check(%(run_id)s, %(attempt)s, %(idle_seconds)s) as action;

-- name: report
select * from ops.environment_report(%(run_id)s, %(attempt)s, %(status)s, %(health)s, %(detail)s, %(memory)s,
                                     %(restarts)s);

-- name: collect
select * from ops.collect_environments(%(host)s, %(days)s);

-- name: route
select * from ops.route_environment(%(label)s);

-- name: wake
select * from ops.wake_environment(%(id)s);

-- name: touch
select ops.touch_environment(%(id)s);

-- name: use_token
select ops.use_connect_token(%(id)s, %(sha256)s, %(from)s) as login;

-- name: routing_table
select e.label, e.status, e.address, e.websocket_address,
       array(select d.domain from ops.environment_domains d where d.branch_id = e.branch_id order by d.domain)
         as domains
  from ops.environments e
  join ops.branches b on b.id = e.branch_id
 where b.archived_at is null
 order by e.label;

-- name: route_domain
select * from ops.route_domain(%(domain)s);

-- name: domains
select domain, created_at from ops.environment_domains where branch_id = %(branch_id)s order by domain;

-- name: add_domain
select * from ops.add_domain(%(branch_id)s, %(domain)s);

-- name: remove_domain
select ops.remove_domain(%(branch_id)s, %(domain)s) as removed;
