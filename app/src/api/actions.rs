//! Server functions that change jobs and queues. Each checks the operator role on the server
//! first and writes an audit-log entry: who, what, on which ids or filter, how many changed.

use leptos::prelude::*;

use crate::model::{ActionReport, BulkProgress, JobAction, JobFilter, State};

#[cfg(feature = "ssr")]
use {
    super::{admin_search, graphile, with_group_source},
    crate::model::GRAPHILE,
    crate::server::{self, AppError},
    backstop::admin::{self, DeadAction, LiveAction},
    backstop::graphile::GraphileAction,
};

/// What `action` means for jobs in `state`, or why it does not apply.
#[cfg(feature = "ssr")]
enum Target {
    Dead(DeadAction),
    Live(LiveAction),
}

#[cfg(feature = "ssr")]
fn target(action: JobAction, state: State) -> Result<Target, AppError> {
    Ok(match (state, action) {
        (State::Dead, JobAction::Retry) => Target::Dead(DeadAction::Retry),
        (State::Dead, JobAction::Discard) => Target::Dead(DeadAction::Discard),
        (State::Dead, JobAction::Delete) => Target::Dead(DeadAction::Delete),
        (State::Running, _) => {
            return Err(AppError::BadRequest(
                "Running jobs cannot be changed; wait for them to finish.".into(),
            ));
        }
        (_, JobAction::Retry) => Target::Live(LiveAction::RunNow),
        (_, JobAction::Cancel) => Target::Live(LiveAction::Cancel),
        (_, JobAction::Delete) => Target::Live(LiveAction::Delete),
        (_, JobAction::Discard) => {
            return Err(AppError::BadRequest("Only dead jobs can be discarded.".into()));
        }
    })
}

/// What `action` means for graphile-worker jobs in `state`: its own admin functions.
#[cfg(feature = "ssr")]
fn graphile_target(action: JobAction, state: State) -> Result<GraphileAction, AppError> {
    match (state, action) {
        (State::Running, _) => {
            Err(AppError::BadRequest("Running jobs cannot be changed; wait for them to finish.".into()))
        }
        (_, JobAction::Retry) => Ok(GraphileAction::Retry),
        (_, JobAction::Delete) => Ok(GraphileAction::Delete),
        // graphile-worker already keeps a failed job as it is; failing it again would only
        // overwrite its error.
        (State::Dead, JobAction::Discard) => Err(AppError::BadRequest(
            "graphile-worker keeps permanently failed jobs as they are: retry or delete them.".into(),
        )),
        // "Fail it for good now": what cancel and discard mean to graphile-worker.
        (_, JobAction::Cancel | JobAction::Discard) => Ok(GraphileAction::Discard),
    }
}

/// The audit log's name for an action.
#[cfg(feature = "ssr")]
fn audit_action(target: &Target) -> &'static str {
    match target {
        Target::Dead(DeadAction::Retry) => "retry",
        Target::Dead(DeadAction::Discard) => "discard",
        Target::Dead(DeadAction::Delete) | Target::Live(LiveAction::Delete) => "delete",
        Target::Live(LiveAction::RunNow) => "run_now",
        Target::Live(LiveAction::Cancel) => "cancel",
    }
}

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
    if source.as_deref() == Some(GRAPHILE) {
        let schema = graphile::schema(&console.pool).await?;
        let graphile_action = graphile_target(action, state)?;
        let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
        let changed =
            backstop::graphile::act_on_graphile_jobs(&mut tx, &schema, graphile_action, &ids, &user.name)
                .await
                .map_err(AppError::from)?;
        let record = serde_json::json!({ "ids": ids, "state": state, "source": GRAPHILE });
        let name = graphile_audit_name(graphile_action);
        admin::record_action(&mut *tx, &user.name, name, &record, ids.len() as u64, changed)
            .await
            .map_err(AppError::from)?;
        tx.commit().await.map_err(AppError::internal)?;
        return Ok(ActionReport { matched: ids.len() as u64, changed });
    }
    let target = target(action, state)?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let changed = match target {
        Target::Dead(action) => admin::act_on_dead_jobs(&mut tx, action, &ids).await.map(|done| done.changed),
        Target::Live(action) => admin::act_on_jobs(&mut tx, action, &ids, &user.name).await,
    }
    .map_err(AppError::from)?;
    let record = serde_json::json!({ "ids": ids, "state": state });
    admin::record_action(&mut *tx, &user.name, audit_action(&target), &record, ids.len() as u64, changed)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    tracing::info!(user = %user.name, action = audit_action(&target), requested = ids.len(), changed, "console action");
    Ok(ActionReport { matched: ids.len() as u64, changed })
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
    let filter = with_group_source(&console.pool, filter).await?;
    if filter.is_graphile() {
        return act_on_graphile_matching(&user, &console, action, filter, after, audit_id).await;
    }
    let search = admin_search(&filter)?;
    let target = target(action, filter.state.unwrap_or(State::Queued))?;
    let audit = bulk_audit(&console.pool, &user.name, audit_id, audit_action(&target), &filter).await?;
    let bad_cursor = || AppError::BadRequest("That bulk action cannot be continued; start it again.".into());
    let (outcome, next) = match target {
        Target::Dead(action) => {
            let after =
                after.as_deref().map(|c| server::parse_dead_cursor(c).ok_or_else(bad_cursor)).transpose()?;
            let step = admin::act_on_dead_matching_step(
                &console.pool,
                action,
                &search,
                false,
                after,
                STEP_ROWS,
                Some(&audit),
            )
            .await
            .map_err(AppError::from)?;
            (step.outcome, step.next.map(|(at, id)| server::dead_cursor(at, id)))
        }
        Target::Live(action) => {
            let after = after.as_deref().map(|c| c.parse::<i64>().map_err(|_| bad_cursor())).transpose()?;
            let state = filter.state;
            let step = admin::act_on_jobs_matching_step(
                &console.pool,
                action,
                state,
                &search,
                &user.name,
                after,
                STEP_ROWS,
                Some(&audit),
            )
            .await
            .map_err(AppError::from)?;
            (step.outcome, step.next.map(|id| id.to_string()))
        }
    };
    let audit_id = audit.id;
    tracing::info!(user = %user.name, action = audit_action(&target), matched = outcome.matched, changed = outcome.changed, done = next.is_none(), "console bulk action step");
    Ok(BulkProgress { matched: outcome.matched, changed: outcome.changed, next, audit_id })
}

/// The audit entry of a bulk action by filter: a new one for the first step; for later steps
/// the one the client names, only if it is still in progress for this same action, filter and
/// user (checked again, with the counts, in each page's transaction).
#[cfg(feature = "ssr")]
async fn bulk_audit(
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

/// The audit log's name for a graphile-worker action.
#[cfg(feature = "ssr")]
fn graphile_audit_name(action: GraphileAction) -> &'static str {
    match action {
        GraphileAction::Retry => "retry",
        GraphileAction::Discard => "discard",
        GraphileAction::Delete => "delete",
    }
}

/// `act_on_matching` for graphile-worker's jobs: the same steps, cursor and audit entry.
#[cfg(feature = "ssr")]
async fn act_on_graphile_matching(
    user: &crate::model::CurrentUser,
    console: &crate::server::Console,
    action: JobAction,
    filter: JobFilter,
    after: Option<String>,
    audit_id: Option<i64>,
) -> Result<BulkProgress, ServerFnError> {
    let schema = graphile::schema(&console.pool).await?;
    let search = graphile::search(&filter)?;
    let graphile_action = graphile_target(action, filter.state.unwrap_or(State::Queued))?;
    let name = graphile_audit_name(graphile_action);
    let audit = bulk_audit(&console.pool, &user.name, audit_id, name, &filter).await?;
    let after = after
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                AppError::BadRequest("That bulk action cannot be continued; start it again.".into())
            })
        })
        .transpose()?;
    let step = backstop::graphile::act_on_graphile_matching_step(
        &console.pool,
        &schema,
        graphile_action,
        &search,
        &user.name,
        after,
        STEP_ROWS,
        Some(&audit),
    )
    .await
    .map_err(AppError::from)?;
    Ok(BulkProgress {
        matched: step.outcome.matched,
        changed: step.outcome.changed,
        next: step.next.map(|id| id.to_string()),
        audit_id: audit.id,
    })
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
