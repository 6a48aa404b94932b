//! Server functions that change jobs and queues. Each checks the operator role on the server
//! first and writes an audit-log entry: who, what, on which ids or filter, how many changed.

use leptos::prelude::*;

use crate::model::{ActionReport, BulkProgress, JobAction, JobFilter, State};

#[cfg(feature = "ssr")]
use {
    super::source::JobSource,
    crate::server::{self, AppError},
    backstop::admin,
};

/// Applies `action` to the jobs `ids`, all in `state` (dead jobs and live jobs are separate
/// tables). Running jobs are skipped; the report says how many changed.
#[server(endpoint = "act_on_jobs")]
pub async fn act_on_jobs(
    action: JobAction,
    state: State,
    ids: Vec<i64>,
    source: Option<String>,
) -> Result<ActionReport, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let source = JobSource::named(&console.pool, source.as_deref()).await?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let acted = source.act(&mut tx, action, state, &ids, &user.name).await?;
    let mut record = serde_json::json!({ "ids": ids, "state": state });
    if let Some(name) = source.name() {
        record["source"] = serde_json::json!(name);
    }
    admin::record_action(&mut *tx, &user.name, acted.audit_name, &record, ids.len() as u64, acted.changed)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    tracing::info!(user = %user.name, action = acted.audit_name, requested = ids.len(), changed = acted.changed, "console action");
    Ok(ActionReport { matched: ids.len() as u64, changed: acted.changed })
}

/// Rows one step of a bulk action covers: about half a second of work, so progress moves.
#[cfg(feature = "ssr")]
const STEP_ROWS: u64 = 10_000;

/// Applies `action` to the jobs matching `filter` now, one step of about 10,000 at a time: the
/// server re-runs the filter, so what is acted on is what matches at this moment, not what a
/// page showed earlier. Call again with the returned `next` as `after`, and `audit_id`, until
/// `next` is `None`; every step adds to the same audit-log entry, which the first step creates
/// and later steps may only continue for the same action, filter and user.
#[server(endpoint = "act_on_matching")]
pub async fn act_on_matching(
    action: JobAction,
    filter: JobFilter,
    after: Option<String>,
    audit_id: Option<i64>,
) -> Result<BulkProgress, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let (source, filter) = JobSource::of_filter(&console.pool, filter).await?;
    let (progress, name) = source
        .act_on_matching_step(&console.pool, &user.name, action, &filter, after, audit_id, STEP_ROWS)
        .await?;
    tracing::info!(user = %user.name, action = name, matched = progress.matched, changed = progress.changed, done = progress.next.is_none(), "console bulk action step");
    Ok(progress)
}

/// The audit entry of a bulk action by filter: a new one for the first step; for later steps
/// the one the client names, only if it is still in progress for this same action, filter and
/// user (checked again, with the counts, in each page's transaction).
#[cfg(feature = "ssr")]
pub(super) async fn bulk_audit(
    pool: &sqlx::PgPool,
    actor: &str,
    audit_id: Option<i64>,
    action: &str,
    filter: &JobFilter,
) -> Result<admin::BulkAudit, AppError> {
    let record = serde_json::json!({ "filter": filter });
    match audit_id {
        None => admin::BulkAudit::start(pool, actor, action, &record).await.map_err(AppError::from),
        Some(id) => admin::BulkAudit::resume(pool, id, actor, action, &record)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| {
                AppError::BadRequest(
                    "That bulk action cannot be continued: it is finished, or not this action on this \
                     filter by you. Start it again."
                        .into(),
                )
            }),
    }
}

/// Replaces a dead job's payload with `payload` (JSON text) and retries it: for a job that died
/// of bad arguments. The JSON is checked here; nothing changes unless it parses and fits.
#[server(endpoint = "edit_and_retry")]
pub async fn edit_and_retry(id: i64, payload: String) -> Result<ActionReport, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let edited: serde_json::Value = serde_json::from_str(&payload).map_err(|e| {
        AppError::BadRequest(format!("The payload is not valid JSON: {e}. Nothing was changed."))
    })?;
    // The read, the change and its audit entry commit together or not at all.
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let original = admin::dead_job(&mut *tx, id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::NotFound(format!("job {id} is not in the dead-letter table")))?;
    // The page showed secrets masked, each naming its path: put them back from there.
    let value = console.redact.restore(&edited, &original.payload).map_err(|e| {
        AppError::BadRequest(format!("The payload cannot be saved: {e}. Nothing was changed."))
    })?;
    let moved = admin::retry_dead_job_with_payload(&mut tx, id, &value, backstop::DEFAULT_MAX_PAYLOAD_BYTES)
        .await
        .map_err(|e| match e {
            backstop::Error::PayloadTooLarge { .. } => {
                AppError::BadRequest(format!("{e}. Nothing was changed."))
            }
            other => AppError::from(other),
        })?;
    let changed = u64::from(moved);
    admin::record_action(
        &mut *tx,
        &user.name,
        "edit_and_retry",
        &serde_json::json!({ "ids": [id] }),
        1,
        changed,
    )
    .await
    .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(ActionReport { matched: 1, changed })
}

/// Pauses or resumes a queue: workers stop or start claiming from it (running jobs finish).
#[server(endpoint = "set_queue_paused")]
pub async fn set_queue_paused(queue: String, paused: bool) -> Result<(), ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    if paused {
        admin::pause_queue(&mut *tx, &queue).await.map_err(AppError::from)?;
    } else {
        admin::resume_queue(&mut *tx, &queue).await.map_err(AppError::from)?;
    }
    let action = if paused { "pause" } else { "resume" };
    admin::record_action(&mut *tx, &user.name, action, &serde_json::json!({ "queue": queue }), 1, 1)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(())
}
