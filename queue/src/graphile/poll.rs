//! Bringing graphile-worker's permanently failed jobs into Backstop's error groups (and so its
//! alerts), with a watermark instead of triggers: each poll reads what failed since the last.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{GraphileSchema, SOURCE};
use crate::Result;
use crate::triage;

/// Failures recorded per poll at most (the next poll continues).
const BATCH: i64 = 500;

/// How old a failure must be before a poll takes it (see the query).
const SETTLE_SECS: f64 = 2.0;

#[derive(sqlx::FromRow)]
struct Failed {
    id: i64,
    task_identifier: String,
    queue_name: Option<String>,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
}

/// Records the jobs that failed for good since the last call in their error groups, in one
/// transaction with the watermark (two consoles polling at once take turns; none is counted
/// twice or missed). A job retried and failing for good again is a new arrival. Returns how
/// many were recorded. Needs the private tables (a supported, readable schema); otherwise
/// records nothing.
pub async fn record_failures(pool: &PgPool, schema: &GraphileSchema) -> Result<u64> {
    if !schema.reads_private_tables() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("insert into backstop.source_watermarks (source) values ($1) on conflict do nothing")
        .bind(SOURCE)
        .execute(&mut *tx)
        .await?;
    let (seen_at, seen_id): (DateTime<Utc>, i64) = sqlx::query_as(
        "select seen_at, seen_id from backstop.source_watermarks where source = $1 for update",
    )
    .bind(SOURCE)
    .fetch_one(&mut *tx)
    .await?;
    // One short read of their table; graphile-worker sets updated_at on every failure. Rows
    // younger than SETTLE are left for the next poll: updated_at is taken when the failing
    // statement starts, so a failure committing just after this read could otherwise carry a
    // time behind the watermark and never be seen. graphile-worker records a failure in one
    // short statement, well inside SETTLE.
    let failed: Vec<Failed> = sqlx::query_as(
        "select j.id, t.identifier as task_identifier, q.queue_name, j.last_error, j.updated_at
         from graphile_worker._private_jobs j
         join graphile_worker._private_tasks t on t.id = j.task_id
         left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
         where j.attempts >= j.max_attempts and j.locked_at is null
           and (j.updated_at, j.id) > ($1, $2)
           and j.updated_at < now() - make_interval(secs => $4)
         order by j.updated_at, j.id
         limit $3",
    )
    .bind(seen_at)
    .bind(seen_id)
    .bind(BATCH)
    .bind(SETTLE_SECS)
    .fetch_all(&mut *tx)
    .await?;
    for job in &failed {
        let error = job.last_error.as_deref().unwrap_or("(no error recorded)");
        let queue = job.queue_name.as_deref().unwrap_or("default");
        let arrival =
            triage::record_arrival(&mut tx, SOURCE, &job.task_identifier, queue, error, job.id).await?;
        sqlx::query(
            "insert into backstop.source_job_groups (source, job_id, group_id) values ($1, $2, $3)
             on conflict (source, job_id) do update set group_id = excluded.group_id",
        )
        .bind(SOURCE)
        .bind(job.id)
        .bind(arrival.group_id)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(last) = failed.last() {
        sqlx::query("update backstop.source_watermarks set seen_at = $2, seen_id = $3 where source = $1")
            .bind(SOURCE)
            .bind(last.updated_at)
            .bind(last.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(failed.len() as u64)
}
