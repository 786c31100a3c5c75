-- Console sessions and the login throttle. A session is a random token in an
-- HttpOnly cookie, stored only as its sha256. Signing in happens before the
-- caller is known, so the steps of a login are security definer functions
-- for `anon`; the password itself is checked in Python (argon2) between them.
--
-- Lifetimes: a session ends 14 days after its last use (idle) and 30 days after
-- sign-in (absolute). Throttle: 10 failed logins per 15 minutes, counted per
-- email and per client address.

create table ops.sessions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references ops.users (id) on delete cascade,
    token_hash text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '30 days',
    last_seen_at timestamptz not null default now(),
    address text,
    user_agent text,
    constraint sessions_token_hash_key unique (token_hash),
    constraint sessions_user_agent_check check (length(user_agent) <= 500)
);
create index sessions_user_idx on ops.sessions (user_id);

-- One row per attempt that has not (yet) succeeded: an attempt is recorded
-- before its password is checked, so that concurrent guesses count too, and
-- removed again when the password was right.
create table ops.login_failures (
    id bigint generated always as identity primary key,
    email text not null,
    address text not null,
    failed_at timestamptz not null default now()
);
create index login_failures_email_idx on ops.login_failures (email, failed_at);
create index login_failures_address_idx on ops.login_failures (address, failed_at);
create index login_failures_failed_at_idx on ops.login_failures (failed_at);

-- Seconds until the 10th most recent failure, by email or by address, leaves
-- the 15-minute window; 0 while both have fewer than 10 in it.
create function ops.login_wait(p_email text, p_address text) returns integer
language sql stable set search_path = '' as $$
    select coalesce(max(greatest(1, ceil(extract(epoch from t + interval '15 minutes' - now()))::integer)), 0)
      from ((select f.failed_at from ops.login_failures f
              where f.email = p_email and f.failed_at > now() - interval '15 minutes'
              order by f.failed_at desc offset 9 limit 1)
            union all
            (select f.failed_at from ops.login_failures f
              where f.address = p_address and f.failed_at > now() - interval '15 minutes'
              order by f.failed_at desc offset 9 limit 1)) tenth (t)
$$;

-- The first step of a login. Throttled: only `retry_after` (seconds), nothing
-- recorded. Otherwise the attempt is recorded as a failure and returned with
-- the password hash to check (NULL for an unknown or inactive account, which
-- the caller checks against a dummy hash so that both take as long).
-- Advisory locks per email and per address (always in that order) serialize
-- concurrent attempts, so parallel guesses cannot slip past the count.
create function ops.login_begin(p_email text, p_address text)
returns table (attempt_id bigint, retry_after integer, user_id uuid, password_hash text)
language plpgsql security definer set search_path = '' as $$
declare
    v_email text := lower(btrim(p_email));
    v_wait integer;
    v_attempt bigint;
begin
    perform pg_advisory_xact_lock(7301, hashtext(v_email));
    perform pg_advisory_xact_lock(7302, hashtext(p_address));
    v_wait := ops.login_wait(v_email, p_address);
    if v_wait > 0 then
        return query select null::bigint, v_wait, null::uuid, null::text;
        return;
    end if;
    delete from ops.login_failures f where f.failed_at < now() - interval '1 day';
    insert into ops.login_failures (email, address) values (v_email, p_address) returning id into v_attempt;
    return query
        select v_attempt, 0, u.id, u.password_hash
          from (select 1) one
          left join ops.users u on lower(u.email) = v_email and u.is_active;
end
$$;

-- The last step of a login whose password was right: the attempt no longer
-- counts, nor do the account's earlier failures, and a session begins. The
-- attempt must be a recent one for this user's email, which ties the session
-- to a login that really took place.
create function ops.login_succeeded(p_attempt_id bigint, p_user_id uuid, p_token_hash text,
                                    p_address text, p_user_agent text)
returns table (session_id uuid, expires_at timestamptz)
language plpgsql security definer set search_path = '' as $$
declare
    v_email text;
    v_session ops.sessions;
begin
    select lower(u.email) into v_email from ops.users u
      join ops.login_failures f on f.email = lower(u.email)
     where u.id = p_user_id and u.is_active and f.id = p_attempt_id
       and f.failed_at > now() - interval '5 minutes';
    if v_email is null then
        raise exception 'that login attempt is unknown or too old' using errcode = '42501';
    end if;
    delete from ops.login_failures f where f.email = v_email;
    -- sign-ins are rare enough to sweep every ended session while here
    delete from ops.sessions s where s.expires_at <= now() or s.last_seen_at <= now() - interval '14 days';
    insert into ops.sessions (user_id, token_hash, address, user_agent)
    values (p_user_id, p_token_hash, p_address, left(p_user_agent, 500))
    returning * into v_session;
    return query select v_session.id, v_session.expires_at;
end
$$;

-- The user a session cookie stands for, or no row: unknown, expired (idle or
-- absolute) or its user deactivated.
create function ops.session_actor(p_token_hash text)
returns table (user_id uuid, session_id uuid, expires_at timestamptz)
language plpgsql security definer set search_path = '' as $$
declare
    s record;
begin
    select k.id, k.user_id, k.expires_at, k.last_seen_at into s
      from ops.sessions k join ops.users u on u.id = k.user_id
     where k.token_hash = p_token_hash and k.expires_at > now()
       and k.last_seen_at > now() - interval '14 days' and u.is_active;
    if not found then
        return;
    end if;
    -- at most one write a minute per session, however busy it is
    if s.last_seen_at < now() - interval '1 minute' then
        update ops.sessions set last_seen_at = now() where id = s.id;
    end if;
    return query select s.user_id, s.id, s.expires_at;
end
$$;

revoke all on all functions in schema ops from public;
-- anon is only ever the application itself before it knows the caller; the
-- password hashes these return never reach `authenticated`.
grant execute on function ops.login_begin(text, text),
    ops.login_succeeded(bigint, uuid, text, text, text), ops.session_actor(text) to anon;

-- A signed-in user sees and ends their own sessions (never the token hashes);
-- sessions begin only through ops.login_succeeded. Login failures are for the
-- functions above and the control plane only.
grant select, insert, update, delete on ops.sessions, ops.login_failures to service_role;
grant select (id, user_id, created_at, expires_at, last_seen_at, address, user_agent) on ops.sessions
    to authenticated;
grant delete on ops.sessions to authenticated;

alter table ops.sessions enable row level security;
alter table ops.sessions force row level security;
alter table ops.login_failures enable row level security;
alter table ops.login_failures force row level security;
create policy service_all on ops.sessions for all to service_role using (true) with check (true);
create policy service_all on ops.login_failures for all to service_role using (true) with check (true);
create policy self_select on ops.sessions for select to authenticated
    using (user_id = (select ops.current_user_id()));
create policy self_delete on ops.sessions for delete to authenticated
    using (user_id = (select ops.current_user_id()));
