//! Queue health for alerting: a reading of every queue ([`queue_health`]) and the rows that
//! record which problems are open ([`HealthAlert`]), so that an alert and its all-clear are
//! each sent once however many processes check.
//!
//! The reading never scans the jobs table: the oldest ready job per queue comes from the claim
//! index (one entry per queue and priority), the waiting count stops at a cap, and deaths come
//! from the per-minute counters (`backstop.job_stats`).

use std::time::Duration;

use serde_json::Value;
use sqlx::{Acquire, PgExecutor, Postgres};

use crate::rows::{HealthAlert, QueueHealth};
use crate::{Result, sql};

/// [`QueueHealth::waiting`] counts up to this many jobs.
pub const WAITING_COUNT_CAP: i64 = 10_000;

/// Every queue that has unclaimed jobs, live workers, deaths in the last day, or an open
/// [`HealthAlert`], with deaths counted over the last `dead_window`.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// use std::time::Duration;
///
/// for queue in backstop::admin::queue_health(&pool, Duration::from_secs(600)).await? {
///     if queue.waiting > 0 && queue.workers == 0 && !queue.paused {
///         println!("{}: {} jobs wait and nothing serves it", queue.queue, queue.waiting);
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn queue_health<'c, A: Acquire<'c, Database = Postgres>>(
    conn: A,
    dead_window: Duration,
) -> Result<Vec<QueueHealth>> {
    let window = dead_window.as_secs_f64().max(60.0);
    Ok(sql::queue_health(conn, window, WAITING_COUNT_CAP).await?)
}

/// How long the oldest open transaction in this database has been holding back cleanup, if one
/// is (another session's transaction with an id or a snapshot; idle sessions hold none).
///
/// A transaction left open (a forgotten `BEGIN` in psql, a long report, a stuck migration)
/// keeps every row and index entry deleted after it started. Claims then walk past the entries
/// of every job claimed since, and measured here a backlog drained at less than half its rate
/// (16,000 instead of 40,000+ jobs/s). Every queue on PostgreSQL shares this; this says when it
/// is happening. Roles without `pg_read_all_stats` see only their own sessions.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// if let Some(age) = backstop::admin::oldest_transaction_age(&pool).await? {
///     if age.as_secs() > 600 {
///         eprintln!("a transaction has been open for {} s: claims slow down until it ends", age.as_secs());
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn oldest_transaction_age<'e, E: PgExecutor<'e>>(executor: E) -> Result<Option<Duration>> {
    let seconds = sql::oldest_transaction_seconds(executor).await?;
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// The open problems, by queue.
pub async fn health_alerts<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<HealthAlert>> {
    Ok(sql::health_alert_list(executor).await?)
}

/// Records that a check sees `problem` on `queue` and returns its row, new or from an earlier
/// check. The row stays locked until the caller's transaction ends, so concurrent checks of
/// the same problem take turns.
pub async fn health_alert_seen<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
) -> Result<HealthAlert> {
    Ok(sql::health_alert_seen(executor, queue, problem).await?)
}

/// Marks an open problem announced, with what was measured. `true` for the one caller that
/// should send the alert; `false` if it had been announced already.
pub async fn health_alert_announce<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
    detail: &Value,
) -> Result<bool> {
    Ok(sql::health_alert_announce(executor, queue, problem, detail).await?)
}

/// Closes a problem. The row, for the one caller that closed it (it sends the all-clear if the
/// problem had been announced); `None` if it was not open.
pub async fn health_alert_clear<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
) -> Result<Option<HealthAlert>> {
    Ok(sql::health_alert_clear(executor, queue, problem).await?)
}
