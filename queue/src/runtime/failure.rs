//! Recording a failed attempt: retry later, or move to the dead-letter table in the same
//! transaction. Used by the executor and by the rescue of crashed workers' jobs.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::admin::DeadJob;
use crate::job::Decision;
use crate::{sql, triage};

/// Backstop's own dead jobs, as error groups name their source.
const SOURCE: &str = "backstop";

/// What to do with one failed attempt.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    pub job_id: i64,
    pub worker_id: &'a str,
    pub attempt: i32,
    pub max_attempts: i32,
    pub message: &'a str,
    pub decision: Decision,
    /// When the next attempt runs if the decision is a plain retry.
    pub backoff_until: DateTime<Utc>,
}

/// What recording did.
#[derive(Debug)]
pub(crate) enum Recorded {
    RetryAt(DateTime<Utc>),
    Dead(Box<DeadJob>),
    /// The job was no longer locked by this worker (rescued and taken by another): nothing
    /// was written, the other run owns it.
    NotOurs,
}

pub(crate) async fn record_failure(conn: &mut PgConnection, failure: &Failure<'_>) -> sqlx::Result<Recorded> {
    let entry = serde_json::json!({
        "at": Utc::now(),
        "attempt": failure.attempt,
        "error": failure.message,
        "worker": failure.worker_id,
    });
    let out_of_attempts = failure.attempt >= failure.max_attempts;
    let dead_reason = match &failure.decision {
        Decision::Cancel => Some("cancelled"),
        Decision::FailNow => Some("failed_now"),
        Decision::Retry | Decision::RetryAt(_) if out_of_attempts => Some("exhausted"),
        Decision::Retry | Decision::RetryAt(_) => None,
    };
    if let Some(reason) = dead_reason {
        let dead = sql::job_move_to_dead(
            conn,
            failure.job_id,
            Some(failure.worker_id),
            failure.message,
            Some(&entry),
            reason,
        )
        .await?;
        let Some(mut dead) = dead else {
            return Ok(Recorded::NotOurs);
        };
        // A failure (not a cancellation) joins its error group, in this same transaction.
        if reason != "cancelled" {
            let arrival =
                triage::record_arrival(conn, SOURCE, &dead.kind, &dead.queue, failure.message, dead.id)
                    .await?;
            sql::dead_job_set_group(conn, dead.id, arrival.group_id).await?;
            dead.group_id = Some(arrival.group_id);
        }
        return Ok(Recorded::Dead(Box::new(dead)));
    }
    let run_at = match failure.decision {
        Decision::RetryAt(at) => at,
        _ => failure.backoff_until,
    };
    let ours = sql::job_retry_later(conn, failure.job_id, failure.worker_id, run_at, failure.message, &entry)
        .await?;
    Ok(if ours { Recorded::RetryAt(run_at) } else { Recorded::NotOurs })
}
