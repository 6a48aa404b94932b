//! The alert jobs' names and the webhook rows, shared by the console (which shows webhooks and
//! sends test alerts) and the alert worker (which delivers).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::Result;

/// The kind of alert jobs. `backstop.record_error_arrival` enqueues them for new, reopened and
/// unignored groups; a dead job of any `backstop.` kind never alerts (no loops).
pub const ALERT_KIND: &str = "backstop.slack_alert";

/// The queue alert jobs (and the digest) run on.
pub const ALERT_QUEUE: &str = "backstop";

/// A configured Slack webhook, as the console shows it (never its URL).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AlertWebhook {
    /// A hash of its URL.
    pub id: String,
    /// Host and last characters of its URL.
    pub label: String,
    /// Only these queues' deaths (none: all).
    pub queues: Option<Vec<String>>,
    /// Only these kinds' deaths (none: all).
    pub kinds: Option<Vec<String>>,
    /// When Slack refused it for good (400, 403, 404, 410).
    pub broken_at: Option<DateTime<Utc>>,
    /// What Slack said then.
    pub broken_reason: Option<String>,
    /// Slack asked (429) for nothing before this.
    pub blocked_until: Option<DateTime<Utc>>,
    /// Messages delivered.
    pub sent: i64,
    /// The latest delivery.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Whether a running console is configured with it (it said so within
    /// [`WEBHOOK_STALE_AFTER_SECS`]). Alerts to one that is not wait for a console that is.
    pub active: bool,
}

/// A webhook no running console has confirmed for this long is shown as inactive: its alerts
/// wait in the queue until a console that has it runs (`backstop.record_error_arrival` keeps
/// enqueueing them for a week after the last confirmation).
pub const WEBHOOK_STALE_AFTER_SECS: i64 = 300;

/// Every configured webhook.
pub async fn alert_webhooks<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<AlertWebhook>> {
    Ok(sqlx::query_as(
        "select id, label, queues, kinds, broken_at, broken_reason, blocked_until, sent, last_sent_at,
                configured_at > now() - make_interval(secs => $1) as active
         from backstop.alert_webhooks order by label, id",
    )
    .bind(WEBHOOK_STALE_AFTER_SECS as f64)
    .fetch_all(executor)
    .await?)
}

/// Alert jobs waiting to be sent (not running now): counted on the claim index (queue
/// `backstop`), so it stays cheap however large the rest of the live table is.
pub async fn waiting_alert_jobs<'e, E: PgExecutor<'e>>(executor: E) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from backstop.jobs where queue = $1 and locked_by is null and kind = $2",
    )
    .bind(ALERT_QUEUE)
    .bind(ALERT_KIND)
    .fetch_one(executor)
    .await?)
}

/// Enqueues a test alert to every active webhook that is not broken, recording who asked. Returns how
/// many were enqueued.
pub async fn enqueue_test_alerts<'e, E: PgExecutor<'e>>(executor: E, requested_by: &str) -> Result<u64> {
    let (enqueued, _notified): (i64, i64) = sqlx::query_as(
        "with queued as (
             insert into backstop.jobs (queue, kind, payload, max_attempts)
             select $1, $2, jsonb_build_object('webhook', id, 'reason', 'test', 'requested_by', $3::text), 3
             from backstop.alert_webhooks
             where broken_at is null and configured_at > now() - make_interval(secs => $4)
             returning queue
         ),
         notified as (select pg_notify('backstop_jobs', queue) from (select distinct queue from queued) q)
         select (select count(*) from queued), (select count(*) from notified)",
    )
    .bind(ALERT_QUEUE)
    .bind(ALERT_KIND)
    .bind(requested_by)
    .bind(WEBHOOK_STALE_AFTER_SECS as f64)
    .fetch_one(executor)
    .await?;
    Ok(enqueued.try_into().unwrap_or(0))
}
