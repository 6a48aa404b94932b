drop table if exists backstop.source_job_groups;
drop table if exists backstop.source_watermarks;
