//! Server functions that read: who am I, the overview, job lists, one job, the audit log.

use leptos::prelude::*;

use crate::model::{AuditRow, CurrentUser, JobDetail, JobFilter, JobPage, Overview};

#[cfg(feature = "ssr")]
use {
    super::{admin_search, graphile, with_group_source},
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
    Ok(Overview {
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
    let filter = with_group_source(&console.pool, filter).await?;
    if filter.is_graphile() {
        return list_graphile_jobs(&console, &filter, before).await;
    }
    let search = admin_search(&filter)?;
    let now = Utc::now();
    let bad_cursor =
        || AppError::BadRequest("That page link is not valid any more; start from the first page.".into());
    if filter.state == Some(State::Dead) {
        let before =
            before.as_deref().map(|c| server::parse_dead_cursor(c).ok_or_else(bad_cursor)).transpose()?;
        let rows = admin::search_dead_jobs(&console.pool, &search, false, before, PAGE_SIZE)
            .await
            .map_err(AppError::from)?;
        let next = (rows.len() as i64 == PAGE_SIZE)
            .then(|| rows.last().map(|job| server::dead_cursor(job.died_at, job.id)))
            .flatten();
        Ok(JobPage {
            rows: rows.iter().map(|job| server::dead_row(job, now, &console.redact)).collect(),
            next,
            notice: None,
        })
    } else {
        let before = before.as_deref().map(|c| c.parse::<i64>().map_err(|_| bad_cursor())).transpose()?;
        let rows = admin::search_jobs(&console.pool, filter.state, &search, before, PAGE_SIZE)
            .await
            .map_err(AppError::from)?;
        let next =
            (rows.len() as i64 == PAGE_SIZE).then(|| rows.last().map(|job| job.id.to_string())).flatten();
        Ok(JobPage {
            rows: rows.iter().map(|job| server::live_row(job, now, &console.redact)).collect(),
            next,
            notice: None,
        })
    }
}

/// How many jobs `filter` matches right now, counted up to `limit` (so the count is cheap on
/// any table): what a bulk action on the filter would act on.
#[server(endpoint = "count_matching")]
pub async fn count_matching(filter: JobFilter, limit: i64) -> Result<i64, ServerFnError> {
    let console = server::console()?;
    let filter = with_group_source(&console.pool, filter).await?;
    if filter.is_graphile() {
        let schema = graphile::schema(&console.pool).await?;
        let search = graphile::search(&filter)?;
        return Ok(backstop::graphile::count(&console.pool, &schema, &search, limit)
            .await
            .map_err(AppError::from)?);
    }
    let search = admin_search(&filter)?;
    let count = if filter.state == Some(State::Dead) {
        admin::count_dead_jobs(&console.pool, &search, false, limit).await
    } else {
        admin::count_jobs(&console.pool, filter.state, &search, limit).await
    };
    Ok(count.map_err(AppError::from)?)
}

/// A job by id, live or dead; `None` when it is in neither table (completed, or deleted).
/// `source` is `graphile_worker` for graphile-worker's jobs.
#[server(endpoint = "job_detail")]
pub async fn job_detail_for(id: i64, source: Option<String>) -> Result<Option<JobDetail>, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    if source.as_deref() == Some(crate::model::GRAPHILE) {
        let schema = graphile::schema(&console.pool).await?;
        let job =
            backstop::graphile::graphile_job(&console.pool, &schema, id).await.map_err(AppError::from)?;
        return Ok(job.map(|job| server::graphile_detail(&job, now, &console.redact)));
    }
    if let Some(job) = admin::job(&console.pool, id).await.map_err(AppError::from)? {
        return Ok(Some(server::live_detail(&job, now, &console.redact)));
    }
    let dead = admin::dead_job(&console.pool, id).await.map_err(AppError::from)?;
    Ok(dead.map(|job| server::dead_detail(&job, now, &console.redact)))
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

/// A page of graphile-worker's jobs, newest first (keyset on id).
#[cfg(feature = "ssr")]
async fn list_graphile_jobs(
    console: &crate::server::Console,
    filter: &JobFilter,
    before: Option<String>,
) -> Result<JobPage, ServerFnError> {
    let schema = graphile::schema(&console.pool).await?;
    let search = graphile::search(filter)?;
    let before = before
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| AppError::BadRequest("That page link is not valid any more.".into()))
        })
        .transpose()?;
    let rows = backstop::graphile::search(&console.pool, &schema, &search, before, PAGE_SIZE)
        .await
        .map_err(AppError::from)?;
    let now = Utc::now();
    let next = (rows.len() as i64 == PAGE_SIZE).then(|| rows.last().map(|job| job.id.to_string())).flatten();
    Ok(JobPage {
        rows: rows.iter().map(|job| server::graphile_row(job, now, &console.redact)).collect(),
        next,
        notice: graphile::notice(&schema),
    })
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
