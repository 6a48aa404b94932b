alter table backstop.workers drop column if exists heartbeat_timeout;
