//! Recording a failed attempt: retry later, or move to the dead-letter table in the same
//! transaction. Used by the executor, by the rescue of crashed workers' jobs, and on shutdown.
//!
//! Recording must never leave a job held by a live worker. The message is cleaned on the way
//! in ([`StoredText`]: no NUL, at most 16 KiB). If PostgreSQL still refuses the statement (a
//! value, constraint or trigger it will refuse again however often it is retried), the failure
//! is recorded once more with a plain message that names the refusal; if that is refused too,
//! the job is handed back unrecorded, its attempt uncounted, to run again after its backoff
//! (see [`record_or_hand_back`]). Only a database that cannot be reached leaves the outcome
//! pending, for the heartbeat to record later.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::admin::DeadJob;
use crate::job::Decision;
use crate::text::StoredText;
use crate::{sql, triage};

/// What to do with one failed attempt.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub job_id: i64,
    pub worker_id: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub message: String,
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
    /// The database refused to record the failure even with a plain message: the job was
    /// unlocked, its attempt given back, to run again at this time.
    HandedBack(DateTime<Utc>),
}

pub(crate) async fn record_failure(conn: &mut PgConnection, failure: &Failure) -> sqlx::Result<Recorded> {
    let message = StoredText::new(&failure.message);
    let entry = serde_json::json!({
        "at": Utc::now(),
        "attempt": failure.attempt,
        "error": message.as_str(),
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
            Some(&failure.worker_id),
            &message,
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
                triage::record_dead_job_arrival(conn, &dead.kind, &dead.queue, message.as_str(), dead.id)
                    .await?;
            dead.group_id = Some(arrival.group_id);
        }
        return Ok(Recorded::Dead(Box::new(dead)));
    }
    let ours =
        sql::job_retry_later(conn, failure.job_id, &failure.worker_id, failure.next_run(), &message, &entry)
            .await?;
    Ok(if ours { Recorded::RetryAt(failure.next_run()) } else { Recorded::NotOurs })
}

impl Failure {
    /// When the job runs again if it is not dead.
    fn next_run(&self) -> DateTime<Utc> {
        match self.decision {
            Decision::RetryAt(at) => at,
            _ => self.backoff_until,
        }
    }
}

/// Records `failure`, each try in its own transaction, falling back as the module says. `Err`
/// only when the database could not be reached (or asked us to try again): worth retrying
/// later as it is.
pub(crate) async fn record_or_hand_back(pool: &PgPool, failure: &Failure) -> sqlx::Result<Recorded> {
    let refusal = match record_in_transaction(pool, failure).await {
        Err(e) if is_refusal(&e) => e,
        other => return other,
    };
    tracing::error!(job_id = failure.job_id, error = %refusal, "the database refused to record a job failure; recording a plain message instead");
    let plain = Failure {
        message: format!(
            "this attempt failed, but the database refused to store its error ({}); see the worker's log",
            refusal
                .as_database_error()
                .and_then(|e| e.code())
                .map_or_else(|| "no code".into(), |c| format!("SQLSTATE {c}"))
        ),
        ..failure.clone()
    };
    let refusal = match record_in_transaction(pool, &plain).await {
        Err(e) if is_refusal(&e) => e,
        other => return other,
    };
    let run_at = failure.next_run();
    tracing::error!(job_id = failure.job_id, error = %refusal, %run_at, "the database refused to record a job failure twice; handing the job back unrecorded");
    let mut conn = pool.acquire().await?;
    let released = sql::job_release_unrecorded(&mut conn, failure.job_id, &failure.worker_id, run_at).await?;
    Ok(if released { Recorded::HandedBack(run_at) } else { Recorded::NotOurs })
}

async fn record_in_transaction(pool: &PgPool, failure: &Failure) -> sqlx::Result<Recorded> {
    let mut tx = pool.begin().await?;
    let recorded = record_failure(&mut tx, failure).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Whether PostgreSQL refused the statement itself (it would refuse it again), as opposed to
/// a connection lost, a server shutting down, or a deadlock or serialization failure (SQLSTATE
/// classes 08, 40, 53, 57, 58), which are worth retrying as they are.
fn is_refusal(error: &sqlx::Error) -> bool {
    let Some(code) = error.as_database_error().and_then(|e| e.code()) else { return false };
    !["08", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class))
}
