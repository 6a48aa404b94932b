-- Each worker process's concurrency per queue, beside its queue names (the same order), so the
-- console can show how many jobs a queue can run at once across the processes alive now.
-- Operator notes: adding a column with a constant default is instant (no table rewrite).
alter table backstop.workers add column concurrency integer[] not null default '{}';
