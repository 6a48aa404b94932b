-- The templates a failure is compared with, read under the lock that serialises learning in
-- their bucket, in one round trip (was two: the lock, then the read). The read must see every
-- template committed by whoever held the lock before: a PL/pgSQL function's statements each take
-- a fresh snapshot (in READ COMMITTED), so the query below runs after the lock is granted and
-- sees what its holder committed. (In one plain SQL statement it would not: the snapshot would
-- predate the wait.)
--
-- Also: merging a group that is merged already does nothing (it used to count its arrivals a
-- second time).
--
-- Operator notes: one new function, one replaced; nothing else changes.

create function backstop.lock_error_templates(
    p_lock_space integer, p_source text, p_kind text, p_length integer, p_limit integer
) returns table (id bigint, template text[], template_fixed bigint, total bigint, merged_into bigint)
language plpgsql volatile as $$
begin
    perform pg_advisory_xact_lock(p_lock_space, hashtext(p_source || E'\x1f' || p_kind || E'\x1f' || p_length::text));
    return query
        select g.id, g.template, g.template_fixed, g.total, g.merged_into
        from backstop.error_groups g
        where g.source = p_source and g.kind = p_kind and cardinality(g.template) = p_length
          and g.template is not null
        order by g.last_seen desc
        limit p_limit;
end
$$;

create or replace function backstop.merge_error_groups(p_survivor bigint, p_victim bigint, p_keep_template boolean)
returns void
language plpgsql as $$
begin
    -- A victim merged already has nothing left to move: moving its counts again would count
    -- them twice.
    if p_survivor = p_victim
       or exists (select 1 from backstop.error_groups where id = p_victim and merged_into is not null) then
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
