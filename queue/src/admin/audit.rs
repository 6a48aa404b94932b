//! Who did what to which jobs: every operator action, with how many rows it changed.

use sqlx::PgExecutor;

use crate::rows::AuditEntry;
use crate::{Result, sql};

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

/// The audit entry of a bulk action done in steps (by a console, over requests): created by
/// [`BulkAudit::start`], bound to its actor, action and target (the filter). Each page of each
/// step adds its counts in the page's own transaction, so whatever committed is audited even
/// when a later page fails; the last page closes it, and a closed entry cannot grow.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkAudit {
    /// The entry's id: what a client passes back to continue.
    pub id: i64,
    /// Who acts.
    pub actor: String,
    /// What they do (`retry`, `delete`, ...).
    pub action: String,
    /// On what: the filter that is re-run at each step.
    pub target: serde_json::Value,
}

impl BulkAudit {
    /// Opens a new entry, in progress, nothing counted yet.
    pub async fn start<'e, E: PgExecutor<'e>>(
        executor: E,
        actor: &str,
        action: &str,
        target: &serde_json::Value,
    ) -> Result<Self> {
        let id = sql::audit_insert_in_progress(executor, actor, action, target).await?;
        Ok(BulkAudit { id, actor: actor.to_owned(), action: action.to_owned(), target: target.clone() })
    }

    /// The entry `id`, if it is in progress and records this same actor, action and target:
    /// what a client asks to continue is checked, never trusted. `None` otherwise.
    pub async fn resume<'e, E: PgExecutor<'e>>(
        executor: E,
        id: i64,
        actor: &str,
        action: &str,
        target: &serde_json::Value,
    ) -> Result<Option<Self>> {
        let open = sql::audit_in_progress(executor, id, actor, action, target).await?;
        Ok(open.then(|| BulkAudit {
            id,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.clone(),
        }))
    }

    /// Adds a page's counts, in the transaction that did the page, and closes the entry when
    /// `done`. Fails, so the caller's transaction rolls back, if the entry was closed meanwhile.
    pub(crate) async fn add_page(
        &self,
        conn: &mut sqlx::PgConnection,
        requested: u64,
        changed: u64,
        done: bool,
    ) -> Result<()> {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let found = sql::audit_add_page(
            conn,
            self.id,
            &self.actor,
            &self.action,
            &self.target,
            clamp(requested),
            clamp(changed),
            done,
        )
        .await?;
        if found {
            Ok(())
        } else {
            Err(crate::Error::InvalidOption(
                "this bulk action's audit entry is finished or not this action's; start the action again"
                    .into(),
            ))
        }
    }
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
