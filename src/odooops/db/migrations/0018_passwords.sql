-- Passwords after an account exists: the operator sets one, or gives its user
-- a one-time link to choose one; a signed-in user changes their own. Whichever
-- way, a new password ends the user's sessions (all but the one that asked)
-- and any reset link still open. These are the control plane's steps, done as
-- service_role: no user role executes them or reads the links.

-- At most one open link a user: a new one replaces (voids) the one before.
-- Only the token's sha256 is kept; the link is used once, then deleted.
create table ops.password_resets (
    user_id uuid primary key references ops.users (id) on delete cascade,
    token_hash text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint password_resets_token_hash_key unique (token_hash)
);

alter table ops.password_resets enable row level security;
alter table ops.password_resets force row level security;
create policy service_all on ops.password_resets for all to service_role using (true) with check (true);
grant select, insert, update, delete on ops.password_resets to service_role;

-- A user's new password (hashed by the control plane): their sessions end but
-- p_keep_session, and their open reset link is void.
create function ops.set_password(p_user_id uuid, p_password_hash text, p_keep_session uuid default null)
returns void
language plpgsql set search_path = '' as $$
begin
    update ops.users u set password_hash = p_password_hash where u.id = p_user_id;
    if not found then
        raise exception 'no such user' using errcode = 'OP002';
    end if;
    delete from ops.sessions s where s.user_id = p_user_id and s.id is distinct from p_keep_session;
    delete from ops.password_resets r where r.user_id = p_user_id;
end
$$;

-- A reset link for a user, open for p_seconds: its expiry.
create function ops.start_password_reset(p_user_id uuid, p_token_hash text, p_seconds integer)
returns timestamptz
language sql set search_path = '' as $$
    insert into ops.password_resets (user_id, token_hash, expires_at)
    values (p_user_id, p_token_hash, now() + make_interval(secs => p_seconds))
    on conflict (user_id) do update
        set token_hash = excluded.token_hash, created_at = now(), expires_at = excluded.expires_at
    returning expires_at
$$;

-- The user an open reset link is for; no row for one unknown, used or expired.
create function ops.password_reset_user(p_token_hash text)
returns table (user_id uuid, email text)
language sql stable set search_path = '' as $$
    select u.id, u.email from ops.password_resets r join ops.users u on u.id = r.user_id
     where r.token_hash = p_token_hash and r.expires_at > now()
$$;

-- Uses a reset link, once: the password becomes p_password_hash and every
-- session of the user ends. Two uses at once: the second waits on the row,
-- then finds it gone.
create function ops.finish_password_reset(p_token_hash text, p_password_hash text)
returns table (user_id uuid, email text)
language plpgsql set search_path = '' as $$
declare
    v_user uuid;
begin
    delete from ops.password_resets r where r.token_hash = p_token_hash and r.expires_at > now()
    returning r.user_id into v_user;
    if v_user is null then
        raise exception 'this reset link is unknown, used or expired: ask for a new one' using errcode = 'OP002';
    end if;
    perform ops.set_password(v_user, p_password_hash);
    return query select u.id, u.email from ops.users u where u.id = v_user;
end
$$;

grant execute on function ops.set_password(uuid, text, uuid), ops.start_password_reset(uuid, text, integer),
    ops.password_reset_user(text), ops.finish_password_reset(text, text) to service_role;
