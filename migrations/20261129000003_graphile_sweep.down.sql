alter table backstop.source_watermarks
    drop column if exists swept_after,
    drop column if exists history_done,
    -- From now, so the watermark poller does not replay every failure since the epoch.
    add column if not exists seen_at timestamptz not null default now(),
    add column if not exists seen_id bigint not null default 0;
alter table backstop.source_watermarks alter column seen_at set default 'epoch';
drop table if exists backstop.source_failures;
