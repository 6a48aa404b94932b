//! Revealing one masked value of a job's payload: for operators, audited. The audit entry says
//! who, which job and which path, never the value, and it commits in the transaction that read
//! the value, so no value is ever shown without its entry.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use {
    super::source::{FoundJob, JobSource},
    crate::server::{self, AppError},
    backstop::admin,
};

/// The real value at `path` (a JSON pointer from `JobDetail::masked`) of job `id`'s payload,
/// pretty-printed. Only values the console masks can be revealed, one at a time. `source` is
/// `graphile_worker` for graphile-worker's jobs.
#[server(endpoint = "reveal_masked")]
pub async fn reveal_masked(id: i64, path: String, source: Option<String>) -> Result<String, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let job_source = JobSource::named(&console.pool, source.as_deref()).await?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let payload = job_source.get(&mut tx, id).await?.and_then(FoundJob::into_payload);
    let payload = payload.ok_or_else(|| AppError::NotFound(format!("job {id} (it may have completed)")))?;
    let value = console.redact.reveal(&payload, &path).ok_or_else(|| {
        AppError::BadRequest(format!("Job {id} has no masked value at {path:?}; nothing was revealed."))
    })?;
    let text = serde_json::to_string_pretty(value).map_err(AppError::internal)?;
    let mut target = serde_json::json!({ "ids": [id], "path": path });
    if let Some(source) = &source {
        target["source"] = serde_json::json!(source);
    }
    admin::record_action(&mut *tx, &user.name, "reveal", &target, 1, 1).await.map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    tracing::info!(user = %user.name, job = id, path, "masked value revealed");
    Ok(text)
}
