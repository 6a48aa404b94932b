//! Slack alerts: the webhook rows (`alert_webhooks`: routing, breakage, the shared token
//! bucket, delivery counts) and the alert jobs in `jobs`. The alert contract's values (kind,
//! queue, attempts, windows) come from `triage::alerts`, which owns them, as arguments.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::triage::AlertWebhook;

/// The alert jobs `backstop.record_error_arrival` enqueues, as arguments: their kind, queue and
/// attempts, how recently a webhook must have been confirmed to get them (seconds), and the
/// channel that wakes the queue's workers. The values come from `triage::alerts`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrivalAlerts {
    pub kind: &'static str,
    pub queue: &'static str,
    pub max_attempts: i32,
    pub routing_window_secs: f64,
    pub channel: &'static str,
}

/// Every configured webhook; `active` when confirmed within `stale_after_secs`.
pub(crate) async fn alert_webhook_list<'e, E: PgExecutor<'e>>(
    executor: E,
    stale_after_secs: f64,
) -> sqlx::Result<Vec<AlertWebhook>> {
    sqlx::query_as(
        "select id, label, queues, kinds, broken_at, broken_reason, blocked_until, sent, last_sent_at,
                configured_at > now() - make_interval(secs => $1) as active
         from backstop.alert_webhooks order by label, id",
    )
    .bind(stale_after_secs)
    .fetch_all(executor)
    .await
}

/// Jobs of `kind` waiting on `queue` (not running now), counted on the claim index.
pub(crate) async fn alert_job_count_waiting<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    kind: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from backstop.jobs where queue = $1 and locked_by is null and kind = $2",
    )
    .bind(queue)
    .bind(kind)
    .fetch_one(executor)
    .await
}

/// Enqueues a test alert job to every webhook confirmed within `stale_after_secs` that is not
/// broken, and wakes the queue's workers (on `channel`). Returns how many it enqueued.
pub(crate) async fn alert_job_enqueue_tests<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    kind: &str,
    requested_by: &str,
    max_attempts: i32,
    stale_after_secs: f64,
    channel: &str,
) -> sqlx::Result<i64> {
    let (enqueued, _notified): (i64, i64) = sqlx::query_as(
        "with queued as (
             insert into backstop.jobs (queue, kind, payload, max_attempts)
             select $1, $2, jsonb_build_object('webhook', id, 'reason', 'test', 'requested_by', $3::text), $5
             from backstop.alert_webhooks
             where broken_at is null and configured_at > now() - make_interval(secs => $4)
             returning queue
         ),
         notified as (select pg_notify($6, queue) from (select distinct queue from queued) q)
         select (select count(*) from queued), (select count(*) from notified)",
    )
    .bind(queue)
    .bind(kind)
    .bind(requested_by)
    .bind(stale_after_secs)
    .bind(max_attempts)
    .bind(channel)
    .fetch_one(executor)
    .await?;
    Ok(enqueued)
}

/// Deletes the jobs of `kind` on `queue` that this transaction inserted and nothing has
/// claimed.
pub(crate) async fn alert_job_delete_enqueued_here(
    conn: &mut PgConnection,
    queue: &str,
    kind: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "delete from backstop.jobs
         -- alert jobs wait unlocked on their queue (jobs_claim_order serves this); those
         -- this transaction inserted carry its id
         where queue = $1 and locked_by is null and kind = $2
           and xmin = pg_current_xact_id()::xid",
    )
    .bind(queue)
    .bind(kind)
    .execute(conn)
    .await
    .map(drop)
}

/// Adds or updates the webhook of `url` (its id is the URL's md5), trusts it again if it was
/// broken, and confirms it. Returns its id.
pub(crate) async fn alert_webhook_upsert(
    conn: &mut PgConnection,
    url: &str,
    label: &str,
    queues: Option<&[String]>,
    kinds: Option<&[String]>,
) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "insert into backstop.alert_webhooks (id, label, queues, kinds)
         values (md5($1), $2, $3, $4)
         on conflict (id) do update set
             label = excluded.label, queues = excluded.queues, kinds = excluded.kinds,
             broken_at = null, broken_reason = null, configured_at = now()
         returning id",
    )
    .bind(url)
    .bind(label)
    .bind(queues)
    .bind(kinds)
    .fetch_one(conn)
    .await
}

/// Says a running console has these webhooks now.
pub(crate) async fn alert_webhook_confirm<'e, E: PgExecutor<'e>>(
    executor: E,
    ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query("update backstop.alert_webhooks set configured_at = now() where id = any($1)")
        .bind(ids)
        .execute(executor)
        .await
        .map(drop)
}

/// Marks a webhook broken, with Slack's reason.
pub(crate) async fn alert_webhook_mark_broken<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query("update backstop.alert_webhooks set broken_at = now(), broken_reason = $2 where id = $1")
        .bind(id)
        .bind(reason)
        .execute(executor)
        .await
        .map(drop)
}

/// Which of `ids` are marked broken, and since when.
pub(crate) async fn alert_webhook_list_broken<'e, E: PgExecutor<'e>>(
    executor: E,
    ids: &[String],
) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    sqlx::query_as(
        "select id, broken_at from backstop.alert_webhooks where id = any($1) and broken_at is not null",
    )
    .bind(ids)
    .fetch_all(executor)
    .await
}

/// Takes back a webhook if it is still the breakage of `broken_at`. Returns whether it did.
pub(crate) async fn alert_webhook_unbreak<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
    broken_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update backstop.alert_webhooks set broken_at = null, broken_reason = null where id = $1 and broken_at = $2",
    )
    .bind(id)
    .bind(broken_at)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Nothing is posted to the webhook before `until` (Slack said 429).
pub(crate) async fn alert_webhook_block_until<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update backstop.alert_webhooks set blocked_until = $2 where id = $1")
        .bind(id)
        .bind(until)
        .execute(executor)
        .await
        .map(drop)
}

/// Refills the webhook's token bucket (`per_second`, up to `burst`) and takes one token.
/// Returns the tokens left: negative when the caller must wait its turn.
pub(crate) async fn alert_webhook_take_token<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
    burst: f64,
    per_second: f64,
) -> sqlx::Result<f64> {
    sqlx::query_scalar(
        "update backstop.alert_webhooks
         set tokens = least($2, tokens + extract(epoch from clock_timestamp() - refilled_at)::float8 * $3) - 1,
             refilled_at = clock_timestamp()
         where id = $1
         returning tokens",
    )
    .bind(id)
    .bind(burst)
    .bind(per_second)
    .fetch_one(executor)
    .await
}

/// Gives back a token taken with [`alert_webhook_take_token`].
pub(crate) async fn alert_webhook_return_token<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
) -> sqlx::Result<()> {
    sqlx::query("update backstop.alert_webhooks set tokens = tokens + 1 where id = $1")
        .bind(id)
        .execute(executor)
        .await
        .map(drop)
}

/// Counts one delivery to the webhook. Returns its label.
pub(crate) async fn alert_webhook_count_sent<'e, E: PgExecutor<'e>>(
    executor: E,
    id: &str,
) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "update backstop.alert_webhooks set sent = sent + 1, last_sent_at = now() where id = $1 returning label",
    )
    .bind(id)
    .fetch_one(executor)
    .await
}
