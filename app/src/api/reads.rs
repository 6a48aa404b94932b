//! Server functions that read: who am I, the overview, job lists, one job, the audit log.

use leptos::prelude::*;

use crate::model::{AuditRow, CurrentUser, JobDetail, JobFilter, JobPage, Overview};

#[cfg(feature = "ssr")]
use {
    super::graphile,
    super::source::JobSource,
    crate::model::State,
    crate::server::{self, AppError},
    backstop::admin,
    chrono::Utc,
};

/// Rows per list page.
#[cfg(feature = "ssr")]
const PAGE_SIZE: i64 = 50;

/// The signed-in user and their role.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<CurrentUser, ServerFnError> {
    Ok(server::current_user().await?)
}

/// Counts per queue and state, worker processes, and the last hour's throughput.
#[server(endpoint = "overview")]
pub async fn overview_data() -> Result<Overview, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let counts = admin::queue_counts(&console.pool).await.map_err(AppError::from)?;
    let workers = admin::workers(&console.pool).await.map_err(AppError::from)?;
    let problems = admin::health_alerts(&console.pool).await.map_err(AppError::from)?;
    let stats = admin::stats_since(&console.pool, now - chrono::Duration::minutes(59))
        .await
        .map_err(AppError::from)?;
    let oldest_transaction = admin::oldest_transaction_age(&console.pool).await.map_err(AppError::from)?;
    Ok(Overview {
        long_transaction: server::long_transaction(oldest_transaction, now),
        graphile: graphile_overview(&console.pool).await?,
        exact: counts.iter().all(|c| c.exact),
        queues: counts.iter().map(|c| server::queue_row(c, now, &problems)).collect(),
        workers: workers.iter().map(|w| server::worker_row(w, now)).collect(),
        last_hour: server::last_hour(&stats, now),
    })
}

/// One page of jobs matching `filter`, newest first. `before` is the previous page's `next`.
#[server(endpoint = "list_jobs")]
pub async fn list_jobs(filter: JobFilter, before: Option<String>) -> Result<JobPage, ServerFnError> {
    let console = server::console()?;
    let (source, filter) = JobSource::of_filter(&console.pool, filter).await?;
    Ok(source.search(&console, &filter, before, PAGE_SIZE).await?)
}

/// How many jobs `filter` matches right now, counted up to `limit` (so the count is cheap on
/// any table): what a bulk action on the filter would act on.
#[server(endpoint = "count_matching")]
pub async fn count_matching(filter: JobFilter, limit: i64) -> Result<i64, ServerFnError> {
    let console = server::console()?;
    let (source, filter) = JobSource::of_filter(&console.pool, filter).await?;
    Ok(source.count(&console.pool, &filter, limit).await?)
}

/// A job by id, live or dead; `None` when it is in neither table (completed, or deleted).
/// `source` is `graphile_worker` for graphile-worker's jobs.
#[server(endpoint = "job_detail")]
pub async fn job_detail_for(id: i64, source: Option<String>) -> Result<Option<JobDetail>, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let source = JobSource::named(&console.pool, source.as_deref()).await?;
    let mut conn = console.pool.acquire().await.map_err(AppError::internal)?;
    let job = source.get(&mut conn, id).await?;
    Ok(job.map(|job| job.detail(now, &console.redact)))
}

/// graphile-worker's jobs per state, if the database has its schema.
#[cfg(feature = "ssr")]
async fn graphile_overview(pool: &sqlx::PgPool) -> Result<Option<crate::model::GraphileOverview>, AppError> {
    use backstop::graphile::{GraphileSearch, count, detect};
    let Some(schema) = detect(pool).await.map_err(AppError::from)? else { return Ok(None) };
    let mut counts = [0; 5];
    for (slot, state) in counts.iter_mut().zip(State::ALL) {
        let search = GraphileSearch { state: Some(state), ..GraphileSearch::default() };
        *slot = count(pool, &schema, &search, crate::model::GRAPHILE_COUNT_LIMIT)
            .await
            .map_err(AppError::from)?;
    }
    Ok(Some(crate::model::GraphileOverview {
        version: schema.version_label(),
        counts,
        notice: graphile::notice(&schema),
    }))
}

/// The audit log, newest first, optionally only one actor's or one action's entries; `before`
/// is the last id of the previous page.
#[server(endpoint = "audit_log")]
pub async fn audit_log(
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let filter = admin::AuditFilter { actor, action };
    let entries =
        admin::audit_log(&console.pool, &filter, before, PAGE_SIZE).await.map_err(AppError::from)?;
    Ok(entries.iter().map(|entry| server::audit_row(entry, now, &console.redact)).collect())
}
