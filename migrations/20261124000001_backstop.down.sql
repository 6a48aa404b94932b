-- Removes the queue's tables. Live and dead jobs are lost: only for tests and for uninstalling.
--
-- Schema `backstop` stays: it also holds Backstop's migration history
-- (`backstop._sqlx_migrations`), which sqlx updates after this runs, in the same transaction.
-- To uninstall, revert to zero and then `drop schema backstop cascade`.
drop table if exists
    backstop.job_stats,
    backstop.workers,
    backstop.cron_schedules,
    backstop.queues,
    backstop.idempotency_keys,
    backstop.dead_jobs,
    backstop.jobs
    cascade;
