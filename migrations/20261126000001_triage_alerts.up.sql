-- Triage and alerts: dead jobs grouped by their normalised error, arrivals per group and hour
-- (sparklines without scanning dead jobs), and the Slack webhooks alerts go to.
--
-- One function, `backstop.record_error_arrival`, is the only writer of groups: it runs inside
-- the transaction that dead-letters a job (Backstop's runner, and the graphile-worker poller),
-- and in that same transaction enqueues the alert jobs a new or returning group calls for. An
-- alert is therefore exactly as durable as the dead letter it reports.
--
-- Operator notes: the new `dead_jobs.group_id` column is nullable with no default (instant);
-- its partial index only covers rows grouped from now on, so it builds instantly on an
-- existing table. Dead jobs from before this migration stay ungrouped.

create table backstop.error_groups (
    id             bigint generated always as identity primary key,
    -- md5 of source, kind and normalised message: the identity of "the same problem".
    fingerprint    text        not null unique,
    -- Where the dead jobs come from: 'backstop', or 'graphile_worker'.
    source         text        not null,
    kind           text        not null,
    -- The queue of the latest arrival: alerts are routed by queue and kind.
    queue          text        not null,
    -- The error with ids, numbers, times, addresses and quoted values replaced by placeholders.
    message        text        not null,
    -- The latest arrival's real error and job, for a concrete example.
    sample_error   text        not null,
    sample_job_id  bigint      not null,
    -- Every arrival since the group was first seen, and how many of those an alert or digest
    -- has already reported (the next digest reports the difference).
    total          bigint      not null default 1,
    digested_total bigint      not null default 1,
    first_seen     timestamptz not null default now(),
    last_seen      timestamptz not null default now(),
    -- open; resolved (an operator says it is fixed: the next arrival reopens and alerts);
    -- ignored (no digests until ignored_until passes or total reaches ignored_until_total).
    status         text        not null default 'open',
    resolved_at    timestamptz,
    reopened_at    timestamptz,
    ignored_until  timestamptz,
    ignored_until_total bigint,
    constraint error_groups_status_known check (status in ('open', 'resolved', 'ignored'))
);
create index error_groups_last_seen on backstop.error_groups (last_seen desc, id desc);

create table backstop.error_group_arrivals (
    group_id bigint      not null references backstop.error_groups on delete cascade,
    hour     timestamptz not null,
    arrivals bigint      not null,
    primary key (group_id, hour)
);

alter table backstop.dead_jobs add column group_id bigint;
create index dead_jobs_group_newest on backstop.dead_jobs (group_id, died_at desc, id desc)
    where group_id is not null;

-- Slack incoming webhooks, one row per webhook the console is configured with. The URL itself
-- is a secret and never stored: `id` is a hash of it, `label` a harmless hint for the page.
create table backstop.alert_webhooks (
    id            text        primary key,
    label         text        not null,
    -- Route: only these queues / kinds (null: all).
    queues        text[],
    kinds         text[],
    -- Token bucket shared by every console process: about one message per second.
    tokens        double precision not null default 1,
    refilled_at   timestamptz not null default now(),
    -- Slack said 429 with Retry-After: nothing goes out before this.
    blocked_until timestamptz,
    -- Slack said the webhook is gone or refused (400, 403, 404, 410): no more alerts to it
    -- until an operator fixes the configuration and the console restarts.
    broken_at     timestamptz,
    broken_reason text,
    sent          bigint      not null default 0,
    last_sent_at  timestamptz,
    -- Refreshed every minute by each console process configured with this webhook. Alerts are
    -- only routed to webhooks some running console has: one dropped from every console's
    -- configuration stops getting alerts a few minutes after the last of them stops.
    configured_at timestamptz not null default now()
);

-- Records one dead job's arrival in its error group and enqueues the alerts it calls for.
-- Returns the group's id and the alert reason: 'new', 'reopened' (it was resolved),
-- 'unignored' (its ignore ran out), or null (folded into the next digest).
create function backstop.record_error_arrival(
    p_source text, p_kind text, p_queue text, p_message text, p_error text, p_job_id bigint,
    out group_id bigint, out alert text
) language plpgsql as $$
#variable_conflict use_variable
declare
    print constant text := md5(p_source || E'\x1f' || p_kind || E'\x1f' || p_message);
    g backstop.error_groups;
begin
    insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error, sample_job_id)
    values (print, p_source, p_kind, p_queue, p_message, p_error, p_job_id)
    on conflict (fingerprint) do nothing
    returning id into group_id;
    if group_id is not null then
        alert := 'new';
    else
        -- Another transaction may be recording the same group: the row lock orders them.
        select * into strict g from backstop.error_groups where fingerprint = print for update;
        group_id := g.id;
        if g.status = 'resolved' then
            alert := 'reopened';
        elsif g.status = 'ignored' and (g.ignored_until <= now() or g.total + 1 >= g.ignored_until_total) then
            alert := 'unignored';
        end if;
        update backstop.error_groups set
            total = total + 1,
            last_seen = now(),
            queue = p_queue,
            sample_error = p_error,
            sample_job_id = p_job_id,
            status = case when alert is null then status else 'open' end,
            reopened_at = case when alert is null then reopened_at else now() end,
            -- An alert reports the group as it is now; the digest reports what comes after.
            digested_total = case when alert is null then digested_total else total + 1 end,
            ignored_until = case when alert is null then ignored_until end,
            ignored_until_total = case when alert is null then ignored_until_total end
        where id = group_id;
    end if;

    insert into backstop.error_group_arrivals as a (group_id, hour, arrivals)
    values (group_id, date_trunc('hour', now()), 1)
    on conflict on constraint error_group_arrivals_pkey do update set arrivals = a.arrivals + 1;

    -- Backstop's own alert jobs never alert about themselves: no loops.
    if alert is not null and p_kind not like 'backstop.%' then
        insert into backstop.jobs (queue, kind, payload, max_attempts)
        select 'backstop', 'backstop.slack_alert',
               jsonb_build_object('webhook', w.id, 'group_id', group_id, 'reason', alert, 'job_id', p_job_id),
               12
        from backstop.alert_webhooks w
        where w.broken_at is null
          and w.configured_at > now() - interval '5 minutes'
          and (w.queues is null or p_queue = any (w.queues))
          and (w.kinds is null or p_kind = any (w.kinds));
        if found then
            perform pg_notify('backstop_jobs', 'backstop');
        end if;
    end if;
end
$$;
