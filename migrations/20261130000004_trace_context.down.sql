alter table backstop.dead_jobs drop column if exists trace_context;
alter table backstop.jobs drop column if exists trace_context;
