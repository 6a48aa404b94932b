//! Who did what to which jobs: every operator action, with how many rows it changed.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::{Result, sql};

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

/// Records an action. Call it in the same transaction as the action itself, so the log never
/// misses an action that happened nor shows one that rolled back.
pub async fn record_action<'e, E: PgExecutor<'e>>(
    executor: E,
    actor: &str,
    action: &str,
    target: &serde_json::Value,
    requested: u64,
    changed: u64,
) -> Result<i64> {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(sql::audit_insert(executor, actor, action, target, clamp(requested), clamp(changed)).await?)
}

/// Adds the rows a later step of the same bulk action asked for and changed to its entry, so a
/// bulk action done in steps is one entry. Only `actor`'s own entries can grow. Returns whether
/// the entry was found.
pub async fn add_to_action<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    actor: &str,
    requested: u64,
    changed: u64,
) -> Result<bool> {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(sql::audit_add(executor, id, actor, clamp(requested), clamp(changed)).await?)
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's entries (`slack` for alerts sent).
    pub actor: Option<String>,
    /// Only this action (`retry`, `alert_sent`, ...).
    pub action: Option<String>,
}

/// The log, newest first, one keyset page at a time (pass the last id as `before`).
pub async fn audit_log<'e, E: PgExecutor<'e>>(
    executor: E,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    Ok(sql::audit_list(
        executor,
        filter.actor.as_deref(),
        filter.action.as_deref(),
        before,
        limit.clamp(1, 1000),
    )
    .await?)
}
