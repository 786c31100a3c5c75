-- Mails caught from non-production environments: the mail catcher (an SMTP
-- server of the control plane) stores each one whole, an .eml in the
-- artifact store named by its sha256, and records it here, attributed to the
-- environment whose credentials sent it.

create table ops.mail_events (
    id bigint generated always as identity primary key,
    environment_id uuid not null references ops.environments (id) on delete cascade,
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid not null,
    mail_from text not null default '',
    rcpt_to text[] not null default '{}',
    subject text not null default '',
    message_id text,
    size_bytes bigint not null,
    sha256 text not null,
    attachments jsonb not null default '[]',  -- [{filename, content_type, size}]
    received_at timestamptz not null default now(),
    constraint mail_events_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint mail_events_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint mail_events_attachments_check check (jsonb_typeof(attachments) = 'array')
);
create index mail_events_environment_idx on ops.mail_events (environment_id, received_at desc, id desc);
create index mail_events_received_idx on ops.mail_events (received_at);  -- pruning
create index mail_events_sha256_idx on ops.mail_events (sha256);         -- is an .eml still referenced
alter table ops.mail_events enable row level security;
alter table ops.mail_events force row level security;
grant select on ops.mail_events to authenticated;
grant select, insert, update, delete on ops.mail_events to service_role;
create policy member_select on ops.mail_events for select to authenticated
    using (ops.project_role(project_id) is not null);
create policy service_all on ops.mail_events for all to service_role using (true) with check (true);

-- Whether the caller may read an environment's mails: checked once per call,
-- so a list reads the (environment_id, received_at) index, not a policy per row.
create function ops.can_read_environment(p_environment_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
    select ops.caller_is_service()
        or exists (select from ops.environments e
                    where e.id = p_environment_id and ops.project_role(e.project_id) is not null)
$$;

-- An environment's mails, newest first, those before mail `p_before` (a
-- page's last), matching `p_q` in the subject, the sender or a recipient.
create function ops.environment_mails(p_environment_id uuid, p_q text default null, p_limit integer default 50,
                                      p_before bigint default null)
returns setof ops.mail_events
language plpgsql stable security definer set search_path = '' as $$
declare
    v_pattern text := '%' || replace(replace(replace(coalesce(p_q, ''), '\', '\\'), '%', '\%'), '_', '\_') || '%';
    v_at timestamptz;
    v_id bigint;
begin
    if not ops.can_read_environment(p_environment_id) then
        return;
    end if;
    if p_before is not null then
        select m.received_at, m.id into v_at, v_id from ops.mail_events m
         where m.id = p_before and m.environment_id = p_environment_id;
        if not found then
            return;
        end if;
    end if;
    return query
        select m.* from ops.mail_events m
         where m.environment_id = p_environment_id
           and (v_at is null or (m.received_at, m.id) < (v_at, v_id))
           and (coalesce(p_q, '') = '' or m.subject ilike v_pattern or m.mail_from ilike v_pattern
                or array_to_string(m.rcpt_to, ' ') ilike v_pattern)
         order by m.received_at desc, m.id desc
         limit least(greatest(coalesce(p_limit, 50), 1), 500);
end
$$;

-- How many mails each of the environments the caller may read has caught.
create function ops.mail_counts(p_environment_ids uuid[])
returns table (environment_id uuid, mails bigint)
language sql stable security definer set search_path = '' as $$
    select e.id, (select count(*) from ops.mail_events m where m.environment_id = e.id)
      from ops.environments e
     where e.id = any (p_environment_ids) and ops.can_read_environment(e.id)
$$;

revoke all on function ops.can_read_environment(uuid), ops.environment_mails(uuid, text, integer, bigint),
    ops.mail_counts(uuid[]) from public;
-- ops.can_read_environment needs no grant: only the functions above call it, as their owner
grant execute on function ops.environment_mails(uuid, text, integer, bigint), ops.mail_counts(uuid[])
    to authenticated, service_role;
