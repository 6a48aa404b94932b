//! The digest: every few minutes, one message per webhook with the further deaths in groups
//! that already alerted, so a storm of ten thousand deaths is a handful of messages.

use std::time::Duration;

use backstop::triage::{ALERT_QUEUE, DIGEST_KIND, console};
use backstop::{Job, JobContext, JobError, NewJob, Worker};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::deliver::{DigestEntry, SlackAlert};
use super::message::DIGEST_GROUPS_LISTED;

/// The cron job that builds digests (enqueued by the runner's cron, once per tick however many
/// consoles run).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlackDigest {}

impl Job for SlackDigest {
    const KIND: &'static str = DIGEST_KIND;
    const QUEUE: &'static str = ALERT_QUEUE;
}

#[derive(Debug, Clone)]
pub struct SlackDigestWorker {
    pub pool: PgPool,
    /// How often digests go out: the window each one covers.
    pub period: Duration,
}

impl Worker for SlackDigestWorker {
    type Job = SlackDigest;

    async fn work(&self, _: SlackDigest, _: JobContext) -> Result<(), JobError> {
        let since = Utc::now() - chrono::Duration::from_std(self.period).unwrap_or_default();
        let enqueued = enqueue_digests(&self.pool, since)
            .await
            .map_err(|e| JobError::retry(format!("database: {e}")))?;
        tracing::debug!(enqueued, "digest alerts enqueued");
        Ok(())
    }
}

/// Enqueues one digest alert per webhook covering the open groups with arrivals not yet
/// reported, and marks those arrivals reported, in one transaction. Returns how many alerts
/// were enqueued.
pub async fn enqueue_digests(pool: &PgPool, since: chrono::DateTime<Utc>) -> Result<usize, backstop::Error> {
    let mut tx = pool.begin().await?;
    // Locked so a death recorded meanwhile waits and lands in the next digest, not in neither.
    let due = console::lock_undigested_groups(&mut tx).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let webhooks = backstop::triage::alert_webhooks(&mut *tx).await?;
    let mut alerts = Vec::new();
    for webhook in webhooks.into_iter().filter(|w| w.active && w.broken_at.is_none()) {
        let routed =
            |names: &Option<Vec<String>>, name: &String| names.as_ref().is_none_or(|n| n.contains(name));
        let mut groups: Vec<DigestEntry> = due
            .iter()
            .filter(|(_, kind, queue, _)| routed(&webhook.queues, queue) && routed(&webhook.kinds, kind))
            .map(|(group_id, _, _, count)| DigestEntry { group_id: *group_id, count: *count })
            .collect();
        // The largest groups are listed (`due` is largest first); the rest are counted, so the
        // alert job stays far under the payload limit with thousands of groups.
        let unlisted = groups.split_off(groups.len().min(DIGEST_GROUPS_LISTED));
        if !groups.is_empty() {
            let alert = SlackAlert {
                webhook: webhook.id,
                reason: "digest".into(),
                group_id: None,
                job_id: None,
                groups,
                since: Some(since),
                requested_by: None,
                at: None,
                more_groups: unlisted.len() as i64,
                more_deaths: unlisted.iter().map(|entry| entry.count).sum(),
                queue_health: None,
            };
            alerts.push(NewJob::new(&alert));
        }
    }
    let count = alerts.len();
    backstop::enqueue_many(&mut *tx, alerts).await?;
    let ids: Vec<i64> = due.iter().map(|(id, ..)| *id).collect();
    console::mark_groups_digested(&mut *tx, &ids).await?;
    tx.commit().await?;
    Ok(count)
}
