-- Custom domains: a branch's environment (production's, typically) also
-- answers at hostnames of the project's own (shop.example.com). A hostname
-- belongs to one branch of one project: the first to claim it has it.

create table ops.environment_domains (
    domain text primary key,
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid not null,
    created_by uuid default ops.current_user_id() references ops.users (id) on delete set null,
    created_at timestamptz not null default now(),
    constraint environment_domains_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint environment_domains_domain_check check (
        length(domain) <= 253
        and domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$')
);
create index environment_domains_branch_idx on ops.environment_domains (branch_id);
alter table ops.environment_domains enable row level security;
alter table ops.environment_domains force row level security;
grant select on ops.environment_domains to authenticated;
grant select, insert, update, delete on ops.environment_domains to service_role;
create policy member_select on ops.environment_domains for select to authenticated
    using (ops.project_role(project_id) is not null);
create policy service_all on ops.environment_domains for all to service_role using (true) with check (true);

-- Project admins add and remove their branches' domains; one taken by
-- another project is refused without saying whose.
create function ops.add_domain(p_branch_id uuid, p_domain text) returns ops.environment_domains
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
    d ops.environment_domains;
begin
    select * into b from ops.branches where id = p_branch_id and archived_at is null;
    if b.id is null or (ops.project_role(b.project_id) is null and not ops.caller_is_service()) then
        raise exception 'no such branch' using errcode = 'OP002';
    end if;
    if not ops.caller_is_service() and ops.project_role(b.project_id) not in ('admin', 'owner') then
        raise exception 'only project admins add domains' using errcode = '42501';
    end if;
    insert into ops.environment_domains (domain, project_id, branch_id) values (p_domain, b.project_id, b.id)
    on conflict (domain) do nothing returning * into d;
    if d.domain is null then
        select * into d from ops.environment_domains where domain = p_domain;
        if d.branch_id = b.id then
            return d;
        end if;
        raise exception 'the domain % is taken', p_domain using errcode = 'OP003';
    end if;
    perform pg_notify('ops_environments', coalesce((select e.id::text from ops.environments e
                                                     where e.branch_id = b.id), ''));
    return d;
end
$$;

create function ops.remove_domain(p_branch_id uuid, p_domain text) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
begin
    select * into b from ops.branches where id = p_branch_id;
    if b.id is null or (ops.project_role(b.project_id) is null and not ops.caller_is_service()) then
        raise exception 'no such branch' using errcode = 'OP002';
    end if;
    if not ops.caller_is_service() and ops.project_role(b.project_id) not in ('admin', 'owner') then
        raise exception 'only project admins remove domains' using errcode = '42501';
    end if;
    delete from ops.environment_domains where domain = p_domain and branch_id = b.id;
    return found;
end
$$;

-- The router: the environment a custom domain names, as route_environment answers.
create function ops.route_domain(p_domain text)
returns table (id uuid, label text, status ops.environment_status, address text, websocket_address text,
               stage ops.stage, branch text)
language sql stable security definer set search_path = '' as $$
    select e.id, e.label, e.status, e.address, e.websocket_address, b.stage, b.name
      from ops.environment_domains d
      join ops.environments e on e.branch_id = d.branch_id
      join ops.branches b on b.id = e.branch_id
     where d.domain = p_domain and b.archived_at is null
$$;

revoke all on function ops.add_domain(uuid, text), ops.remove_domain(uuid, text), ops.route_domain(text)
    from public;
grant execute on function ops.add_domain(uuid, text), ops.remove_domain(uuid, text) to authenticated, service_role;
grant execute on function ops.route_domain(text) to service_role;
