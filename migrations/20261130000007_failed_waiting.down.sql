drop index if exists backstop.jobs_failed_waiting;
