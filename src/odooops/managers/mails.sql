-- name: accepting
select e.id from ops.environments e join ops.branches b on b.id = e.branch_id
 where e.id = %(id)s and b.stage <> 'production' and b.archived_at is null;

-- name: record
insert into ops.mail_events (environment_id, project_id, branch_id, mail_from, rcpt_to, subject, message_id,
                             size_bytes, sha256, attachments)
select e.id, e.project_id, e.branch_id, %(mail_from)s, %(rcpt_to)s, %(subject)s, %(message_id)s, %(size_bytes)s,
       %(sha256)s, %(attachments)s
  from ops.environments e where e.id = %(environment_id)s
returning *;

-- name: environment_of_branch
select e.id from ops.environments e where e.branch_id = %(branch_id)s;

-- name: list_for_environment
select * from ops.environment_mails(%(environment_id)s, %(q)s, %(limit)s, %(before)s);

-- name: get
select * from ops.mail_events where id = %(id)s;

-- name: counts
select * from ops.mail_counts(%(ids)s);

-- name: prune
with gone as (
    delete from ops.mail_events where received_at < now() - make_interval(days => %(days)s) returning sha256
)
select (select count(*) from gone) as deleted,
       coalesce((select array_agg(distinct g.sha256) from gone g
                  where not exists (select from ops.mail_events m  -- the statement's snapshot: kept rows only count
                                     where m.sha256 = g.sha256
                                       and m.received_at >= now() - make_interval(days => %(days)s))
                    and not exists (select from ops.artifacts a where a.sha256 = g.sha256)), '{}') as unreferenced;
