-- Learned error groups: each group keeps the template of its messages (tokens, NULL where the
-- messages vary), which the dead-letter transaction matches and widens (queue/src/triage). When
-- a template widens over another group's, the two are one problem: the younger merges into the
-- oldest, which keeps its id, status and history; the younger's row stays as a redirect
-- (`merged_into`) so links to it, in Slack say, keep working.
--
-- Operator notes: two nullable columns (instant) and a partial index over groups with a
-- template (none yet: it builds instantly). Groups from before keep their normalised message
-- and no template until regrouped: the console does it in the background when it starts, and
-- `backstop regroup` does it by hand (both idempotent).

alter table backstop.error_groups
    add column template text[],
    add column merged_into bigint references backstop.error_groups;

-- The templates a message is compared with: its source, kind and length, most recent first.
create index error_groups_templates on backstop.error_groups (source, kind, cardinality(template), last_seen desc)
    where template is not null;

-- Merges group `p_victim` into `p_survivor`: counts, hourly arrivals, first and last seen, the
-- latest sample, its dead jobs (Backstop's and other sources'); the survivor's status stays.
-- The victim becomes a redirect, and anything that redirected to it now redirects onwards.
-- Its undigested arrivals move with it (the survivor's digest reports them); it sends nothing.
-- A learned merge drops the victim's template (the survivor's covers it); an operator's keeps
-- it as an alias, so the victim's future failures go to the survivor.
create function backstop.merge_error_groups(p_survivor bigint, p_victim bigint, p_keep_template boolean)
returns void
language plpgsql as $$
begin
    if p_survivor = p_victim then
        return;
    end if;
    update backstop.error_groups s set
        total = s.total + v.total,
        digested_total = s.digested_total + v.digested_total,
        first_seen = least(s.first_seen, v.first_seen),
        last_seen = greatest(s.last_seen, v.last_seen),
        queue = case when v.last_seen > s.last_seen then v.queue else s.queue end,
        sample_error = case when v.last_seen > s.last_seen then v.sample_error else s.sample_error end,
        sample_job_id = case when v.last_seen > s.last_seen then v.sample_job_id else s.sample_job_id end
    from backstop.error_groups v
    where s.id = p_survivor and v.id = p_victim;
    insert into backstop.error_group_arrivals as a (group_id, hour, arrivals)
    select p_survivor, hour, arrivals from backstop.error_group_arrivals where group_id = p_victim
    on conflict on constraint error_group_arrivals_pkey do update set arrivals = a.arrivals + excluded.arrivals;
    delete from backstop.error_group_arrivals where group_id = p_victim;
    update backstop.dead_jobs set group_id = p_survivor where group_id = p_victim;
    update backstop.source_job_groups set group_id = p_survivor where group_id = p_victim;
    update backstop.error_groups set merged_into = p_survivor where merged_into = p_victim;
    update backstop.error_groups
    set merged_into = p_survivor, fingerprint = 'merged:' || id, digested_total = total,
        template = case when p_keep_template then template end
    where id = p_victim;
end
$$;

-- As before (one arrival, the alerts it calls for), plus the group's learned template. The
-- caller names the group the arrival joins (`p_group_id`, decided from the templates); with
-- none, a new group starts with `p_template`, unless a group from before templates has the same
-- normalised message, which then adopts the template. Alerts now go to every webhook a console
-- has had within a week (was: five minutes), so none is lost while no console runs, and carry
-- the time of the death.
drop function backstop.record_error_arrival(text, text, text, text, text, bigint);
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
