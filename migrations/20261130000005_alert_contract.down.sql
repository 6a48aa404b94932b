-- Back to the alert contract as literals inside the function (the learned groups version).
drop function backstop.record_error_arrival(
    text, text, text, text, text, bigint, text[], bigint, text, text, integer, interval, text
);

create function backstop.record_error_arrival(
    p_source text, p_kind text, p_queue text, p_message text, p_error text, p_job_id bigint,
    p_template text[], p_group_id bigint,
    out group_id bigint, out alert text
) language plpgsql as $$
#variable_conflict use_variable
declare
    print constant text := md5(p_source || E'\x1f' || p_kind || E'\x1f' || p_message);
    g backstop.error_groups;
begin
    group_id := p_group_id;
    if group_id is null then
        insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error, sample_job_id, template)
        values (print, p_source, p_kind, p_queue, p_message, p_error, p_job_id, p_template)
        on conflict (fingerprint) do nothing
        returning id into group_id;
        if group_id is not null then
            alert := 'new';
        else
            select id into strict group_id from backstop.error_groups where fingerprint = print;
        end if;
    end if;
    if alert is null then
        -- Another transaction may be recording into the same group: the row lock orders them.
        select * into strict g from backstop.error_groups where id = group_id for update;
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
            template = coalesce(template, p_template),
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
               jsonb_build_object('webhook', w.id, 'group_id', group_id, 'reason', alert, 'job_id', p_job_id,
                                  'at', now()),
               12
        from backstop.alert_webhooks w
        where w.broken_at is null
          -- Any webhook a console has had in the last week: during a redeploy or an outage of
          -- the consoles the alert waits in the queue, and the first console back sends it
          -- (saying how late). One dropped from every console's configuration for a week gets
          -- nothing more.
          and w.configured_at > now() - interval '7 days'
          and (w.queues is null or p_queue = any (w.queues))
          and (w.kinds is null or p_kind = any (w.kinds));
        if found then
            perform pg_notify('backstop_jobs', 'backstop');
        end if;
    end if;
end
$$;
