-- Each worker process's own heartbeat timeout, so a process that beats rarely (configured with
-- `heartbeat(60 s, 300 s)`, say) is judged by its own patience, not by the shorter timeout of
-- whichever process runs the rescue (a console with the default 30 s would otherwise take back
-- and rerun jobs that are still running). Rescue compares `last_seen` with this column; locks
-- held by a process without a row fall back to the rescuer's own timeout.
-- Operator notes: adding a column with a constant default is instant (no table rewrite). Rows
-- of processes started before this migration get 30 s, the default timeout, until their next
-- heartbeat after an upgrade writes their own.
alter table backstop.workers add column heartbeat_timeout interval not null default interval '30 seconds';
