-- The first version of schema `ops`: tenants, people, projects, branches and
-- the one queue of runs with their events and artifacts.

-- The caller, as PostgREST and Supabase pass it: claims set per transaction.
-- After a transaction the setting reads '' rather than NULL, hence nullif.
create function ops.current_user_id() returns uuid
language sql stable set search_path = '' as $$
    select nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid
$$;

create type ops.member_role as enum ('viewer', 'developer', 'admin', 'owner');
create type ops.stage as enum ('development', 'staging', 'production');
create type ops.run_status as enum (
    'awaiting_authorization', 'queued', 'claimed', 'running',
    'succeeded', 'failed', 'canceled', 'superseded');
create type ops.run_result as enum ('ok', 'warn', 'ko');
create type ops.run_trigger as enum ('manual', 'push', 'pull_request', 'schedule', 'rebuild', 'api');

create table ops.orgs (
    id uuid primary key default gen_random_uuid(),
    slug text not null,
    name text not null,
    created_at timestamptz not null default now(),
    constraint orgs_slug_key unique (slug),
    constraint orgs_slug_check check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    constraint orgs_name_check check (length(btrim(name)) between 1 and 200)
);

create table ops.users (
    id uuid primary key default gen_random_uuid(),
    email text not null,
    name text not null default '',
    password_hash text,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    constraint users_email_check check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and length(email) <= 320)
);
create unique index users_email_key on ops.users (lower(email));

create table ops.org_members (
    org_id uuid not null references ops.orgs (id) on delete cascade,
    user_id uuid not null references ops.users (id) on delete cascade,
    role ops.member_role not null,
    created_at timestamptz not null default now(),
    primary key (org_id, user_id)
);
create index org_members_user_idx on ops.org_members (user_id);

create table ops.api_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references ops.users (id) on delete cascade,
    name text not null,
    token_hash text not null,
    scopes text[] not null default '{read}',
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz not null default now(),
    constraint api_tokens_hash_key unique (token_hash),
    constraint api_tokens_scopes_check check (scopes <@ array['read', 'write'] and cardinality(scopes) > 0)
);
create index api_tokens_user_idx on ops.api_tokens (user_id);

create table ops.projects (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references ops.orgs (id) on delete cascade,
    slug text not null,
    name text not null,
    repo_url text not null,
    default_branch text not null default 'main',
    odoo_version text not null default '17.0',
    settings jsonb not null default '{}',
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    constraint projects_org_slug_key unique (org_id, slug),
    constraint projects_slug_check check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    constraint projects_name_check check (length(btrim(name)) between 1 and 200),
    constraint projects_repo_url_check check (length(btrim(repo_url)) > 0),
    constraint projects_odoo_version_check check (odoo_version ~ '^[0-9]{1,2}\.[0-9]$'),
    constraint projects_settings_check check (jsonb_typeof(settings) = 'object')
);

create table ops.project_members (
    project_id uuid not null references ops.projects (id) on delete cascade,
    user_id uuid not null references ops.users (id) on delete cascade,
    role ops.member_role not null,
    created_at timestamptz not null default now(),
    primary key (project_id, user_id)
);
create index project_members_user_idx on ops.project_members (user_id);

create table ops.branches (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references ops.projects (id) on delete cascade,
    name text not null,
    stage ops.stage not null default 'development',
    settings jsonb not null default '{}',
    created_at timestamptz not null default now(),
    archived_at timestamptz,
    constraint branches_project_name_key unique (project_id, name),
    -- lets runs reference (branch, project) so a run can never name a branch of another project
    constraint branches_id_project_key unique (id, project_id),
    constraint branches_name_check check (
        length(name) between 1 and 255 and name !~ '(^[/.-]|\.\.|[[:space:]~^:?*\[\\]|/$|\.lock$|@\{)'),
    constraint branches_settings_check check (jsonb_typeof(settings) = 'object')
);
create unique index branches_one_production on ops.branches (project_id)
    where stage = 'production' and archived_at is null;

create table ops.workers (
    id uuid primary key default gen_random_uuid(),
    hostname text not null,
    pid integer not null,
    version text not null,
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now()
);

create table ops.runs (
    id bigint generated always as identity primary key,
    kind text not null default 'build',
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid,
    commit_sha text,
    ref text,
    pr_number integer,
    trigger ops.run_trigger not null default 'manual',
    status ops.run_status not null default 'queued',
    result ops.run_result,
    priority integer not null default 0,
    attempt integer not null default 0,
    max_attempts integer not null default 3,
    not_before timestamptz,
    worker_id uuid references ops.workers (id) on delete set null,
    lease_expires_at timestamptz,
    queued_at timestamptz,
    claimed_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    exit_code integer,
    error text,
    params jsonb not null default '{}',
    superseded_by bigint references ops.runs (id) on delete set null,
    created_by uuid default ops.current_user_id() references ops.users (id) on delete set null,
    created_at timestamptz not null default now(),
    constraint runs_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint runs_kind_check check (kind ~ '^[a-z][a-z_]{1,30}$'),
    constraint runs_commit_sha_check check (commit_sha ~ '^[0-9a-f]{7,64}$'),
    constraint runs_build_needs_commit check (kind <> 'build' or (branch_id is not null and commit_sha is not null)),
    constraint runs_pr_number_check check (pr_number > 0),
    constraint runs_attempts_check check (max_attempts between 1 and 5 and attempt between 0 and max_attempts),
    constraint runs_params_check check (jsonb_typeof(params) = 'object')
);
-- the queue: what a runner claims next
create index runs_queue_idx on ops.runs (priority desc, id) where status = 'queued';
-- a branch's latest runs, for lanes and build lists
create index runs_branch_idx on ops.runs (branch_id, id desc);
create index runs_project_idx on ops.runs (project_id, id desc);
-- leases the reaper looks at
create index runs_lease_idx on ops.runs (lease_expires_at) where status in ('claimed', 'running');

create table ops.run_events (
    run_id bigint not null references ops.runs (id) on delete cascade,
    seq integer not null,
    ts timestamptz not null default clock_timestamp(),
    level text not null default 'info',
    phase text,
    stream text not null default 'system',
    message text not null,
    data jsonb,
    primary key (run_id, seq),
    constraint run_events_level_check check (level in ('debug', 'info', 'warning', 'error', 'critical')),
    constraint run_events_stream_check check (stream in ('stdout', 'stderr', 'system'))
);

create table ops.artifacts (
    id uuid primary key default gen_random_uuid(),
    run_id bigint not null references ops.runs (id) on delete cascade,
    name text not null,
    sha256 text not null,
    size bigint not null,
    content_type text not null default 'application/octet-stream',
    storage_uri text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    constraint artifacts_run_name_key unique (run_id, name),
    constraint artifacts_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint artifacts_size_check check (size >= 0)
);
