//! The rows Backstop's tables give back, as the admin API hands them out: defined here, apart
//! from both the statements that read them (`sql`) and the functions that return them
//! (`admin`), so neither module needs the other's types. `admin` re-exports every one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::job::JobId;
use crate::state::JobState;

mod readable_json;

pub use readable_json::UNREADABLE_PAYLOAD_KEY;
#[doc(hidden)]
pub use readable_json::{ReadableJson, ReadableJsonOrNull};

/// One failed attempt, as stored in a job's error history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptError {
    /// When the attempt failed.
    pub at: DateTime<Utc>,
    /// Which attempt it was (1-based).
    pub attempt: i32,
    /// The error message.
    pub error: String,
    /// The worker process that ran it.
    pub worker: String,
}

/// A live job: waiting, scheduled, running or retrying.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Its arguments (a marker object under [`UNREADABLE_PAYLOAD_KEY`] if serde_json cannot
    /// read what is stored: nested deeper than 127 levels, or a number beyond `f64`).
    #[sqlx(try_from = "ReadableJson")]
    pub payload: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    /// Attempts started so far.
    pub attempts: i32,
    /// Attempts allowed in all.
    pub max_attempts: i32,
    /// Every failed attempt, oldest first.
    pub errors: Json<Vec<AttemptError>>,
    /// The newest error message.
    pub last_error: Option<String>,
    /// The unique key, if any.
    pub unique_key: Option<String>,
    /// The worker process running it, if running.
    pub locked_by: Option<String>,
    /// When that worker took it.
    pub locked_at: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
}

impl JobRecord {
    /// The job's state at `now`. The same rule in SQL is `sql::live_state_is!`; a test checks
    /// they agree.
    pub fn state(&self, now: DateTime<Utc>) -> JobState {
        if self.locked_by.is_some() {
            JobState::Running
        } else if self.attempts > 0 {
            JobState::Retrying
        } else if self.run_at > now {
            JobState::Scheduled
        } else {
            JobState::Queued
        }
    }
}

/// A job in the dead-letter table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadJob {
    /// The id it had while live (kept when retried).
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Its arguments (a marker object under [`UNREADABLE_PAYLOAD_KEY`] if serde_json cannot
    /// read what is stored: nested deeper than 127 levels, or a number beyond `f64`).
    #[sqlx(try_from = "ReadableJson")]
    pub payload: serde_json::Value,
    /// Its priority.
    pub priority: i16,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts it was allowed.
    pub max_attempts: i32,
    /// Every failed attempt, oldest first.
    pub errors: Json<Vec<AttemptError>>,
    /// The final error message.
    pub last_error: Option<String>,
    /// Its unique key, if any.
    pub unique_key: Option<String>,
    /// When it was first enqueued.
    pub created_at: DateTime<Utc>,
    /// When it moved to the dead-letter table.
    pub died_at: DateTime<Utc>,
    /// `exhausted`, `failed_now` or `cancelled`.
    pub reason: String,
    /// When an operator discarded it, if they did.
    pub discarded_at: Option<DateTime<Utc>>,
    /// Its error group (see [`crate::triage`]); none for cancellations and for jobs that died
    /// before error groups existed.
    pub group_id: Option<i64>,
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the console user's name.
    pub actor: String,
    /// What: `retry`, `discard`, `delete`, `cancel`, `run_now`, `pause`, `resume`,
    /// `resolve_group`, `alert_sent`, ...
    pub action: String,
    /// On what: ids, a queue, or the filter that was re-run.
    pub target: serde_json::Value,
    /// Rows the action was asked to change.
    pub requested: i64,
    /// Rows it changed.
    pub changed: i64,
}

/// How many jobs a queue holds in each state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueCounts {
    /// The queue.
    pub queue: String,
    /// Waiting for their `run_at`, never tried.
    pub scheduled: i64,
    /// Ready to run now.
    pub queued: i64,
    /// Held by a worker.
    pub running: i64,
    /// Failed at least once, waiting for the next attempt.
    pub retrying: i64,
    /// In the dead-letter table, not discarded.
    pub dead: i64,
    /// When the longest-waiting ready job became ready: how far behind the queue is.
    pub oldest_queued: Option<DateTime<Utc>>,
    /// Workers do not claim from it.
    pub paused: bool,
    /// Worker processes serving it, seen in the last minute.
    pub workers: i64,
    /// How many of its jobs those processes run at once, together.
    pub concurrency: i64,
    /// `false` when the counts are estimates from a sample (tables over
    /// [`EXACT_COUNT_LIMIT`](crate::admin::EXACT_COUNT_LIMIT) rows).
    pub exact: bool,
}

/// One queue as a health check sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueHealth {
    /// The queue.
    pub queue: String,
    /// When the job that has waited longest became ready to run (its `run_at`, for a retry the
    /// time its backoff ended); `None` if nothing is ready and unclaimed.
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// Jobs ready and unclaimed, counted up to [`WAITING_COUNT_CAP`](crate::admin::WAITING_COUNT_CAP).
    pub waiting: i64,
    /// Worker processes serving the queue, seen alive in the last minute (or their own
    /// heartbeat timeout, if longer).
    pub workers: i64,
    /// An operator paused it: its jobs wait on purpose.
    pub paused: bool,
    /// Jobs moved to the dead-letter table in the window the reading was asked for.
    pub dead_recent: i64,
    /// The usual number of deaths in a window that long: the average over the 24 hours before
    /// it (or as much of them as the counters cover).
    pub dead_usual: f64,
    /// The database's clock when it read this.
    pub checked_at: DateTime<Utc>,
}

impl QueueHealth {
    /// How long its oldest ready job has waited, at the time of the reading.
    pub fn oldest_wait(&self) -> Option<Duration> {
        let oldest = self.oldest_waiting?;
        Some((self.checked_at - oldest).to_std().unwrap_or_default())
    }
}

/// A problem a queue has, from the check that first saw it until one sees it gone.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HealthAlert {
    /// The queue.
    pub queue: String,
    /// What is wrong: `falling_behind`, `no_workers` or `dead_spike`.
    pub problem: String,
    /// The first check that saw it.
    pub seen_at: DateTime<Utc>,
    /// When it was announced; `None` while it has not lasted long enough to be.
    pub alerted_at: Option<DateTime<Utc>>,
    /// What the check measured when it announced it.
    pub detail: Json<Value>,
}
