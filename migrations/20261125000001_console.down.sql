drop index if exists backstop.dead_jobs_error_text;
drop index if exists backstop.dead_jobs_payload;
drop index if exists backstop.dead_jobs_kind_newest;
drop index if exists backstop.dead_jobs_queue_newest;
drop table if exists backstop.audit_log;
