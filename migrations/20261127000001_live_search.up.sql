-- Indexes behind the console's searches of the live table, shaped so that claiming never pays
-- for them. A claim sets `locked_by`, which the claim index covers, so it is an update that
-- cannot be HOT and adds an entry to every index whose predicate the new row version meets.
-- These leave claimed rows out: kind and payload cover waiting jobs (an entry when a job is
-- enqueued or released after a failed attempt, none when it is claimed); error text and the
-- retrying state cover only jobs that have failed. Running jobs are few and found through
-- `jobs_locked`. The searches state each predicate (see queue/src/sql/search.rs), since the
-- planner uses a partial index only then.
--
-- Operator notes: on an empty or small `backstop.jobs` this is instant. On a large one,
-- `create index` holds a SHARE lock while it builds, and enqueues and claims wait for it. To
-- avoid that, create the same four indexes `concurrently` by hand first (copy the statements,
-- add `concurrently` after `index`); `if not exists` then skips them here. The migration itself
-- cannot say `concurrently`: that cannot run in a transaction, and outside one it deadlocks
-- with a second process waiting on the migrator's advisory lock.

-- Kind, or kind and queue together (the queue column makes "this kind in that queue" exact and
-- ordered by id, even for a pair that matches nothing).
create index if not exists jobs_kind_waiting on backstop.jobs (kind, queue, id) where locked_by is null;

-- Payload containment (`payload @> '{"user_id": 42}'`). jsonb_path_ops as on the dead-letter
-- table: smaller, and containment is the only operator the console uses.
create index if not exists jobs_payload_waiting on backstop.jobs using gin (payload jsonb_path_ops)
    where locked_by is null;

-- Full-text search over the last error, for jobs that have one. Same expression and
-- configuration as the dead-letter table's.
create index if not exists jobs_error_text_failed on backstop.jobs
    using gin (to_tsvector('simple', coalesce(last_error, '')))
    where last_error is not null;

-- The "retrying" state (failed at least once, waiting for its next attempt), newest first.
create index if not exists jobs_retrying on backstop.jobs (id) where locked_by is null and attempts > 0;

-- Statistics the planner needs to choose between these indexes and a newest-first scan of the
-- primary key (the faster one when matches are common); gathered by (auto)analyze only.
-- Queue and kind are not independent (a kind usually lives in one queue): without the pairs'
-- real frequencies the planner multiplies the two and expects thousands of matches for a pair
-- that has none.
create statistics if not exists backstop.jobs_queue_kind (mcv) on queue, kind from backstop.jobs;
-- PostgreSQL keeps no statistics for a partial index's expression; without these it guesses
-- how common an error word is.
create statistics if not exists backstop.jobs_error_words
    on (to_tsvector('simple', coalesce(last_error, ''))) from backstop.jobs;
