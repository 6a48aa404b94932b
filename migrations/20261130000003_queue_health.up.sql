-- Queue-health alerts (the console's `--queue-alert`): a queue falling behind, a queue with
-- waiting jobs and no live worker, dead letters above their usual rate. One row per queue and
-- problem while the problem lasts; the check that inserts the row sends the alert and the
-- check that deletes it sends the all-clear, so however many consoles check, each problem is
-- announced once and cleared once (server/src/alerts/health.rs).
--
-- Operator notes: a new, empty table (instant).

create table backstop.queue_health_alerts (
    queue      text        not null,
    problem    text        not null check (problem in ('falling_behind', 'no_workers', 'dead_spike')),
    -- The first check that saw it.
    seen_at    timestamptz not null default now(),
    -- When it was announced; null while it has not lasted long enough to be (`no_workers`
    -- waits for its hold time, so a worker's restart is not an incident).
    alerted_at timestamptz,
    -- What the check measured when it announced it.
    detail     jsonb       not null default '{}',
    primary key (queue, problem)
);
