//! Acting on every job that matches a search, not only on a page of ids: the filter is
//! re-run on the server in keyset pages, so the action covers exactly what matches now.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{BulkAudit, JobSearch, JobState, search_dead_jobs, search_jobs};
use crate::job::JobId;
use crate::{Result, sql};

/// What a bulk action matched and what it changed. Jobs that matched but were not changed
/// (running meanwhile, changed or gone meanwhile, or a dead job whose unique key a live job
/// holds) are `matched - changed`; `key_taken` says how many of those were the last kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulkOutcome {
    /// Rows the search matched when each page was read (for an action by ids: the ids given).
    pub matched: u64,
    /// Rows the action changed.
    pub changed: u64,
    /// Dead jobs a retry skipped because a live job holds their unique key (see
    /// [`retry_dead_jobs`](super::retry_dead_jobs)). Always 0 for other actions.
    #[serde(default)]
    pub key_taken: u64,
}

impl BulkOutcome {
    /// Adds another step's counts.
    pub fn add(&mut self, other: BulkOutcome) {
        self.matched += other.matched;
        self.changed += other.changed;
        self.key_taken += other.key_taken;
    }

    /// Matched but left alone.
    pub fn skipped(&self) -> u64 {
        self.matched - self.changed.min(self.matched)
    }
}

/// An action on dead jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadAction {
    /// Back to the queue, attempts reset, history kept.
    Retry,
    /// Hidden from default lists, kept for the record.
    Discard,
    /// Gone for good.
    Delete,
}

/// An action on live jobs. Running jobs are never touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveAction {
    /// Run now (waiting, scheduled or retrying jobs).
    RunNow,
    /// Move to the dead-letter table marked `cancelled`.
    Cancel,
    /// Delete without a trace.
    Delete,
}

/// Rows per page: one statement per page, each its own short transaction, so a bulk action on
/// 100,000 jobs never holds locks on all of them at once.
const PAGE: i64 = 1000;

/// Applies `action` to dead jobs by id. Returns the ids given as `matched`, how many changed,
/// and for a retry how many stayed dead because their unique key is taken. Takes a connection
/// so the caller can record the action (see [`super::record_action`]) in the same transaction.
pub async fn act_on_dead_jobs(
    conn: &mut PgConnection,
    action: DeadAction,
    ids: &[i64],
) -> Result<BulkOutcome> {
    super::check_ids(ids)?;
    let matched = ids.len() as u64;
    Ok(match action {
        DeadAction::Retry => {
            let done = super::retry_dead_jobs(conn, ids).await?;
            BulkOutcome { matched, changed: done.retried, key_taken: done.key_taken.len() as u64 }
        }
        DeadAction::Discard => {
            BulkOutcome { matched, changed: sql::dead_job_discard_many(conn, ids).await?, key_taken: 0 }
        }
        DeadAction::Delete => {
            BulkOutcome { matched, changed: sql::dead_job_delete_many(conn, ids).await?, key_taken: 0 }
        }
    })
}

/// Applies `action` to live jobs by id, skipping running ones. Returns how many changed.
/// `actor` names who cancelled, in the cancelled jobs' error history.
pub async fn act_on_jobs(
    conn: &mut PgConnection,
    action: LiveAction,
    ids: &[i64],
    actor: &str,
) -> Result<u64> {
    super::check_ids(ids)?;
    Ok(match action {
        LiveAction::RunNow => sql::job_run_now_many(conn, ids).await?,
        LiveAction::Delete => sql::job_delete_many(conn, ids).await?,
        LiveAction::Cancel => cancel(conn, ids, &format!("cancelled by {actor}")).await?,
    })
}

/// Moves unlocked jobs to the dead-letter table as `cancelled`, with `reason` as their error.
pub(super) async fn cancel(conn: &mut PgConnection, ids: &[i64], reason: &str) -> Result<u64> {
    let reason = crate::text::StoredText::new(reason);
    let mut cancelled = 0;
    for &id in ids {
        let moved = sql::job_move_to_dead(conn, id, None, &reason, None, "cancelled").await?;
        cancelled += u64::from(moved.is_some());
    }
    Ok(cancelled)
}

/// Applies `action` to every dead job matching `search` (discarded ones too when
/// `include_discarded`), page by page.
pub async fn act_on_dead_matching(
    pool: &PgPool,
    action: DeadAction,
    search: &JobSearch,
    include_discarded: bool,
) -> Result<BulkOutcome> {
    let mut total = BulkOutcome::default();
    let mut after = None;
    loop {
        let step =
            act_on_dead_matching_step(pool, action, search, include_discarded, after, u64::MAX, None).await?;
        total.add(step.outcome);
        match step.next {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

/// Part of a bulk action: what it did, and where to continue (`None`: nothing is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkStep<C> {
    /// What this step matched and changed.
    pub outcome: BulkOutcome,
    /// Pass this back as `after` to continue; `None` when the filter has no more rows.
    pub next: Option<C>,
}

/// One step of [`act_on_dead_matching`]: at most about `budget` rows (whole pages of 1,000),
/// starting after the `(died_at, id)` cursor `after`. A console calls this repeatedly to show
/// progress on a large bulk action, with its `audit` entry: each page and its audit counts
/// commit together, so a page that fails leaves the pages before it done and audited.
pub async fn act_on_dead_matching_step(
    pool: &PgPool,
    action: DeadAction,
    search: &JobSearch,
    include_discarded: bool,
    after: Option<(DateTime<Utc>, JobId)>,
    budget: u64,
    audit: Option<&BulkAudit>,
) -> Result<BulkStep<(DateTime<Utc>, JobId)>> {
    let mut outcome = BulkOutcome::default();
    let mut before = after;
    while outcome.matched < budget {
        let page = search_dead_jobs(pool, search, include_discarded, before, PAGE).await?;
        let Some(last) = page.last() else {
            close(pool, audit).await?;
            return Ok(BulkStep { outcome, next: None });
        };
        before = Some((last.died_at, last.id));
        let ids: Vec<i64> = page.iter().map(|job| job.id).collect();
        let done = (ids.len() as i64) < PAGE;
        let mut tx = pool.begin().await?;
        let page_outcome = act_on_dead_jobs(&mut tx, action, &ids).await?;
        if let Some(audit) = audit {
            audit.add_page(&mut tx, ids.len() as u64, page_outcome.changed, done).await?;
        }
        tx.commit().await?;
        outcome.add(page_outcome);
        if done {
            return Ok(BulkStep { outcome, next: None });
        }
    }
    Ok(BulkStep { outcome, next: before })
}

/// Closes a bulk action's audit entry when its last step found nothing more to do.
pub(crate) async fn close(pool: &PgPool, audit: Option<&BulkAudit>) -> Result<()> {
    if let Some(audit) = audit {
        let mut conn = pool.acquire().await?;
        audit.add_page(&mut conn, 0, 0, true).await?;
    }
    Ok(())
}

/// Applies `action` to every live job matching `state` and `search`, page by page. Running
/// jobs match but are skipped.
pub async fn act_on_jobs_matching(
    pool: &PgPool,
    action: LiveAction,
    state: Option<JobState>,
    search: &JobSearch,
    actor: &str,
) -> Result<BulkOutcome> {
    let mut total = BulkOutcome::default();
    let mut after = None;
    loop {
        let step =
            act_on_jobs_matching_step(pool, action, state, search, actor, after, u64::MAX, None).await?;
        total.add(step.outcome);
        match step.next {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

/// One step of [`act_on_jobs_matching`]: at most about `budget` rows, after the id `after`,
/// each page committed with its counts in `audit` (see [`act_on_dead_matching_step`]).
#[expect(clippy::too_many_arguments, reason = "the search, its cursor and budget, who, and the audit")]
pub async fn act_on_jobs_matching_step(
    pool: &PgPool,
    action: LiveAction,
    state: Option<JobState>,
    search: &JobSearch,
    actor: &str,
    after: Option<JobId>,
    budget: u64,
    audit: Option<&BulkAudit>,
) -> Result<BulkStep<JobId>> {
    let mut outcome = BulkOutcome::default();
    let mut before = after;
    while outcome.matched < budget {
        let page = search_jobs(pool, state, search, before, PAGE).await?;
        let Some(last) = page.last() else {
            close(pool, audit).await?;
            return Ok(BulkStep { outcome, next: None });
        };
        before = Some(last.id);
        let ids: Vec<i64> = page.iter().map(|job| job.id).collect();
        let done = (ids.len() as i64) < PAGE;
        let mut tx = pool.begin().await?;
        let changed = act_on_jobs(&mut tx, action, &ids, actor).await?;
        if let Some(audit) = audit {
            audit.add_page(&mut tx, ids.len() as u64, changed, done).await?;
        }
        tx.commit().await?;
        outcome.add(BulkOutcome { matched: ids.len() as u64, changed, key_taken: 0 });
        if done {
            return Ok(BulkStep { outcome, next: None });
        }
    }
    Ok(BulkStep { outcome, next: before })
}
