//! Background duties: heartbeat, rescuing crashed workers' jobs, cleanup, and handing jobs
//! back on shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::buffer::Buffer;
use super::index_upkeep;
use super::{Failure, Shared, record_failure, record_or_hand_back, sleep_or_shutdown};
use crate::duration::to_chrono;
use crate::job::Decision;
use crate::sql;

/// Keys and counter rows deleted per statement.
const CLEANUP_BATCH: i64 = 10_000;

/// Says this process is alive, then takes back jobs from processes that stopped saying so.
pub(super) async fn heartbeat(
    shared: Arc<Shared>,
    queues: Vec<(String, usize)>,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = beat_and_rescue(&shared, &queues).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        if !sleep_or_shutdown(shared.config.heartbeat_interval, &shutdown).await {
            return;
        }
    }
}

async fn beat_and_rescue(shared: &Shared, queues: &[(String, usize)]) -> sqlx::Result<()> {
    let mut conn = shared.ack_pool.acquire().await?;
    let timeout = shared.config.heartbeat_timeout.as_secs_f64();
    sql::worker_heartbeat(&mut conn, &shared.config.worker_id, queues, timeout).await?;
    drop(conn);
    record_unrecorded(shared).await;
    let rescued =
        rescue_stale_jobs(&shared.pool, shared.config.heartbeat_timeout, None, Owners::Silent).await?;
    if rescued > 0 {
        tracing::warn!(rescued, "took back jobs from worker processes that stopped heartbeating");
    }
    Ok(())
}

/// Records the failures executors could not record while the database was unreachable; those
/// that still fail wait for the next beat.
pub(super) async fn record_unrecorded(shared: &Shared) {
    let pending: Vec<Failure> = std::mem::take(&mut *shared.unrecorded.lock().expect("unrecorded lock"));
    for failure in pending {
        match record_or_hand_back(&shared.pool, &failure).await {
            Ok(recorded) => {
                shared.held.remove([failure.job_id]);
                super::executor::log_recorded(&recorded, &failure.message);
            }
            Err(e) => {
                tracing::warn!(job_id = failure.job_id, error = %e, "still cannot record a job failure");
                shared.unrecorded.lock().expect("unrecorded lock").push(failure);
            }
        }
    }
}

/// Whose locks a rescue takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    /// Processes whose row says they stopped heartbeating: every heartbeat, as it is cheap.
    Silent,
    /// Those, and processes that left no row: once a maintenance interval (see
    /// `sql::job_find_stale_ownerless`).
    SilentOrGone,
}

/// Jobs locked by a process that has not heartbeated within its own timeout (`timeout`, the
/// rescuer's, for a process that left no row) count a failed attempt and run again now, or
/// move to the dead-letter table if that was their last. `now` is for tests (`None`: the
/// database's clock).
pub(crate) async fn rescue_stale_jobs(
    pool: &PgPool,
    timeout: Duration,
    now: Option<DateTime<Utc>>,
    owners: Owners,
) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let rescued = rescue_in(&mut tx, timeout, now, owners).await?;
    tx.commit().await?;
    Ok(rescued)
}

/// [`rescue_stale_jobs`] in the caller's transaction.
async fn rescue_in(
    tx: &mut PgConnection,
    timeout: Duration,
    now: Option<DateTime<Utc>>,
    owners: Owners,
) -> sqlx::Result<usize> {
    let mut stale = sql::job_find_stale_of_silent_workers(tx, now).await?;
    if owners == Owners::SilentOrGone {
        stale.extend(sql::job_find_stale_ownerless(tx, timeout.as_secs_f64(), now).await?);
    }
    for job in &stale {
        let owner_timeout = Duration::try_from_secs_f64(job.timeout_secs).unwrap_or(timeout);
        // Which process it was is in the attempt's history (`worker`), not in the message: the
        // message groups the deaths of every process into one error group (one alert).
        let message = format!(
            "the worker process running it stopped heartbeating for over {owner_timeout:?} during attempt {} (crashed, killed, or lost its database connection)",
            job.attempts
        );
        let failure = Failure {
            job_id: job.id,
            worker_id: job.locked_by.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            message,
            decision: Decision::Retry,
            backoff_until: Utc::now(),
        };
        record_failure(tx, &failure).await?;
    }
    Ok(stale.len())
}

/// Deletes old idempotency keys and counters and rebuilds outgrown search indexes, once
/// across all processes (advisory locks).
pub(super) async fn cleanup(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = cleanup_once(&shared).await {
            tracing::warn!(error = %e, "maintenance failed");
        }
        if let Err(e) = index_upkeep::rebuild_outgrown(&shared.pool, index_upkeep::REBUILD_FROM_BYTES).await {
            tracing::warn!(error = %e, "rebuilding outgrown search indexes failed");
        }
        if !sleep_or_shutdown(shared.config.maintenance_interval, &shutdown).await {
            return;
        }
    }
}

pub(crate) async fn cleanup_once(shared: &Shared) -> sqlx::Result<()> {
    let key_cutoff = Utc::now() - to_chrono(shared.config.idempotency_key_max_age);
    let stats_cutoff = Utc::now() - to_chrono(shared.config.stats_max_age);
    loop {
        let mut tx = shared.pool.begin().await?;
        if !sql::maintenance_try_lock(&mut tx).await? {
            return Ok(()); // another process is doing it
        }
        let deleted = sql::idempotency_key_delete_older_than(&mut tx, key_cutoff, CLEANUP_BATCH).await?;
        tx.commit().await?;
        if deleted < u64::try_from(CLEANUP_BATCH).unwrap_or(u64::MAX) {
            break;
        }
    }
    let mut tx = shared.pool.begin().await?;
    if sql::maintenance_try_lock(&mut tx).await? {
        sql::job_stats_delete_older_than(&mut tx, stats_cutoff).await?;
        sql::worker_delete_stale(&mut tx).await?;
        // Here rather than at every heartbeat, and one process at a time: it reads every lock.
        let rescued = rescue_in(&mut tx, shared.config.heartbeat_timeout, None, Owners::SilentOrGone).await?;
        if rescued > 0 {
            tracing::warn!(rescued, "took back jobs from worker processes that left no row");
        }
    }
    tx.commit().await
}

/// After a forced shutdown: jobs still running were interrupted. Their attempt counts, and
/// they run again now.
pub(super) async fn hand_back_interrupted(shared: &Shared) {
    let interrupted: Vec<(i64, (i32, i32))> =
        shared.in_flight.lock().expect("in-flight lock").drain().collect();
    for (id, (attempt, max_attempts)) in interrupted {
        let failure = Failure {
            job_id: id,
            worker_id: shared.config.worker_id.clone(),
            attempt,
            max_attempts,
            message: "interrupted: the worker shut down before the job finished".to_owned(),
            decision: Decision::Retry,
            backoff_until: Utc::now(),
        };
        match record_or_hand_back(&shared.pool, &failure).await {
            Ok(_) => shared.held.remove([id]),
            Err(e) => {
                tracing::warn!(job_id = id, error = %e, "could not hand back an interrupted job; the heartbeat rescue will")
            }
        }
    }
}

/// Claimed but never started: give them back with their attempt uncounted.
pub(super) async fn release_buffered(shared: &Shared, buffers: Vec<Arc<Buffer>>) {
    let mut ids = Vec::new();
    for buffer in buffers {
        ids.extend(buffer.close().into_iter().map(|job| job.id));
    }
    if ids.is_empty() {
        return;
    }
    let result = match shared.ack_pool.acquire().await {
        Ok(mut conn) => sql::job_release_unstarted(&mut conn, &ids, &shared.config.worker_id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(released) => {
            shared.held.remove(ids);
            tracing::info!(released, "handed back jobs claimed but not started");
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = ids.len(), "could not hand back buffered jobs; the heartbeat rescue will")
        }
    }
}
