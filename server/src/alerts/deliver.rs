//! Delivering alert jobs to Slack: one POST per job, paced by a token bucket every console
//! process shares (a row in `backstop.alert_webhooks`), with Slack's answers mapped to the
//! queue's decisions: 2xx done, 429 wait as told, 5xx and timeouts retry with backoff; a
//! message Slack cannot take (a 400 such as `invalid_blocks`) is sent again as plain text; a
//! refusal of the webhook itself (see [`SlackAnswer::read`]) marks it broken and stops.
//!
//! Exactly one process runs each alert job (the queue claims with `FOR UPDATE SKIP LOCKED`),
//! so two consoles never send the same alert. A delivery is recorded with an idempotency key
//! for the alert job, so a job that runs again after Slack had it (its completion lost in a
//! database crash, or its console killed before completing it) sends nothing; only a process
//! dying between Slack's 200 and that record repeats an alert (at-least-once, like every job).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backstop::admin;
use backstop::graphile;
use backstop::triage::{self, ALERT_KIND, ALERT_MAX_ATTEMPTS, ALERT_QUEUE, console};
use backstop::{Job, JobContext, JobError, RetryPolicy, Worker};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::health::QueueHealthAlert;
use super::message::{AlertJob, DigestLine, DigestRest, MessageContext, Reason, clip};
use super::webhook;

/// An alert job's payload. Group alerts come from `backstop.record_error_arrival` (SQL),
/// digests from the digest job, queue-health alerts from the health check, tests from the
/// console.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlackAlert {
    /// Which webhook (its id in `backstop.alert_webhooks`).
    pub webhook: String,
    /// `new`, `reopened`, `unignored`, `digest`, `queue_unhealthy`, `queue_healthy` or `test`.
    pub reason: String,
    #[serde(default)]
    pub group_id: Option<i64>,
    #[serde(default)]
    pub job_id: Option<i64>,
    /// For a digest: the groups and their arrivals since `since`. For a queue-health alert:
    /// the problem, first seen at `since`.
    #[serde(default)]
    pub groups: Vec<DigestEntry>,
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// For a test alert: the console user who asked.
    #[serde(default)]
    pub requested_by: Option<String>,
    /// For a group alert: when the death it reports happened.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// For a digest: the groups and deaths it counts beyond `groups` (which lists only the
    /// largest, so a digest stays small however many groups a storm touched).
    #[serde(default)]
    pub more_groups: i64,
    #[serde(default)]
    pub more_deaths: i64,
    /// For a queue-health alert or all-clear: the queue, the problem and what was measured.
    #[serde(default)]
    pub queue_health: Option<QueueHealthAlert>,
}

/// An alert sent this long after its death says so: it waited for a console (none ran), or
/// for Slack.
const LATE_AFTER: chrono::Duration = chrono::Duration::minutes(2);

/// Says in the message how long ago its death happened, when that is more than [`LATE_AFTER`]:
/// at the end of the plain text, and as a context line at the top of the blocks.
fn mark_late(message: &mut Value, age: chrono::Duration) {
    if age < LATE_AFTER {
        return;
    }
    let note = format!("(sent late: this happened {} ago, while no console could send it)", human_age(age));
    if let Some(text) = message.get_mut("text").and_then(|t| t.as_str().map(str::to_owned)) {
        message["text"] = json!(format!("{text} {note}"));
    }
    if let Some(blocks) = message.get_mut("blocks").and_then(Value::as_array_mut) {
        blocks.insert(0, json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}));
    }
}

/// `47 minutes`, `3 hours`, `2 days`.
fn human_age(age: chrono::Duration) -> String {
    match (age.num_days(), age.num_hours(), age.num_minutes()) {
        (d, _, _) if d >= 2 => format!("{d} days"),
        (_, h, _) if h >= 2 => format!("{h} hours"),
        (_, _, m) => format!("{m} minutes"),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestEntry {
    pub group_id: i64,
    pub count: i64,
}

impl Job for SlackAlert {
    const KIND: &'static str = ALERT_KIND;
    const QUEUE: &'static str = ALERT_QUEUE;

    /// Slack outages are usually short: 1 s, 2 s, 4 s ... capped at 5 min, [`ALERT_MAX_ATTEMPTS`]
    /// attempts (about half an hour), then the alert job is dead and shown on the overview.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(300))
            .max_attempts(ALERT_MAX_ATTEMPTS as u32)
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

    async fn work(&self, alert: SlackAlert, ctx: JobContext) -> Result<(), JobError> {
        let sent_key = sent_key(ctx.id);
        if already_sent(&self.pool, &sent_key).await.map_err(retry_on_db)? {
            tracing::info!(
                alert_job = ctx.id,
                "alert already delivered (the job ran again); not sending it twice"
            );
            return Ok(());
        }
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
        let mut message = message;
        if let Some(at) = alert.at {
            mark_late(&mut message, Utc::now() - at);
        }
        loop {
            self.wait_for_turn(&alert.webhook).await?;
            let response = self.client.post(url.clone()).json(&message).send().await;
            let response = match response {
                // reqwest puts the URL in its errors: it is a secret, take it out.
                Err(e) => return Err(JobError::retry(format!("Slack did not answer: {}", e.without_url()))),
                Ok(response) => response,
            };
            match SlackAnswer::read(response).await {
                SlackAnswer::Delivered => {
                    self.record_sent(&alert, &sent_key, message.get("blocks").is_none()).await;
                    return Ok(());
                }
                SlackAnswer::RateLimited(wait) => return Err(self.rate_limited(&alert.webhook, wait).await),
                SlackAnswer::MessageRefused(reason) => match plain_text(&message) {
                    Some(plain) => {
                        tracing::warn!(webhook = %alert.webhook, %reason, "Slack refused the message; sending it as plain text");
                        message = plain;
                    }
                    None => {
                        return Err(JobError::fail_now(format!(
                            "Slack refused the message, even as plain text: {reason}"
                        )));
                    }
                },
                SlackAnswer::WebhookRefused(reason) => {
                    webhook::mark_broken(&self.pool, &alert.webhook, &reason).await.map_err(retry_on_db)?;
                    tracing::error!(webhook = %alert.webhook, %reason, "Slack refused the webhook; marked broken");
                    return Err(JobError::fail_now(format!("Slack refused the webhook: {reason}")));
                }
                SlackAnswer::Unavailable(reason) => return Err(JobError::retry(reason)),
            }
        }
    }
}

/// The idempotency key recording that alert job `id` was delivered.
fn sent_key(id: backstop::JobId) -> String {
    format!("{ALERT_KIND}:{id}")
}

/// Whether the alert job with this sent key was delivered already.
async fn already_sent(pool: &PgPool, sent_key: &str) -> sqlx::Result<bool> {
    console::idempotency_key_exists(pool, sent_key).await
}

/// What a Slack webhook's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackAnswer {
    /// 2xx.
    Delivered,
    /// 429: wait this long (its `Retry-After`, else 30 s).
    RateLimited(Duration),
    /// 400 about the message, not the webhook (`invalid_blocks`, `invalid_blocks_format`,
    /// `msg_too_long`, `no_text`, `invalid_payload`, ...): the webhook works.
    MessageRefused(String),
    /// The webhook itself is refused (revoked, deleted, its channel archived, or posting
    /// forbidden): nothing sent to it can arrive until someone fixes it.
    WebhookRefused(String),
    /// 5xx or anything else: try again later.
    Unavailable(String),
}

/// Slack's error codes that refuse the webhook rather than the message
/// (api.slack.com/messaging/webhooks#handling_errors); any other 400 is about the message.
const WEBHOOK_ERRORS: [&str; 4] = ["invalid_token", "no_service", "channel_is_archived", "action_prohibited"];

impl SlackAnswer {
    /// Reads a response: its status, and for a refusal the error code Slack puts in the body.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let wait = retry_after(response.headers());
        let body =
            if status.is_success() { String::new() } else { response.text().await.unwrap_or_default() };
        Self::from_parts(status, wait, &body)
    }

    fn from_parts(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Self {
        let reason = || clip(&format!("{status} {}", body.trim()), 300);
        match status {
            s if s.is_success() => Self::Delivered,
            StatusCode::TOO_MANY_REQUESTS => {
                Self::RateLimited(retry_after.unwrap_or(Duration::from_secs(30)).min(MAX_RETRY_AFTER))
            }
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                Self::WebhookRefused(reason())
            }
            StatusCode::BAD_REQUEST if WEBHOOK_ERRORS.contains(&body.trim()) => {
                Self::WebhookRefused(reason())
            }
            StatusCode::BAD_REQUEST => Self::MessageRefused(reason()),
            _ => Self::Unavailable(format!("Slack answered {status}")),
        }
    }
}

/// The message without its blocks: Slack shows the plain `text` fallback every message has.
/// `None` if it has no blocks (it is already plain).
fn plain_text(message: &Value) -> Option<Value> {
    message.get("blocks")?;
    Some(json!({ "text": message.get("text").cloned().unwrap_or_else(|| json!("(alert)")) }))
}

/// `Retry-After` in seconds (Slack sends seconds, never a date).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

impl SlackAlertWorker {
    /// Blocks the webhook for every console until `wait` passes and returns the job's retry.
    async fn rate_limited(&self, webhook: &str, wait: Duration) -> JobError {
        let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        let blocked = console::block_webhook_until(&self.pool, webhook, until).await;
        if let Err(e) = blocked {
            return retry_on_db(e);
        }
        JobError::retry_at(until, format!("Slack rate limit (429): retry after {} s", wait.as_secs()))
    }

    /// The message for `alert`, built from the database as it is now (counts and times are
    /// fresh, not what they were when the job was enqueued). `None`: nothing to say any more.
    async fn message(&self, alert: &SlackAlert) -> Result<Option<Value>, JobError> {
        if alert.reason == "test" {
            return Ok(Some(self.messages.test_alert(alert.requested_by.as_deref().unwrap_or("someone"))));
        }
        if let Some(health) = &alert.queue_health {
            let healthy = match alert.reason.as_str() {
                "queue_unhealthy" => false,
                "queue_healthy" => true,
                other => return Err(JobError::fail_now(format!("unknown queue-health reason {other:?}"))),
            };
            let since = alert.since.unwrap_or_else(Utc::now);
            return match self.messages.queue_health(health, healthy, since) {
                Some(message) => Ok(Some(message)),
                None => Err(JobError::fail_now(format!("unknown queue problem {:?}", health.problem))),
            };
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
            let rest = DigestRest { groups: alert.more_groups, deaths: alert.more_deaths };
            return Ok(Some(self.messages.digest(&lines, rest, since)));
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
        let tokens = console::take_webhook_token(&self.pool, webhook, self.pace.burst, self.pace.per_second)
            .await
            .map_err(retry_on_db)?;
        if tokens >= 0.0 {
            return Ok(());
        }
        let wait = Duration::from_secs_f64(-tokens / self.pace.per_second);
        if wait > MAX_PACE_WAIT {
            // Give the place back and come back later instead of holding a worker slot.
            console::return_webhook_token(&self.pool, webhook).await.map_err(retry_on_db)?;
            let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return Err(JobError::retry_at(at, "waiting for this webhook's rate limit"));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Counts the delivery, writes it to the audit log and claims the alert job's sent key, in
    /// one transaction. Slack has the message: a failure here is logged, never retried (that
    /// would send it twice).
    async fn record_sent(&self, alert: &SlackAlert, sent_key: &str, plain_text: bool) {
        let result = async {
            let mut tx = self.pool.begin().await?;
            backstop::claim_idempotency_key(&mut *tx, sent_key).await?;
            let label = console::count_webhook_sent(&mut *tx, &alert.webhook).await?;
            let target = json!({
                "webhook": label,
                "reason": alert.reason,
                "group_id": alert.group_id,
                "job_id": alert.job_id,
                "groups": alert.groups.len(),
                "plain_text": plain_text,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_sent_late_says_how_late_in_text_and_blocks() {
        let message = || json!({"text": "New failure: charge", "blocks": [{"type": "section"}]});
        let mut on_time = message();
        mark_late(&mut on_time, chrono::Duration::seconds(30));
        assert_eq!(on_time, message());
        let mut late = message();
        mark_late(&mut late, chrono::Duration::minutes(47));
        let note = "(sent late: this happened 47 minutes ago, while no console could send it)";
        assert_eq!(late["text"], format!("New failure: charge {note}"));
        assert_eq!(late["blocks"][0]["elements"][0]["text"], note);
        assert_eq!(late["blocks"].as_array().unwrap().len(), 2);
        assert_eq!(human_age(chrono::Duration::hours(5)), "5 hours");
        assert_eq!(human_age(chrono::Duration::days(3)), "3 days");
    }

    fn answer(status: u16, body: &str) -> SlackAnswer {
        SlackAnswer::from_parts(StatusCode::from_u16(status).unwrap(), None, body)
    }

    #[test]
    fn only_refusals_of_the_webhook_itself_mark_it_broken() {
        for (status, body) in [
            (400, "invalid_token"),
            (400, "no_service"),
            (400, "channel_is_archived"),
            (400, "action_prohibited\n"),
            (403, "invalid_token"),
            (403, ""),
            (404, "no_service"),
            (410, "channel_is_archived"),
        ] {
            assert!(matches!(answer(status, body), SlackAnswer::WebhookRefused(_)), "{status} {body}");
        }
        for body in
            ["invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_payload", ""]
        {
            assert!(matches!(answer(400, body), SlackAnswer::MessageRefused(_)), "400 {body}");
        }
        assert_eq!(answer(200, "ok"), SlackAnswer::Delivered);
        assert_eq!(answer(429, ""), SlackAnswer::RateLimited(Duration::from_secs(30)));
        assert!(matches!(answer(503, ""), SlackAnswer::Unavailable(_)));
    }

    #[test]
    fn plain_text_keeps_the_words_and_drops_the_blocks() {
        let message = json!({"text": "[prod] New failure", "blocks": [{"type": "divider"}]});
        assert_eq!(plain_text(&message), Some(json!({"text": "[prod] New failure"})));
        assert_eq!(plain_text(&json!({"text": "x"})), None, "already plain");
    }
}
