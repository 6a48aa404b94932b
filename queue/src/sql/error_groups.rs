//! Error groups (`error_groups`, `error_group_arrivals`) and their learned templates: reading
//! and changing groups for triage, recording arrivals (through `backstop.record_error_arrival`),
//! learning, merging and splitting.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::alerts::ArrivalAlerts;
use crate::triage::{ErrorGroup, GroupArrivals};

/// Groups, most recently seen first (see `triage::GroupFilter` for the arguments).
pub(crate) async fn error_group_list<'e, E: PgExecutor<'e>>(
    executor: E,
    status: Option<&str>,
    source: Option<&str>,
    kind: Option<&str>,
    before_seen: Option<DateTime<Utc>>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<ErrorGroup>> {
    sqlx::query_as(
        "select * from backstop.error_groups
         where merged_into is null
           and ($1::text is null or status = $1)
           and ($2::text is null or source = $2)
           and ($3::text is null or kind = $3)
           and ($4::timestamptz is null or (last_seen, id) < ($4, $5))
         order by last_seen desc, id desc
         limit $6",
    )
    .bind(status)
    .bind(source)
    .bind(kind)
    .bind(before_seen)
    .bind(before_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// One group by id, following a merged group's redirect.
pub(crate) async fn error_group_get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
) -> sqlx::Result<Option<ErrorGroup>> {
    sqlx::query_as(
        "select g.* from backstop.error_groups g
         where g.id = coalesce((select merged_into from backstop.error_groups where id = $1), $1)",
    )
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Hourly arrivals of the given groups since `since`.
pub(crate) async fn error_group_arrivals_since<'e, E: PgExecutor<'e>>(
    executor: E,
    groups: &[i64],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<GroupArrivals>> {
    sqlx::query_as(
        "select group_id, hour, arrivals from backstop.error_group_arrivals
         where group_id = any($1) and hour >= date_trunc('hour', $2::timestamptz)
         order by group_id, hour",
    )
    .bind(groups)
    .bind(since)
    .fetch_all(executor)
    .await
}

/// Marks a group resolved (following a redirect). Returns whether it exists.
pub(crate) async fn error_group_resolve<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update backstop.error_groups
         set status = 'resolved', resolved_at = now(), ignored_until = null, ignored_until_total = null,
             digested_total = total
         where id = coalesce((select merged_into from backstop.error_groups where id = $1), $1)",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks a group ignored until `until` or `more` further arrivals (following a redirect).
/// Returns whether it exists.
pub(crate) async fn error_group_ignore<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    until: Option<DateTime<Utc>>,
    more: Option<i64>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update backstop.error_groups
         set status = 'ignored', ignored_until = $2, ignored_until_total = total + $3,
             digested_total = total
         where id = coalesce((select merged_into from backstop.error_groups where id = $1), $1)",
    )
    .bind(id)
    .bind(until)
    .bind(more)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Opens a group again (following a redirect). Returns whether it exists.
pub(crate) async fn error_group_reopen<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update backstop.error_groups
         set status = 'open', ignored_until = null, ignored_until_total = null
         where id = coalesce((select merged_into from backstop.error_groups where id = $1), $1)",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks every arrival of `groups` reported (the digest has them, or they need no report).
pub(crate) async fn error_group_mark_digested<'e, E: PgExecutor<'e>>(
    executor: E,
    groups: &[i64],
) -> sqlx::Result<()> {
    sqlx::query("update backstop.error_groups set digested_total = total where id = any($1)")
        .bind(groups)
        .execute(executor)
        .await
        .map(drop)
}

/// The open groups (not of Backstop's own kinds) with arrivals no alert or digest reported:
/// `(id, kind, queue, unreported)`, most unreported first, locked to the end of the
/// transaction.
pub(crate) async fn error_group_lock_undigested(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(i64, String, String, i64)>> {
    sqlx::query_as(
        "select id, kind, queue, total - digested_total from backstop.error_groups
         where status = 'open' and total > digested_total and kind not like 'backstop.%'
         order by total - digested_total desc, id
         for update",
    )
    .fetch_all(conn)
    .await
}

/// One arrival, through `backstop.record_error_arrival` (which also enqueues the `alerts` it
/// calls for). With `dead_job`, the dead job `job_id` takes the group in the same statement.
/// Returns the group and the alert reason, if any.
#[expect(clippy::too_many_arguments, reason = "one statement's parameters, named")]
pub(crate) async fn error_group_record_arrival(
    conn: &mut PgConnection,
    alerts: &ArrivalAlerts,
    dead_job: bool,
    source: &str,
    kind: &str,
    queue: &str,
    message: &str,
    error: &str,
    job_id: i64,
    template: &[Option<String>],
    group: Option<i64>,
) -> sqlx::Result<(i64, Option<String>)> {
    sqlx::query_as(if dead_job {
        "with arrival as (select * from backstop.record_error_arrival($1, $2, $3, $4, $5, $6, $7, $8,
                                                                      $9, $10, $11, make_interval(secs => $12), $13)),
              grouped as (update backstop.dead_jobs d set group_id = a.group_id from arrival a where d.id = $6)
         select group_id, alert from arrival"
    } else {
        "select group_id, alert
         from backstop.record_error_arrival($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, make_interval(secs => $12), $13)"
    })
    .bind(source)
    .bind(kind)
    .bind(queue)
    .bind(message)
    .bind(error)
    .bind(job_id)
    .bind(template)
    .bind(group)
    .bind(alerts.kind)
    .bind(alerts.queue)
    .bind(alerts.max_attempts)
    .bind(alerts.routing_window_secs)
    .bind(alerts.channel)
    .fetch_one(conn)
    .await
}

/// Gives a new group the fixed places of a split template (if it has none yet).
pub(crate) async fn error_group_set_template_fixed(
    conn: &mut PgConnection,
    id: i64,
    fixed: i64,
) -> sqlx::Result<()> {
    sqlx::query("update backstop.error_groups set template_fixed = $2 where id = $1 and template_fixed = 0")
        .bind(id)
        .bind(fixed)
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the advisory lock (`lock_space`, then the bucket's hash) that serialises learning in
/// one (source, kind, length) bucket, to the end of the transaction.
pub(crate) async fn error_template_bucket_lock(
    conn: &mut PgConnection,
    lock_space: i32,
    source: &str,
    kind: &str,
    length: i32,
) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2 || E'\\x1f' || $3 || E'\\x1f' || $4::text))")
        .bind(lock_space)
        .bind(source)
        .bind(kind)
        .bind(length)
        .execute(conn)
        .await
        .map(drop)
}

/// A group's id, template, fixed positions, arrivals and the group it redirects to.
pub(crate) type TemplateRow = (i64, Vec<Option<String>>, i64, i64, Option<i64>);

/// The bucket's lock taken and its templates read, at most `max` of them, in one round trip
/// (`backstop.lock_error_templates`).
pub(crate) async fn error_template_bucket_lock_and_list(
    conn: &mut PgConnection,
    lock_space: i32,
    source: &str,
    kind: &str,
    length: i32,
    max: i32,
) -> sqlx::Result<Vec<TemplateRow>> {
    sqlx::query_as("select * from backstop.lock_error_templates($1, $2, $3, $4, $5)")
        .bind(lock_space)
        .bind(source)
        .bind(kind)
        .bind(length)
        .bind(max)
        .fetch_all(conn)
        .await
}

/// Merges group `victim` into `survivor` (`backstop.merge_error_groups`).
pub(crate) async fn error_group_merge(
    conn: &mut PgConnection,
    survivor: i64,
    victim: i64,
    keep_template: bool,
) -> sqlx::Result<()> {
    sqlx::query("select backstop.merge_error_groups($1, $2, $3)")
        .bind(survivor)
        .bind(victim)
        .bind(keep_template)
        .execute(conn)
        .await
        .map(drop)
}

/// The group other than `id` whose fingerprint is that of `message` (a group from before
/// templates that reads the same), if any.
pub(crate) async fn error_group_fingerprint_holder(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    message: &str,
    id: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select id from backstop.error_groups
         where fingerprint = md5($1 || E'\\x1f' || $2 || E'\\x1f' || $3) and id <> $4",
    )
    .bind(source)
    .bind(kind)
    .bind(message)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Gives a group a template, with the message and fingerprint that follow from it.
pub(crate) async fn error_group_set_template(
    conn: &mut PgConnection,
    id: i64,
    tokens: &[Option<String>],
    message: &str,
    source: &str,
    kind: &str,
    fixed: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update backstop.error_groups
         set template = $2, message = $3, fingerprint = md5($4 || E'\\x1f' || $5 || E'\\x1f' || $3),
             template_fixed = $6
         where id = $1",
    )
    .bind(id)
    .bind(tokens)
    .bind(message)
    .bind(source)
    .bind(kind)
    .bind(fixed)
    .execute(conn)
    .await
    .map(drop)
}

/// Groups `ids` locked, oldest first: `(id, source, kind, merged_into)`.
pub(crate) async fn error_group_lock_many(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, String, String, Option<i64>)>> {
    sqlx::query_as(
        "select id, source, kind, merged_into from backstop.error_groups where id = any($1) order by id for update",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Live groups from before templates, oldest first, after the `(first_seen, id)` cursor:
/// `(id, first_seen, source, kind, sample_error)`.
pub(crate) async fn error_group_untemplated_page<'e, E: PgExecutor<'e>>(
    executor: E,
    after: (DateTime<Utc>, i64),
    limit: i64,
) -> sqlx::Result<Vec<(i64, DateTime<Utc>, String, String, String)>> {
    sqlx::query_as(
        "select id, first_seen, source, kind, sample_error from backstop.error_groups
         where template is null and merged_into is null and (first_seen, id) > ($1, $2)
         order by first_seen, id
         limit $3",
    )
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Locks group `id` if it is still a live group from before templates.
pub(crate) async fn error_group_lock_untemplated(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select id from backstop.error_groups
         where id = $1 and template is null and merged_into is null
         for update",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// How many live groups from before templates are left.
pub(crate) async fn error_group_untemplated_count<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from backstop.error_groups where template is null and merged_into is null",
    )
    .fetch_one(executor)
    .await
}

/// A live group's source, kind and template length (none before templates).
pub(crate) async fn error_group_bucket(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<(String, String, Option<i32>)>> {
    sqlx::query_as(
        "select source, kind, cardinality(template) from backstop.error_groups where id = $1 and merged_into is null",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A group's template and fixed places, locked.
pub(crate) async fn error_group_lock_template(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<(Vec<Option<String>>, i64)> {
    sqlx::query_as("select template, template_fixed from backstop.error_groups where id = $1 for update")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// The dead jobs of group `id`, at most `limit`, each with the error it was grouped by and
/// when it died: Backstop's own, or graphile-worker's (still in its table) as Backstop recorded
/// them.
pub(crate) async fn error_group_members(
    conn: &mut PgConnection,
    graphile: bool,
    id: i64,
    limit: i64,
) -> sqlx::Result<Vec<(i64, Option<String>, DateTime<Utc>)>> {
    let sql = if graphile {
        "select s.job_id, j.last_error, j.updated_at
         from backstop.source_job_groups s
         join graphile_worker.jobs j on j.id = s.job_id
         where s.source = 'graphile_worker' and s.group_id = $1
         limit $2"
    } else {
        "select id, last_error, died_at from backstop.dead_jobs where group_id = $1 limit $2"
    };
    sqlx::query_as(sql).bind(id).bind(limit).fetch_all(conn).await
}

/// The live group whose fingerprint is that of `message`, locked.
pub(crate) async fn error_group_lock_by_message(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    message: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select id from backstop.error_groups
         where fingerprint = md5($1 || E'\\x1f' || $2 || E'\\x1f' || $3) and merged_into is null
         for update",
    )
    .bind(source)
    .bind(kind)
    .bind(message)
    .fetch_optional(conn)
    .await
}

/// Adds `moved` dead jobs (already reported) seen between `first_seen` and `last_seen` to group
/// `id`, which keeps `fixed` places too.
pub(crate) async fn error_group_add_moved(
    conn: &mut PgConnection,
    id: i64,
    moved: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    fixed: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update backstop.error_groups set
             total = total + $2, digested_total = digested_total + $2,
             first_seen = least(first_seen, $3), last_seen = greatest(last_seen, $4),
             template_fixed = template_fixed | $5
         where id = $1",
    )
    .bind(id)
    .bind(moved)
    .bind(first_seen)
    .bind(last_seen)
    .bind(fixed)
    .execute(conn)
    .await
    .map(drop)
}

/// What a group split from another starts with.
pub(crate) struct SplitOff<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub message: &'a str,
    pub sample_error: &'a str,
    pub sample_job_id: i64,
    pub moved: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub tokens: &'a [Option<String>],
    pub fixed: i64,
}

/// A new group split from group `from`, with its status. Returns its id.
pub(crate) async fn error_group_insert_split(
    conn: &mut PgConnection,
    from: i64,
    new: &SplitOff<'_>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into backstop.error_groups
             (fingerprint, source, kind, queue, message, sample_error, sample_job_id, total,
              digested_total, first_seen, last_seen, status, resolved_at, reopened_at,
              ignored_until, ignored_until_total, template, template_fixed)
         select md5($2 || E'\\x1f' || $3 || E'\\x1f' || $4), source, kind, queue, $4, $5, $6, $7,
                $7, $8, $9, status, resolved_at, reopened_at, ignored_until, ignored_until_total,
                $10, $11
         from backstop.error_groups where id = $1
         returning id",
    )
    .bind(from)
    .bind(new.source)
    .bind(new.kind)
    .bind(new.message)
    .bind(new.sample_error)
    .bind(new.sample_job_id)
    .bind(new.moved)
    .bind(new.first_seen)
    .bind(new.last_seen)
    .bind(new.tokens)
    .bind(new.fixed)
    .fetch_one(conn)
    .await
}

/// Takes `moved` dead jobs off group `id`'s counts.
pub(crate) async fn error_group_remove_moved(
    conn: &mut PgConnection,
    id: i64,
    moved: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update backstop.error_groups set
             total = greatest(total - $2, 0),
             digested_total = least(greatest(digested_total - $2, 0), greatest(total - $2, 0))
         where id = $1",
    )
    .bind(id)
    .bind(moved)
    .execute(conn)
    .await
    .map(drop)
}

/// Moves hourly arrivals (`counts` in `hours`) from group `from` to group `to`.
pub(crate) async fn error_group_arrivals_move(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    hours: &[DateTime<Utc>],
    counts: &[i64],
) -> sqlx::Result<()> {
    sqlx::query(
        "with moved as (select * from unnest($3::timestamptz[], $4::bigint[]) as m (hour, arrivals)),
         taken as (
             update backstop.error_group_arrivals a set arrivals = greatest(a.arrivals - m.arrivals, 0)
             from moved m where a.group_id = $1 and a.hour = m.hour
         )
         insert into backstop.error_group_arrivals as a (group_id, hour, arrivals)
         select $2, hour, arrivals from moved
         on conflict on constraint error_group_arrivals_pkey do update set arrivals = a.arrivals + excluded.arrivals",
    )
    .bind(from)
    .bind(to)
    .bind(hours)
    .bind(counts)
    .execute(conn)
    .await
    .map(drop)
}

/// Moves dead jobs `ids` (Backstop's, or graphile-worker's as recorded) into group `to`.
pub(crate) async fn error_group_move_jobs(
    conn: &mut PgConnection,
    graphile: bool,
    to: i64,
    ids: &[i64],
) -> sqlx::Result<()> {
    let move_jobs = if graphile {
        "update backstop.source_job_groups set group_id = $1
         where source = 'graphile_worker' and job_id = any($2)"
    } else {
        "update backstop.dead_jobs set group_id = $1 where id = any($2)"
    };
    sqlx::query(move_jobs).bind(to).bind(ids).execute(conn).await.map(drop)
}
