//! Delivering alert jobs to Slack: one POST per job, paced by a token bucket every console
//! process shares (a row in `backstop.alert_webhooks`), with Slack's answers mapped to the
//! queue's decisions: 2xx done, 429 wait as told, 5xx and timeouts retry with backoff, and a
//! refusal (400, 403, 404, 410) marks the webhook broken and stops.
//!
//! Exactly one process runs each alert job (the queue claims with `FOR UPDATE SKIP LOCKED`),
//! so two consoles never send the same alert; only a process dying between Slack's 200 and
//! the job's completion repeats one (at-least-once, like every job).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backstop::admin;
use backstop::graphile;
use backstop::triage::{self, ALERT_KIND, ALERT_QUEUE};
use backstop::{Job, JobContext, JobError, RetryPolicy, Worker};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::message::{AlertJob, DigestLine, MessageContext, Reason, clip};

/// An alert job's payload. Group alerts come from `backstop.record_error_arrival` (SQL),
/// digests from the digest job, tests from the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlackAlert {
    /// Which webhook (its id in `backstop.alert_webhooks`).
    pub webhook: String,
    /// `new`, `reopened`, `unignored`, `digest` or `test`.
    pub reason: String,
    #[serde(default)]
    pub group_id: Option<i64>,
    #[serde(default)]
    pub job_id: Option<i64>,
    /// For a digest: the groups and their arrivals since `since`.
    #[serde(default)]
    pub groups: Vec<DigestEntry>,
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// For a test alert: the console user who asked.
    #[serde(default)]
    pub requested_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestEntry {
    pub group_id: i64,
    pub count: i64,
}

impl Job for SlackAlert {
    const KIND: &'static str = ALERT_KIND;
    const QUEUE: &'static str = ALERT_QUEUE;

    /// Slack outages are usually short: 1 s, 2 s, 4 s ... capped at 5 min, 12 attempts (about
    /// half an hour), then the alert job is dead and shown on the overview.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(300)).max_attempts(12)
    }

    fn timeout() -> Option<Duration> {
        Some(Duration::from_secs(60))
    }
}

/// How fast one webhook may be posted to: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub per_second: f64,
    pub burst: f64,
}

/// The longest an alert waits in-process for its turn; longer waits go back to the queue.
const MAX_PACE_WAIT: Duration = Duration::from_secs(20);
/// Longest wait a 429 may impose before the job is simply retried later.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Runs alert jobs for the webhooks this process was configured with.
#[derive(Debug, Clone)]
pub struct SlackAlertWorker {
    pub pool: PgPool,
    pub client: reqwest::Client,
    /// Webhook id to URL (the URL never leaves this map except in the request itself).
    pub webhooks: Arc<HashMap<String, reqwest::Url>>,
    pub messages: MessageContext,
    pub pace: Pace,
}

/// A temporary failure (retry with backoff) from a database error.
fn retry_on_db(e: impl std::fmt::Display) -> JobError {
    JobError::retry(format!("database: {e}"))
}

impl Worker for SlackAlertWorker {
    type Job = SlackAlert;

    async fn work(&self, alert: SlackAlert, _ctx: JobContext) -> Result<(), JobError> {
        let Some(url) = self.webhooks.get(&alert.webhook) else {
            // Another console may have it (consoles should share one list, but may not while
            // a change rolls out): back to the queue, where its backoff gives that one a turn.
            return Err(JobError::retry("this console is not configured with the alert's webhook"));
        };
        let webhooks = triage::alert_webhooks(&self.pool).await.map_err(retry_on_db)?;
        let Some(state) = webhooks.into_iter().find(|w| w.id == alert.webhook) else {
            return Err(JobError::fail_now("the alert's webhook is gone from backstop.alert_webhooks"));
        };
        if state.broken_at.is_some() {
            let reason = state.broken_reason.unwrap_or_default();
            return Err(JobError::fail_now(format!("the webhook is marked broken: {reason}")));
        }
        if let Some(until) = state.blocked_until.filter(|until| *until > Utc::now()) {
            return Err(JobError::retry_at(until, "Slack asked to wait (429)"));
        }
        let Some(message) = self.message(&alert).await? else {
            tracing::info!(reason = %alert.reason, "nothing left to alert about (group gone)");
            return Ok(());
        };
        self.wait_for_turn(&alert.webhook).await?;
        let response = self.client.post(url.clone()).json(&message).send().await;
        let response = match response {
            // reqwest puts the URL in its errors: it is a secret, take it out.
            Err(e) => return Err(JobError::retry(format!("Slack did not answer: {}", e.without_url()))),
            Ok(response) => response,
        };
        let status = response.status();
        if status.is_success() {
            self.record_sent(&alert).await;
            return Ok(());
        }
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let wait =
                    retry_after(response.headers()).unwrap_or(Duration::from_secs(30)).min(MAX_RETRY_AFTER);
                let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                sqlx::query("update backstop.alert_webhooks set blocked_until = $2 where id = $1")
                    .bind(&alert.webhook)
                    .bind(until)
                    .execute(&self.pool)
                    .await
                    .map_err(retry_on_db)?;
                Err(JobError::retry_at(
                    until,
                    format!("Slack rate limit (429): retry after {} s", wait.as_secs()),
                ))
            }
            StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                let body = response.text().await.unwrap_or_default();
                let reason = clip(&format!("{status} {}", body.trim()), 300);
                sqlx::query(
                    "update backstop.alert_webhooks set broken_at = now(), broken_reason = $2 where id = $1",
                )
                .bind(&alert.webhook)
                .bind(&reason)
                .execute(&self.pool)
                .await
                .map_err(retry_on_db)?;
                tracing::error!(webhook = %alert.webhook, %reason, "Slack refused the webhook; marked broken");
                Err(JobError::fail_now(format!("Slack refused the webhook: {reason}")))
            }
            _ => Err(JobError::retry(format!("Slack answered {status}"))),
        }
    }
}

/// `Retry-After` in seconds (Slack sends seconds, never a date).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

impl SlackAlertWorker {
    /// The message for `alert`, built from the database as it is now (counts and times are
    /// fresh, not what they were when the job was enqueued). `None`: nothing to say any more.
    async fn message(&self, alert: &SlackAlert) -> Result<Option<Value>, JobError> {
        if alert.reason == "test" {
            return Ok(Some(self.messages.test_alert(alert.requested_by.as_deref().unwrap_or("someone"))));
        }
        if alert.reason == "digest" {
            let mut lines = Vec::with_capacity(alert.groups.len());
            for entry in &alert.groups {
                if let Some(group) =
                    triage::error_group(&self.pool, entry.group_id).await.map_err(retry_on_db)?
                {
                    lines.push(DigestLine { group, count: entry.count });
                }
            }
            if lines.is_empty() {
                return Ok(None);
            }
            let since = alert.since.unwrap_or_else(Utc::now);
            return Ok(Some(self.messages.digest(&lines, since)));
        }
        let Some(reason) = Reason::parse(&alert.reason) else {
            return Err(JobError::fail_now(format!("unknown alert reason {:?}", alert.reason)));
        };
        let Some(group_id) = alert.group_id else {
            return Err(JobError::fail_now("a group alert without a group"));
        };
        let Some(group) = triage::error_group(&self.pool, group_id).await.map_err(retry_on_db)? else {
            return Ok(None);
        };
        if group.id != group_id && reason == Reason::New {
            // Merged into an older group before this alert went out: that group's own alert
            // said "new" already, and a merge never does.
            return Ok(None);
        }
        let job = match alert.job_id {
            Some(id) if group.source == graphile::SOURCE => self.graphile_job(id).await?,
            Some(id) => admin::dead_job(&self.pool, id).await.map_err(retry_on_db)?.map(|dead| AlertJob {
                id: dead.id,
                attempts: dead.attempts,
                max_attempts: dead.max_attempts,
                payload: Some(dead.payload),
            }),
            None => None,
        };
        Ok(Some(self.messages.group_alert(reason, &group, job.as_ref())))
    }

    /// A graphile-worker job for an alert, if it is still there.
    async fn graphile_job(&self, id: i64) -> Result<Option<AlertJob>, JobError> {
        let Some(schema) = graphile::detect(&self.pool).await.map_err(retry_on_db)? else { return Ok(None) };
        let job = graphile::graphile_job(&self.pool, &schema, id).await.map_err(retry_on_db)?;
        Ok(job.map(|job| AlertJob {
            id: job.id,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            payload: job.payload,
        }))
    }

    /// Takes a token from the webhook's bucket, waiting for one if the bucket is empty. Tokens
    /// go negative while alerts queue up: each waiting alert holds its place in line.
    async fn wait_for_turn(&self, webhook: &str) -> Result<(), JobError> {
        let tokens: f64 = sqlx::query_scalar(
            "update backstop.alert_webhooks
             set tokens = least($2, tokens + extract(epoch from clock_timestamp() - refilled_at)::float8 * $3) - 1,
                 refilled_at = clock_timestamp()
             where id = $1
             returning tokens",
        )
        .bind(webhook)
        .bind(self.pace.burst)
        .bind(self.pace.per_second)
        .fetch_one(&self.pool)
        .await
        .map_err(retry_on_db)?;
        if tokens >= 0.0 {
            return Ok(());
        }
        let wait = Duration::from_secs_f64(-tokens / self.pace.per_second);
        if wait > MAX_PACE_WAIT {
            // Give the place back and come back later instead of holding a worker slot.
            sqlx::query("update backstop.alert_webhooks set tokens = tokens + 1 where id = $1")
                .bind(webhook)
                .execute(&self.pool)
                .await
                .map_err(retry_on_db)?;
            let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return Err(JobError::retry_at(at, "waiting for this webhook's rate limit"));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Counts the delivery and writes it to the audit log. Slack has the message: a failure
    /// here is logged, never retried (that would send it twice).
    async fn record_sent(&self, alert: &SlackAlert) {
        let result = async {
            let mut tx = self.pool.begin().await?;
            let label: String = sqlx::query_scalar(
                "update backstop.alert_webhooks set sent = sent + 1, last_sent_at = now() where id = $1 returning label",
            )
            .bind(&alert.webhook)
            .fetch_one(&mut *tx)
            .await?;
            let target = json!({
                "webhook": label,
                "reason": alert.reason,
                "group_id": alert.group_id,
                "job_id": alert.job_id,
                "groups": alert.groups.len(),
            });
            admin::record_action(&mut *tx, "slack", "alert_sent", &target, 1, 1).await?;
            tx.commit().await?;
            Ok::<_, backstop::Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "alert delivered but not recorded");
        }
    }
}
