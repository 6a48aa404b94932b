-- Beside graphile-worker: Backstop's console reads graphile-worker's tables (never changing
-- their schema: no triggers, no indexes) and brings its permanently failed jobs into the same
-- error groups and alerts as Backstop's dead letters.
--
-- Operator notes: two new, empty tables; nothing else changes.

-- How far the poller has read each source's permanently failed jobs: a keyset watermark on
-- (updated_at, id), so each poll reads only what failed since the last one, and one
-- transaction moves the watermark with the arrivals it recorded (no failure counted twice or
-- missed when two consoles poll).
create table backstop.source_watermarks (
    source  text        primary key,
    seen_at timestamptz not null default 'epoch',
    seen_id bigint      not null default 0
);

-- Which error group each of another source's failed jobs joined (Backstop's own dead jobs keep
-- theirs in `dead_jobs.group_id`): a group's page lists and retries exactly these.
create table backstop.source_job_groups (
    source   text   not null,
    job_id   bigint not null,
    group_id bigint not null references backstop.error_groups on delete cascade,
    primary key (source, job_id)
);
create index source_job_groups_group on backstop.source_job_groups (group_id, job_id);
