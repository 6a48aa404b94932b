-- graphile-worker's failures found by sweeping its jobs table in bounded slices instead of by
-- an `updated_at` watermark (see queue/src/graphile/poll.rs for why, with the numbers):
-- graphile-worker 0.18 does not set `updated_at` when a worker fails a job, nothing indexes
-- it, and a failure committing after a poll could carry a time behind the watermark.
--
-- Operator notes: one new table, filled with the failures the watermark poller recorded
-- already (so the sweep does not record them again); two new columns with constant defaults
-- (instant); the two watermark columns go.

-- Each failed job of another source as the poller (or the console) last saw it. A failed job
-- not here, or here with another run_at / updated_at, is a new failure: graphile-worker moves
-- run_at when a worker fails a job and updated_at when its admin function does, so a job
-- retried and failing again is new. The console writes its own discards and cancellations
-- here in their transaction, so they are not taken for failures.
create table backstop.source_failures (
    source     text        not null,
    job_id     bigint      not null,
    run_at     timestamptz not null,
    updated_at timestamptz not null,
    primary key (source, job_id)
);

alter table backstop.source_watermarks
    -- Where the sweep is: the next slice starts after this job id (0: a new round).
    add column swept_after bigint not null default 0,
    -- Whether the sweep has been round the table once. Failures found in the first round are
    -- the history from before Backstop looked: grouped (shown in triage) but not alerted unless
    -- the console is asked to. Rows from before this migration have read their history already.
    add column history_done boolean not null default true,
    drop column seen_at,
    drop column seen_id;

-- What the watermark poller recorded, as the jobs are now (a database role that cannot read
-- graphile-worker's rows copies nothing here, and polls nothing either).
do $$
begin
    if to_regclass('graphile_worker._private_jobs') is not null then
        insert into backstop.source_failures (source, job_id, run_at, updated_at)
        select g.source, j.id, j.run_at, j.updated_at
        from backstop.source_job_groups g
        join graphile_worker._private_jobs j on j.id = g.job_id
        where g.source = 'graphile_worker' and j.attempts >= j.max_attempts and j.locked_at is null;
    end if;
end
$$;
