//! The alert contract and the webhook rows, shared by the console (which shows webhooks and
//! sends test alerts) and the alert worker (which delivers).
//!
//! This module is the one owner of what an alert job is: its kind, the digest's kind, the queue
//! both run on, how many attempts an alert gets, and the windows that decide which webhooks
//! get alerts. The SQL that enqueues alert jobs (`backstop.record_error_arrival`, run in the
//! dead-letter transaction; the test alerts; the graphile-worker history that takes them back)
//! gets these values as arguments from here, and the console's workers use the same constants,
//! so changing one is changing it everywhere.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::{Result, sql};

/// The kind of alert jobs. `backstop.record_error_arrival` enqueues them for new, reopened and
/// unignored groups; a dead job of any `backstop.` kind never alerts (no loops).
pub const ALERT_KIND: &str = "backstop.slack_alert";

/// The queue alert jobs (and the digest) run on.
pub const ALERT_QUEUE: &str = "backstop";

/// The kind of the digest job, which the console's cron enqueues every few minutes and which
/// enqueues one digest alert per webhook.
pub const DIGEST_KIND: &str = "backstop.slack_digest";

/// Attempts an alert job gets: with the console's backoff (1 s doubling, capped at 5 min) about
/// half an hour of Slack being down, then the alert job is dead and shown on the overview.
pub const ALERT_MAX_ATTEMPTS: i32 = 12;

/// Attempts a test alert gets: someone is watching for it, so it fails soon.
pub const TEST_ALERT_MAX_ATTEMPTS: i32 = 3;

/// How long after a console last confirmed a webhook the dead-letter transaction still
/// enqueues alerts for it: a week. During a redeploy or an outage of the consoles the alert
/// waits in the queue, and the first console back sends it (saying how late); a webhook dropped
/// from every console's configuration for a week gets nothing more.
pub const ALERT_ROUTING_WINDOW_SECS: i64 = 7 * 24 * 3600;

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
/// enqueueing them for [`ALERT_ROUTING_WINDOW_SECS`] after the last confirmation).
pub const WEBHOOK_STALE_AFTER_SECS: i64 = 300;

/// Every configured webhook.
pub async fn alert_webhooks<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<AlertWebhook>> {
    Ok(sql::alert_webhook_list(executor, WEBHOOK_STALE_AFTER_SECS as f64).await?)
}

/// Alert jobs waiting to be sent (not running now): counted on the claim index (queue
/// [`ALERT_QUEUE`]), so it stays cheap however large the rest of the live table is.
pub async fn waiting_alert_jobs<'e, E: PgExecutor<'e>>(executor: E) -> Result<i64> {
    Ok(sql::alert_job_count_waiting(executor, ALERT_QUEUE, ALERT_KIND).await?)
}

/// Enqueues a test alert to every active webhook that is not broken, recording who asked. Returns how
/// many were enqueued.
pub async fn enqueue_test_alerts<'e, E: PgExecutor<'e>>(executor: E, requested_by: &str) -> Result<u64> {
    let enqueued = sql::alert_job_enqueue_tests(
        executor,
        ALERT_QUEUE,
        ALERT_KIND,
        requested_by,
        TEST_ALERT_MAX_ATTEMPTS,
        WEBHOOK_STALE_AFTER_SECS as f64,
        sql::NOTIFY_CHANNEL,
    )
    .await?;
    Ok(enqueued.try_into().unwrap_or(0))
}

/// The alert contract as `backstop.record_error_arrival` takes it: the alert jobs it enqueues
/// for a new, reopened or unignored group, and the webhooks it routes them to.
pub(crate) const ARRIVAL_ALERTS: sql::ArrivalAlerts = sql::ArrivalAlerts {
    kind: ALERT_KIND,
    queue: ALERT_QUEUE,
    max_attempts: ALERT_MAX_ATTEMPTS,
    routing_window_secs: ALERT_ROUTING_WINDOW_SECS as f64,
    channel: sql::NOTIFY_CHANNEL,
};

/// Deletes the alert jobs this transaction enqueued that nothing has claimed (failures taken
/// in as history alert nothing).
pub(crate) async fn delete_alerts_enqueued_here(conn: &mut PgConnection) -> sqlx::Result<()> {
    sql::alert_job_delete_enqueued_here(conn, ALERT_QUEUE, ALERT_KIND).await
}

/// The console's alert bookkeeping: its rows in `backstop.alert_webhooks` (routing, breakage,
/// the token bucket every console shares, delivery counts) and the digest's reads. The queue
/// owns these tables, so their SQL lives here; the console (`backstop serve`) is the only
/// caller. Not a stable API.
#[doc(hidden)]
pub mod console {
    use chrono::{DateTime, Utc};
    use sqlx::{PgConnection, PgExecutor};

    use crate::sql;

    /// Adds or updates the webhook of `url` with its label and routes (a broken one is trusted
    /// again), confirmed now. Returns its id (the URL's md5).
    pub async fn upsert_webhook(
        conn: &mut PgConnection,
        url: &str,
        label: &str,
        queues: Option<&[String]>,
        kinds: Option<&[String]>,
    ) -> sqlx::Result<String> {
        sql::alert_webhook_upsert(conn, url, label, queues, kinds).await
    }

    /// Says a running console has these webhooks now.
    pub async fn confirm_webhooks<'e, E: PgExecutor<'e>>(executor: E, ids: &[String]) -> sqlx::Result<()> {
        sql::alert_webhook_confirm(executor, ids).await
    }

    /// Marks a webhook broken, with Slack's reason.
    pub async fn mark_webhook_broken<'e, E: PgExecutor<'e>>(
        executor: E,
        id: &str,
        reason: &str,
    ) -> sqlx::Result<()> {
        sql::alert_webhook_mark_broken(executor, id, reason).await
    }

    /// Which of `ids` are marked broken, and since when.
    pub async fn broken_webhooks<'e, E: PgExecutor<'e>>(
        executor: E,
        ids: &[String],
    ) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
        sql::alert_webhook_list_broken(executor, ids).await
    }

    /// Takes back a webhook if it is still the breakage of `broken_at`. Returns whether it did.
    pub async fn unbreak_webhook<'e, E: PgExecutor<'e>>(
        executor: E,
        id: &str,
        broken_at: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        sql::alert_webhook_unbreak(executor, id, broken_at).await
    }

    /// Nothing is posted to the webhook before `until`, by any console.
    pub async fn block_webhook_until<'e, E: PgExecutor<'e>>(
        executor: E,
        id: &str,
        until: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sql::alert_webhook_block_until(executor, id, until).await
    }

    /// Refills the webhook's token bucket (`per_second`, up to `burst`) and takes a token.
    /// Returns the tokens left: negative means wait `-tokens / per_second` seconds.
    pub async fn take_webhook_token<'e, E: PgExecutor<'e>>(
        executor: E,
        id: &str,
        burst: f64,
        per_second: f64,
    ) -> sqlx::Result<f64> {
        sql::alert_webhook_take_token(executor, id, burst, per_second).await
    }

    /// Gives back a token taken with [`take_webhook_token`].
    pub async fn return_webhook_token<'e, E: PgExecutor<'e>>(executor: E, id: &str) -> sqlx::Result<()> {
        sql::alert_webhook_return_token(executor, id).await
    }

    /// Counts one delivery to the webhook. Returns its label.
    pub async fn count_webhook_sent<'e, E: PgExecutor<'e>>(executor: E, id: &str) -> sqlx::Result<String> {
        sql::alert_webhook_count_sent(executor, id).await
    }

    /// Whether the idempotency key `key` was claimed (see [`crate::claim_idempotency_key`]).
    pub async fn idempotency_key_exists<'e, E: PgExecutor<'e>>(executor: E, key: &str) -> sqlx::Result<bool> {
        sql::idempotency_key_exists(executor, key).await
    }

    /// The open groups (not of Backstop's own kinds) with arrivals no alert or digest has
    /// reported: `(id, kind, queue, unreported)`, most unreported first, locked to the end of
    /// the transaction.
    pub async fn lock_undigested_groups(
        conn: &mut PgConnection,
    ) -> sqlx::Result<Vec<(i64, String, String, i64)>> {
        sql::error_group_lock_undigested(conn).await
    }

    /// Marks every arrival of `groups` reported.
    pub async fn mark_groups_digested<'e, E: PgExecutor<'e>>(
        executor: E,
        groups: &[i64],
    ) -> sqlx::Result<()> {
        sql::error_group_mark_digested(executor, groups).await
    }
}
