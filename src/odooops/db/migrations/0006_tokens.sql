-- Personal API tokens, resolved before the caller is known: the request is
-- anonymous until its token names a user.

create function ops.token_actor(p_token_hash text)
returns table (user_id uuid, token_id uuid, scopes text[])
language plpgsql security definer set search_path = '' as $$
declare
    t record;
begin
    select k.id, k.user_id, k.scopes, k.last_used_at into t
      from ops.api_tokens k join ops.users u on u.id = k.user_id
     where k.token_hash = p_token_hash and k.revoked_at is null
       and (k.expires_at is null or k.expires_at > now()) and u.is_active;
    if not found then
        return;
    end if;
    -- at most one write a minute per token, however busy it is
    if t.last_used_at is null or t.last_used_at < now() - interval '1 minute' then
        update ops.api_tokens set last_used_at = now() where id = t.id;
    end if;
    return query select t.user_id, t.id, t.scopes;
end
$$;

revoke all on all functions in schema ops from public;
grant execute on function ops.token_actor(text) to anon, service_role;
