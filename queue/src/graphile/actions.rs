//! Acting on graphile-worker's jobs through its own admin functions, which skip jobs a worker
//! has locked; the caller reports the difference as skipped.

use sqlx::{PgConnection, PgPool};

use super::{GraphileSchema, GraphileSearch, search};
use crate::admin::{BulkAudit, BulkOutcome};
use crate::sql;
use crate::{Error, Result};

/// What to do to graphile-worker jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GraphileAction {
    /// `reschedule_jobs(ids, run_at := now(), attempts := 0)`, then wake its workers.
    Retry,
    /// `permanently_fail_jobs(ids, reason)`: no more attempts.
    Discard,
    /// `complete_jobs(ids)`: the row is deleted, as when a job succeeds.
    Delete,
}

/// Applies `action` to the jobs `ids` and returns how many changed (locked jobs are skipped).
/// Call it in a transaction: a retry's `jobs:insert` notification is sent in the same
/// transaction, so graphile-worker's workers wake exactly when the retry commits.
pub async fn act_on_graphile_jobs(
    conn: &mut PgConnection,
    schema: &GraphileSchema,
    action: GraphileAction,
    ids: &[i64],
    actor: &str,
) -> Result<u64> {
    if !schema.supported {
        return Err(Error::InvalidOption(format!(
            "Backstop does not know this graphile-worker schema ({}); it can only read it",
            schema.version_label()
        )));
    }
    if !schema.payloads_readable {
        // Its functions would run as this role and, under row-level security, change nothing.
        return Err(Error::InvalidOption(
            "this database role cannot see graphile-worker's private job rows, so it cannot change them"
                .into(),
        ));
    }
    let changed: i64 = match action {
        GraphileAction::Retry => sql::graphile_job_reschedule_now(&mut *conn, ids).await?,
        // Recorded as seen by the failure poller, in this transaction: a discard (or a
        // cancel) is the operator's decision, not a failure to group and alert.
        GraphileAction::Discard => {
            let reason = format!("Discarded in the Backstop console by {actor}");
            sql::graphile_job_fail_many(&mut *conn, ids, &reason, super::SOURCE).await?
        }
        GraphileAction::Delete => sql::graphile_job_complete_many(&mut *conn, ids).await?,
    };
    if action == GraphileAction::Retry && changed > 0 {
        sql::graphile_jobs_insert_notify(&mut *conn, changed as i32).await?;
    }
    Ok(changed.max(0) as u64)
}

/// One step of a bulk action on everything a filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphileStep {
    /// Rows matched and changed in this step.
    pub outcome: BulkOutcome,
    /// Where the next step starts (`before` id), or `None`: done.
    pub next: Option<i64>,
}

/// Rows per transaction within a step.
const PAGE: i64 = 1_000;

/// Re-runs the filter from `before` (exclusive, newest first) and applies `action` page by
/// page, each page in its own short transaction with its counts added to `audit`, until about
/// `budget` rows are done.
#[expect(clippy::too_many_arguments, reason = "the search, its cursor and budget, who, and the audit")]
pub async fn act_on_graphile_matching_step(
    pool: &PgPool,
    schema: &GraphileSchema,
    action: GraphileAction,
    filter: &GraphileSearch,
    actor: &str,
    mut before: Option<i64>,
    budget: u64,
    audit: Option<&BulkAudit>,
) -> Result<GraphileStep> {
    let mut outcome = BulkOutcome::default();
    while outcome.matched < budget {
        let page = search(pool, schema, filter, before, PAGE).await?;
        let Some(last) = page.last() else {
            crate::admin::close_bulk_audit(pool, audit).await?;
            return Ok(GraphileStep { outcome, next: None });
        };
        before = Some(last.id);
        let ids: Vec<i64> = page.iter().map(|job| job.id).collect();
        let done = (page.len() as i64) < PAGE;
        let mut tx = pool.begin().await?;
        let changed = act_on_graphile_jobs(&mut tx, schema, action, &ids, actor).await?;
        if let Some(audit) = audit {
            audit.add_page(&mut tx, ids.len() as u64, changed, done).await?;
        }
        tx.commit().await?;
        outcome.add(BulkOutcome { matched: ids.len() as u64, changed, key_taken: 0 });
        if done {
            return Ok(GraphileStep { outcome, next: None });
        }
    }
    Ok(GraphileStep { outcome, next: before })
}
