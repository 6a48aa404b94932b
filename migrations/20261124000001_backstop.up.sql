-- Backstop's tables, all in their own schema so they never collide with the application's.
--
-- Jobs live in `backstop.jobs` until they complete (then the row is deleted: a finished job
-- leaves only a counter behind) or run out of attempts (then the row moves, in the same
-- transaction that records the final failure, to `backstop.dead_jobs`). Keeping the live
-- table small is what keeps claiming fast: the claim index covers only unlocked rows.
--
-- Operator notes: every table here starts empty, so this migration takes no long locks.

create schema if not exists backstop;

create table backstop.jobs (
    id           bigint generated always as identity primary key,
    queue        text        not null default 'default',
    kind         text        not null,
    payload      jsonb       not null default '{}',
    -- Lower runs first, like graphile-worker; 0 is normal.
    priority     smallint    not null default 0,
    run_at       timestamptz not null default now(),
    -- Incremented when a worker claims the job, so a crash mid-run still counts as an attempt.
    attempts     integer     not null default 0,
    max_attempts integer     not null default 5,
    -- Every failed attempt, oldest first: [{"at", "attempt", "error", "worker"}].
    errors       jsonb       not null default '[]',
    last_error   text,
    -- While the job is live (not completed, not dead) no other job may take the same key.
    unique_key   text,
    -- The worker process holding the job; its liveness is `backstop.workers.last_seen`, so a
    -- heartbeat is one row update per process, not one per job.
    locked_by    text,
    locked_at    timestamptz,
    created_at   timestamptz not null default now(),
    constraint jobs_max_attempts_positive check (max_attempts >= 1),
    constraint jobs_kind_not_empty check (kind <> ''),
    constraint jobs_queue_not_empty check (queue <> '')
);

-- The claim query's index: only unlocked rows, in the exact order workers take them.
create index jobs_claim_order on backstop.jobs (queue, priority, run_at, id) where locked_by is null;
-- Finding a dead worker's jobs (heartbeat rescue) without scanning the queue.
create index jobs_locked on backstop.jobs (locked_by, locked_at) where locked_by is not null;
create unique index jobs_unique_key on backstop.jobs (unique_key) where unique_key is not null;

create table backstop.dead_jobs (
    id           bigint      primary key, -- the id it had in backstop.jobs
    queue        text        not null,
    kind         text        not null,
    payload      jsonb       not null,
    priority     smallint    not null,
    attempts     integer     not null,
    max_attempts integer     not null,
    errors       jsonb       not null,
    last_error   text,
    unique_key   text,
    created_at   timestamptz not null,
    died_at      timestamptz not null default now(),
    -- exhausted (ran out of attempts), failed_now (the worker gave up), cancelled.
    reason       text        not null,
    -- Set when an operator has seen and dismissed it; the row is kept for the record.
    discarded_at timestamptz,
    constraint dead_jobs_reason_known check (reason in ('exhausted', 'failed_now', 'cancelled'))
);
create index dead_jobs_newest on backstop.dead_jobs (died_at desc, id desc);

-- The field notes' idempotency pattern: INSERT ... ON CONFLICT DO NOTHING RETURNING key.
create table backstop.idempotency_keys (
    key        text        primary key,
    created_at timestamptz not null default now()
);
create index idempotency_keys_created_at on backstop.idempotency_keys (created_at);

-- Per-queue settings an operator changes at run time. A queue with no row is running.
create table backstop.queues (
    name       text        primary key,
    paused     boolean     not null default false,
    updated_at timestamptz not null default now()
);

-- Recurring schedules registered in code. `last_tick` is the claim: whichever process moves it
-- forward enqueues that tick's job, so a tick runs once however many workers run.
create table backstop.cron_schedules (
    name        text        primary key,
    expression  text        not null,
    kind        text        not null,
    queue       text        not null,
    payload     jsonb       not null,
    last_tick   timestamptz not null,
    updated_at  timestamptz not null default now()
);

-- Worker processes. Each refreshes `last_seen` every heartbeat interval; jobs locked by a
-- worker that stopped doing so are taken back (see the rescue in maintenance).
create table backstop.workers (
    id         text        primary key,
    queues     text[]      not null,
    started_at timestamptz not null default now(),
    last_seen  timestamptz not null default now()
);

-- Counters per minute, queue and kind, so dashboards never scan the jobs table.
create table backstop.job_stats (
    minute    timestamptz not null,
    queue     text        not null,
    kind      text        not null,
    completed bigint      not null default 0,
    failed    bigint      not null default 0,
    dead      bigint      not null default 0,
    primary key (minute, queue, kind)
);
