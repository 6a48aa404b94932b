//! Whose jobs a request is about, Backstop's or graphile-worker's, decided once: the server
//! functions resolve a [`JobSource`] and call its operations (search, count, get, act), and
//! each operation is the one place that tells the sources apart. Server only.

use backstop::admin::{self, DeadAction, DeadJob, JobRecord, LiveAction};
use backstop::graphile::{self as graphile_worker, GraphileAction, GraphileJob, GraphileSchema};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{admin_search, graphile};
use crate::model::{BulkProgress, GRAPHILE, JobAction, JobDetail, JobFilter, JobPage, State};
use crate::server::{self, AppError, Console, RedactKeys};

/// Whose jobs.
#[derive(Debug)]
pub(super) enum JobSource {
    /// Backstop's own tables: live jobs and the dead-letter table.
    Backstop,
    /// graphile-worker's tables, as found in this database.
    Graphile(GraphileSchema),
}

impl JobSource {
    /// The source a request names: `graphile_worker` for graphile-worker's, anything else
    /// (none, usually) for Backstop's; `None` when it names graphile-worker and the database has
    /// no graphile-worker schema.
    pub(super) async fn find(pool: &PgPool, name: Option<&str>) -> Result<Option<JobSource>, AppError> {
        if name != Some(GRAPHILE) {
            return Ok(Some(JobSource::Backstop));
        }
        Ok(graphile_worker::detect(pool).await.map_err(AppError::from)?.map(JobSource::Graphile))
    }

    /// [`JobSource::find`], with a clear error when graphile-worker is named and not there.
    pub(super) async fn named(pool: &PgPool, name: Option<&str>) -> Result<JobSource, AppError> {
        Self::find(pool, name).await?.ok_or_else(graphile::no_schema)
    }

    /// The source of a filter's jobs, and the filter with its source filled in from its error
    /// group: a group's page links to its jobs by group alone, and the group knows whose jobs
    /// they are.
    pub(super) async fn of_filter(
        pool: &PgPool,
        mut filter: JobFilter,
    ) -> Result<(JobSource, JobFilter), AppError> {
        if let (Some(group), None) = (filter.group, &filter.source) {
            let group = backstop::triage::error_group(pool, group).await.map_err(AppError::from)?;
            if group.is_some_and(|g| g.source == GRAPHILE) {
                filter.source = Some(GRAPHILE.into());
            }
        }
        let source = Self::named(pool, filter.source.as_deref()).await?;
        Ok((source, filter))
    }

    /// Its name in audit records and URLs; `None` for Backstop's own jobs, which go unnamed.
    pub(super) fn name(&self) -> Option<&'static str> {
        match self {
            JobSource::Backstop => None,
            JobSource::Graphile(_) => Some(GRAPHILE),
        }
    }

    /// One page of the jobs matching `filter`, newest first, from the previous page's `next`.
    pub(super) async fn search(
        &self,
        console: &Console,
        filter: &JobFilter,
        before: Option<String>,
        page_size: i64,
    ) -> Result<JobPage, AppError> {
        let now = Utc::now();
        let full = |rows: usize| rows as i64 == page_size;
        match self {
            JobSource::Backstop => {
                let search = admin_search(filter)?;
                let bad_cursor = || {
                    AppError::BadRequest(
                        "That page link is not valid any more; start from the first page.".into(),
                    )
                };
                if filter.state == Some(State::Dead) {
                    let before = before
                        .as_deref()
                        .map(|c| server::parse_dead_cursor(c).ok_or_else(bad_cursor))
                        .transpose()?;
                    let rows = admin::search_dead_jobs(&console.pool, &search, false, before, page_size)
                        .await
                        .map_err(AppError::from)?;
                    let next = full(rows.len())
                        .then(|| rows.last().map(|job| server::dead_cursor(job.died_at, job.id)))
                        .flatten();
                    Ok(JobPage {
                        rows: rows.iter().map(|job| server::dead_row(job, now, &console.redact)).collect(),
                        next,
                        notice: None,
                    })
                } else {
                    let before =
                        before.as_deref().map(|c| c.parse::<i64>().map_err(|_| bad_cursor())).transpose()?;
                    let rows = admin::search_jobs(&console.pool, filter.state, &search, before, page_size)
                        .await
                        .map_err(AppError::from)?;
                    let next = full(rows.len()).then(|| rows.last().map(|job| job.id.to_string())).flatten();
                    Ok(JobPage {
                        rows: rows.iter().map(|job| server::live_row(job, now, &console.redact)).collect(),
                        next,
                        notice: None,
                    })
                }
            }
            JobSource::Graphile(schema) => {
                let search = graphile::search(filter)?;
                let before = before
                    .as_deref()
                    .map(|c| {
                        c.parse::<i64>()
                            .map_err(|_| AppError::BadRequest("That page link is not valid any more.".into()))
                    })
                    .transpose()?;
                let rows = graphile_worker::search(&console.pool, schema, &search, before, page_size)
                    .await
                    .map_err(AppError::from)?;
                let next = full(rows.len()).then(|| rows.last().map(|job| job.id.to_string())).flatten();
                Ok(JobPage {
                    rows: rows.iter().map(|job| server::graphile_row(job, now, &console.redact)).collect(),
                    next,
                    notice: graphile::notice(schema),
                })
            }
        }
    }

    /// How many jobs match `filter` now, counted up to `limit`.
    pub(super) async fn count(&self, pool: &PgPool, filter: &JobFilter, limit: i64) -> Result<i64, AppError> {
        let count = match self {
            JobSource::Backstop => {
                let search = admin_search(filter)?;
                if filter.state == Some(State::Dead) {
                    admin::count_dead_jobs(pool, &search, false, limit).await
                } else {
                    admin::count_jobs(pool, filter.state, &search, limit).await
                }
            }
            JobSource::Graphile(schema) => {
                graphile_worker::count(pool, schema, &graphile::search(filter)?, limit).await
            }
        };
        count.map_err(AppError::from)
    }

    /// A job by id; `None` when the source no longer has it (completed, or deleted).
    pub(super) async fn get(&self, conn: &mut PgConnection, id: i64) -> Result<Option<FoundJob>, AppError> {
        match self {
            JobSource::Backstop => {
                if let Some(job) = admin::job(&mut *conn, id).await.map_err(AppError::from)? {
                    return Ok(Some(FoundJob::Live(job)));
                }
                let dead = admin::dead_job(&mut *conn, id).await.map_err(AppError::from)?;
                Ok(dead.map(FoundJob::Dead))
            }
            JobSource::Graphile(schema) => {
                let job =
                    graphile_worker::graphile_job(&mut *conn, schema, id).await.map_err(AppError::from)?;
                Ok(job.map(FoundJob::Graphile))
            }
        }
    }

    /// Applies `action` to the jobs `ids`, all in `state`, in the caller's transaction (which
    /// records it in the audit log). Running jobs are skipped.
    pub(super) async fn act(
        &self,
        tx: &mut PgConnection,
        action: JobAction,
        state: State,
        ids: &[i64],
        actor: &str,
    ) -> Result<Acted, AppError> {
        match self {
            JobSource::Backstop => {
                let target = target(action, state)?;
                let changed = match target {
                    Target::Dead(action) => {
                        admin::act_on_dead_jobs(tx, action, ids).await.map(|done| done.changed)
                    }
                    Target::Live(action) => admin::act_on_jobs(tx, action, ids, actor).await,
                }
                .map_err(AppError::from)?;
                Ok(Acted { changed, audit_name: audit_action(&target) })
            }
            JobSource::Graphile(schema) => {
                let action = graphile_target(action, state)?;
                let changed = graphile_worker::act_on_graphile_jobs(tx, schema, action, ids, actor)
                    .await
                    .map_err(AppError::from)?;
                Ok(Acted { changed, audit_name: graphile_audit_name(action) })
            }
        }
    }

    /// One step of `action` on everything `filter` matches (its state, or queued when it names
    /// none): about `budget` rows from `after`, added to the audit entry `audit_id` (the first
    /// step starts one). The filter and the action are checked before the entry is started.
    #[expect(clippy::too_many_arguments, reason = "who, what, on which filter, from where, how much")]
    pub(super) async fn act_on_matching_step(
        &self,
        pool: &PgPool,
        actor: &str,
        action: JobAction,
        filter: &JobFilter,
        after: Option<String>,
        audit_id: Option<i64>,
        budget: u64,
    ) -> Result<(BulkProgress, &'static str), AppError> {
        let state = filter.state.unwrap_or(State::Queued);
        let bad_cursor =
            || AppError::BadRequest("That bulk action cannot be continued; start it again.".into());
        match self {
            JobSource::Backstop => {
                let search = admin_search(filter)?;
                let target = target(action, state)?;
                let name = audit_action(&target);
                let audit = super::actions::bulk_audit(pool, actor, audit_id, name, filter).await?;
                let (outcome, next) = match target {
                    Target::Dead(action) => {
                        let after = after
                            .as_deref()
                            .map(|c| server::parse_dead_cursor(c).ok_or_else(bad_cursor))
                            .transpose()?;
                        let step = admin::act_on_dead_matching_step(
                            pool,
                            action,
                            &search,
                            false,
                            after,
                            budget,
                            Some(&audit),
                        )
                        .await
                        .map_err(AppError::from)?;
                        (step.outcome, step.next.map(|(at, id)| server::dead_cursor(at, id)))
                    }
                    Target::Live(action) => {
                        let after = after
                            .as_deref()
                            .map(|c| c.parse::<i64>().map_err(|_| bad_cursor()))
                            .transpose()?;
                        let step = admin::act_on_jobs_matching_step(
                            pool,
                            action,
                            filter.state,
                            &search,
                            actor,
                            after,
                            budget,
                            Some(&audit),
                        )
                        .await
                        .map_err(AppError::from)?;
                        (step.outcome, step.next.map(|id| id.to_string()))
                    }
                };
                let progress = BulkProgress {
                    matched: outcome.matched,
                    changed: outcome.changed,
                    next,
                    audit_id: audit.id,
                };
                Ok((progress, name))
            }
            JobSource::Graphile(schema) => {
                let search = graphile::search(filter)?;
                let action = graphile_target(action, state)?;
                let name = graphile_audit_name(action);
                let audit = super::actions::bulk_audit(pool, actor, audit_id, name, filter).await?;
                let after =
                    after.as_deref().map(|c| c.parse::<i64>().map_err(|_| bad_cursor())).transpose()?;
                let step = graphile_worker::act_on_graphile_matching_step(
                    pool,
                    schema,
                    action,
                    &search,
                    actor,
                    after,
                    budget,
                    Some(&audit),
                )
                .await
                .map_err(AppError::from)?;
                let progress = BulkProgress {
                    matched: step.outcome.matched,
                    changed: step.outcome.changed,
                    next: step.next.map(|id| id.to_string()),
                    audit_id: audit.id,
                };
                Ok((progress, name))
            }
        }
    }
}

/// What an action on jobs by id did.
#[derive(Debug)]
pub(super) struct Acted {
    /// Jobs it changed.
    pub changed: u64,
    /// The audit log's name for what it did.
    pub audit_name: &'static str,
}

/// A job as its source keeps it.
#[derive(Debug)]
pub(super) enum FoundJob {
    /// In Backstop's live table.
    Live(JobRecord),
    /// In Backstop's dead-letter table.
    Dead(DeadJob),
    /// In graphile-worker's table.
    Graphile(GraphileJob),
}

impl FoundJob {
    /// Everything the job page shows.
    pub(super) fn detail(&self, now: DateTime<Utc>, redact: &RedactKeys) -> JobDetail {
        match self {
            FoundJob::Live(job) => server::live_detail(job, now, redact),
            FoundJob::Dead(job) => server::dead_detail(job, now, redact),
            FoundJob::Graphile(job) => server::graphile_detail(job, now, redact),
        }
    }

    /// Its payload, if this role can read it.
    pub(super) fn into_payload(self) -> Option<serde_json::Value> {
        match self {
            FoundJob::Live(job) => Some(job.payload),
            FoundJob::Dead(job) => Some(job.payload),
            FoundJob::Graphile(job) => job.payload,
        }
    }
}

/// What `action` means for Backstop's jobs in `state`, or why it does not apply.
enum Target {
    Dead(DeadAction),
    Live(LiveAction),
}

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

/// The audit log's name for an action on Backstop's jobs.
fn audit_action(target: &Target) -> &'static str {
    match target {
        Target::Dead(DeadAction::Retry) => "retry",
        Target::Dead(DeadAction::Discard) => "discard",
        Target::Dead(DeadAction::Delete) | Target::Live(LiveAction::Delete) => "delete",
        Target::Live(LiveAction::RunNow) => "run_now",
        Target::Live(LiveAction::Cancel) => "cancel",
    }
}

/// What `action` means for graphile-worker jobs in `state`: its own admin functions.
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

/// The audit log's name for a graphile-worker action.
fn graphile_audit_name(action: GraphileAction) -> &'static str {
    match action {
        GraphileAction::Retry => "retry",
        GraphileAction::Discard => "discard",
        GraphileAction::Delete => "delete",
    }
}
