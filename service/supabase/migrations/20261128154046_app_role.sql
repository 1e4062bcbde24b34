-- The least-privilege role the service connects as. It can read and write the
-- cache and nothing else. Its LOGIN and password are set by the platform from a
-- secret (infra/components/database.py), never in a migration file.

-- Fail fast instead of queueing behind a long lock on a busy database.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'jobsearch_app') then
        create role jobsearch_app nologin;
    end if;
end
$$;

grant usage on schema public to jobsearch_app;
grant select, insert, update, delete on table public.job_cache to jobsearch_app;

-- RLS is forced on job_cache; this is the only policy, and only for the service.
create policy jobsearch_app_all on public.job_cache
    for all to jobsearch_app
    using (true)
    with check (true);
