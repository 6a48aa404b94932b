-- A job's error history keeps its first failed attempt and its newest ones, never more than a
-- cap (the runtime passes `backstop::MAX_KEPT_ATTEMPT_ERRORS`, the one place it is set).
--
-- Before, every failed attempt appended its error (up to 16 KiB) to `errors` for good. A job
-- with many attempts (`max_attempts(10_000)`, or one retried from the dead letters again and
-- again) grew without bound: every failure rewrote the whole array, the console sent all of
-- it to the browser, and past 256 MB of jsonb PostgreSQL refuses the update, so the failure
-- could no longer be recorded at all. The first attempt says how it started; the newest say
-- how it is going; the attempt numbers left in the history show what was dropped between.
--
-- Operator notes: one new function; no table changes. Histories already longer than the cap
-- are cut at their job's next failure, not by this migration (which would rewrite every such
-- row at once).

create function backstop.append_attempt_error(p_history jsonb, p_entry jsonb, p_keep integer)
returns jsonb
language sql immutable parallel safe as $$
    select case
        when jsonb_array_length(p_history) < p_keep then p_history || jsonb_build_array(p_entry)
        -- Keep the first entry and the newest p_keep - 2, then add this one: p_keep in all.
        else coalesce((
            select jsonb_agg(e.entry order by e.n)
            from jsonb_array_elements(p_history) with ordinality as e(entry, n)
            where e.n = 1 or e.n > jsonb_array_length(p_history) - (p_keep - 2)
        ), '[]'::jsonb) || jsonb_build_array(p_entry)
    end
$$;
