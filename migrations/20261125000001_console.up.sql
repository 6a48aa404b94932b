-- What the console needs: an audit log of operator actions, and indexes behind the dead-letter
-- filters (queue, kind, payload containment, error text).
--
-- The live table (`backstop.jobs`) deliberately gets no new indexes: every index there is paid
-- on each enqueue, claim and completion, and the live table stays small because finished jobs
-- leave it. Its console filters run against the claim-order and primary-key indexes with a
-- LIMIT. The dead-letter table only grows by failures, so indexing it is cheap.
--
-- Operator notes: on a large existing `backstop.dead_jobs` these `create index` statements
-- take a SHARE lock while they build (workers cannot dead-letter meanwhile); to avoid that,
-- create the same indexes `concurrently` by hand first: `if not exists` then skips them here.

create table backstop.audit_log (
    id        bigint generated always as identity primary key,
    at        timestamptz not null default now(),
    -- Who acted: the console user's name ("local" on an unauthenticated loopback console).
    actor     text        not null,
    -- What they did: retry, discard, delete, cancel, run_now, pause, resume, edit_payload.
    action    text        not null,
    -- What it acted on: a list of ids, a job, a queue, or the filter it re-ran, as JSON.
    target    jsonb       not null,
    -- How many rows the action was asked to change and how many it did (running jobs are
    -- skipped, so these differ).
    requested bigint      not null,
    changed   bigint      not null
);
create index audit_log_newest on backstop.audit_log (at desc, id desc);

create index if not exists dead_jobs_queue_newest on backstop.dead_jobs (queue, died_at desc, id desc);
create index if not exists dead_jobs_kind_newest on backstop.dead_jobs (kind, died_at desc, id desc);
-- `payload @> '{"user_id": 42}'`: jsonb_path_ops is smaller and faster than the default
-- opclass, and containment is the only operator the console uses.
create index if not exists dead_jobs_payload on backstop.dead_jobs using gin (payload jsonb_path_ops);
-- Full-text search over the final error. 'simple' (no stemming, no stop words): error text is
-- identifiers and codes more than English.
create index if not exists dead_jobs_error_text on backstop.dead_jobs
    using gin (to_tsvector('simple', coalesce(last_error, '')));
