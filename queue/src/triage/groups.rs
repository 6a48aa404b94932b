//! Reading error groups and changing their status (resolve, ignore, reopen).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgExecutor;

use crate::{Result, sql};

/// A group counts as new for this many hours after it first appears (or reappears).
pub const NEW_GROUP_HOURS: i64 = 24;

/// One error group: every dead job of one source and kind whose error fits one learned
/// template.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct ErrorGroup {
    /// Its id.
    pub id: i64,
    /// Where its jobs come from: `backstop` or `graphile_worker`.
    pub source: String,
    /// Its jobs' kind.
    pub kind: String,
    /// The queue of its latest job.
    pub queue: String,
    /// The learned template of its errors, wildcards as `<*>` (see [`crate::triage::Template`]).
    pub message: String,
    /// The latest job's real error.
    pub sample_error: String,
    /// The latest job's id.
    pub sample_job_id: i64,
    /// Dead jobs that have joined it since it was first seen (retried ones included).
    pub total: i64,
    /// When its first job died.
    pub first_seen: DateTime<Utc>,
    /// When its latest job died.
    pub last_seen: DateTime<Utc>,
    /// `open`, `resolved` or `ignored` (see [`ErrorGroup::status`] for what people see).
    pub status: String,
    /// When an operator resolved it.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it came back after being resolved or ignored.
    pub reopened_at: Option<DateTime<Utc>>,
    /// Ignored until this time...
    pub ignored_until: Option<DateTime<Utc>>,
    /// ... or until its total reaches this.
    pub ignored_until_total: Option<i64>,
    /// Its learned template's tokens, `None` at the wildcards (see
    /// [`crate::triage::Template`]); none for a group from before templates not yet regrouped.
    pub template: Option<Vec<Option<String>>>,
}

/// A group's status as the triage page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupStatus {
    /// Open, and first seen (or back) within [`NEW_GROUP_HOURS`].
    New,
    /// Open for longer than that.
    Ongoing,
    /// An operator said it is fixed; the next arrival reopens it (and alerts).
    Resolved,
    /// An operator silenced it for a time or a number of arrivals.
    Ignored,
}

impl ErrorGroup {
    /// The status people see, as of `now`.
    pub fn status(&self, now: DateTime<Utc>) -> GroupStatus {
        match self.status.as_str() {
            "resolved" => GroupStatus::Resolved,
            "ignored" if !self.ignore_has_ended(now) => GroupStatus::Ignored,
            _ => {
                let since = self.reopened_at.unwrap_or(self.first_seen);
                if now - since < Duration::hours(NEW_GROUP_HOURS) {
                    GroupStatus::New
                } else {
                    GroupStatus::Ongoing
                }
            }
        }
    }

    fn ignore_has_ended(&self, now: DateTime<Utc>) -> bool {
        self.ignored_until.is_some_and(|until| until <= now)
            || self.ignored_until_total.is_some_and(|total| self.total >= total)
    }
}

/// Which groups to list.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    /// Only `open`, `resolved` or `ignored` groups.
    pub status: Option<String>,
    /// Only groups from this source.
    pub source: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only groups seen before this `(last_seen, id)` cursor: pass the last row of the
    /// previous page.
    pub before: Option<(DateTime<Utc>, i64)>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
}

/// Groups, most recently seen first.
pub async fn error_groups<'e, E: PgExecutor<'e>>(
    executor: E,
    filter: &GroupFilter,
) -> Result<Vec<ErrorGroup>> {
    let (before_seen, before_id) = filter.before.unzip();
    let limit = filter.limit.unwrap_or(50).clamp(1, 500);
    let (status, source, kind) = (filter.status.as_deref(), filter.source.as_deref(), filter.kind.as_deref());
    Ok(sql::error_group_list(executor, status, source, kind, before_seen, before_id, limit).await?)
}

/// One group by id. A group merged into another is that other group now (its id is a redirect,
/// so links in old alerts keep working): the result's `id` says which group it is.
pub async fn error_group<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> Result<Option<ErrorGroup>> {
    Ok(sql::error_group_get(executor, id).await?)
}

/// Arrivals per group and hour since `since`, for sparklines: `(group, hour, arrivals)`, hours
/// without arrivals left out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct GroupArrivals {
    /// The group.
    pub group_id: i64,
    /// The hour (truncated).
    pub hour: DateTime<Utc>,
    /// Jobs that joined the group in that hour.
    pub arrivals: i64,
}

/// Hourly arrivals of the given groups since `since`.
pub async fn group_arrivals<'e, E: PgExecutor<'e>>(
    executor: E,
    groups: &[i64],
    since: DateTime<Utc>,
) -> Result<Vec<GroupArrivals>> {
    Ok(sql::error_group_arrivals_since(executor, groups, since).await?)
}

/// Marks a group fixed: no digests, and the next job that joins it reopens it with an alert.
/// Returns whether the group exists.
pub async fn resolve_group<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> Result<bool> {
    Ok(sql::error_group_resolve(executor, id).await?)
}

/// Silences a group until `until`, or until `more` further jobs have joined it, whichever
/// comes first (at least one must be given). Its arrivals meanwhile stay out of digests; the
/// first one after the ignore ends alerts. Returns whether the group exists.
pub async fn ignore_group<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    until: Option<DateTime<Utc>>,
    more: Option<i64>,
) -> Result<bool> {
    if until.is_none() && more.is_none() {
        return Err(crate::Error::InvalidOption("ignore needs a time or a number of arrivals".into()));
    }
    Ok(sql::error_group_ignore(executor, id, until, more.map(|n| n.max(1))).await?)
}

/// Opens a resolved or ignored group again by hand (no alert: the operator is looking at it).
pub async fn reopen_group<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> Result<bool> {
    Ok(sql::error_group_reopen(executor, id).await?)
}
