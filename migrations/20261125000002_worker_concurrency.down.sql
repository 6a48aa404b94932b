alter table backstop.workers drop column if exists concurrency;
