-- Rules the data must obey whoever writes it: the run state machine, the
-- stage rules of branches, and an org never left without an owner.
-- Errors raised here use SQLSTATE class 'OP' so the application can name them:
--   OP001 invalid transition, OP002 not found, OP003 refused by a rule.

create table ops.run_transitions (
    from_status ops.run_status not null,
    to_status ops.run_status not null,
    primary key (from_status, to_status)
);
insert into ops.run_transitions values
    ('awaiting_authorization', 'queued'), ('awaiting_authorization', 'canceled'),
    ('queued', 'claimed'), ('queued', 'canceled'), ('queued', 'superseded'),
    ('claimed', 'running'), ('claimed', 'queued'), ('claimed', 'canceled'),
    ('running', 'succeeded'), ('running', 'failed'), ('running', 'canceled'), ('running', 'queued');

create function ops.runs_check_transition() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if tg_op = 'INSERT' then
        if new.status not in ('queued', 'awaiting_authorization') then
            raise exception 'a run starts queued or awaiting authorization, not %', new.status
                using errcode = 'OP001';
        end if;
        new.queued_at := case when new.status = 'queued' then now() end;
        return new;
    end if;
    if new.status = old.status then
        return new;
    end if;
    if not exists (select from ops.run_transitions t
                   where t.from_status = old.status and t.to_status = new.status) then
        raise exception 'run % cannot go from % to %', old.id, old.status, new.status
            using errcode = 'OP001';
    end if;
    case new.status
        when 'queued' then
            new.queued_at := now();
            new.claimed_at := null;
            new.started_at := null;
            new.worker_id := null;
            new.lease_expires_at := null;
        when 'claimed' then new.claimed_at := now();
        when 'running' then new.started_at := now();
        else  -- succeeded, failed, canceled, superseded: final
            new.finished_at := now();
            new.lease_expires_at := null;
    end case;
    return new;
end
$$;

create trigger runs_check_transition
    before insert or update of status on ops.runs
    for each row execute function ops.runs_check_transition();

-- Odoo.sh's stage rules: production only changes by merge, so nothing is
-- dragged into production from development and production is never moved away.
create function ops.branches_check_stage() returns trigger
language plpgsql set search_path = '' as $$
begin
    if new.stage = old.stage then
        return new;
    end if;
    if old.stage = 'production' then
        raise exception 'branch "%" is the production branch; production cannot be moved to %', old.name, new.stage
            using errcode = 'OP003';
    end if;
    if old.stage = 'development' and new.stage = 'production' then
        raise exception 'branch "%" cannot go from development to production; move it to staging first', old.name
            using errcode = 'OP003';
    end if;
    return new;
end
$$;

create trigger branches_check_stage
    before update of stage on ops.branches
    for each row execute function ops.branches_check_stage();

-- Security definer: the check must see every owner row, not only the caller's.
create function ops.org_members_keep_owner() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if old.role = 'owner'
       and exists (select from ops.orgs o where o.id = old.org_id)
       and not exists (select from ops.org_members m where m.org_id = old.org_id and m.role = 'owner') then
        raise exception 'an org must keep at least one owner' using errcode = 'OP003';
    end if;
    return null;
end
$$;

create trigger org_members_keep_owner
    after update of role or delete on ops.org_members
    for each row execute function ops.org_members_keep_owner();
