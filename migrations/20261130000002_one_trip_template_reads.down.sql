drop function backstop.lock_error_templates(integer, text, text, integer, integer);

-- merge_error_groups as it was.
create or replace function backstop.merge_error_groups(p_survivor bigint, p_victim bigint, p_keep_template boolean)
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
