-- The search cache: one row per (source, canonical request hash).
-- Supabase exposes every table in `public` through its REST layer to holders
-- of the public anon key, so RLS is on and anon/authenticated get nothing.

-- Fail fast instead of queueing behind a long lock on a busy database.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create table public.job_cache (
    source text not null check (source in ('jsearch', 'theirstack')),
    request_hash text not null check (length(request_hash) = 64),
    request jsonb not null,
    response jsonb not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint job_cache_pkey primary key (source, request_hash)
);

comment on table public.job_cache is
    'Search results of the job-search API, reused until expires_at.';

-- Purging expired rows (delete ... where expires_at < now()) reads this index
-- instead of the whole table.
create index job_cache_expires_at_idx on public.job_cache (expires_at);

alter table public.job_cache enable row level security;
alter table public.job_cache force row level security;

revoke all on table public.job_cache from public;

do $$
declare
    role_name text;
begin
    -- Supabase's roles; absent on a plain Postgres.
    foreach role_name in array array['anon', 'authenticated'] loop
        if exists (select 1 from pg_roles where rolname = role_name) then
            execute format('revoke all on table public.job_cache from %I', role_name);
        end if;
    end loop;
end
$$;
