drop function if exists backstop.record_error_arrival(text, text, text, text, text, bigint);
drop table if exists backstop.alert_webhooks;
drop index if exists backstop.dead_jobs_group_newest;
alter table backstop.dead_jobs drop column if exists group_id;
drop table if exists backstop.error_group_arrivals;
drop table if exists backstop.error_groups;
