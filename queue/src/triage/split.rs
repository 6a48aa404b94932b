//! An operator's split: a group whose template varies at a place that, to them, names the
//! problem (`upload to <*> refused`, where each bucket is its own misconfiguration) becomes one
//! group per value its dead jobs have there.
//!
//! The value most of its dead jobs have keeps the group's id (so its links and history stay);
//! every other value gets a group of its own, with those jobs, their hourly arrivals and the
//! group's status. Every resulting template keeps the place *fixed* ([`Template::fixed`]):
//! learning never makes it a wildcard again, and a new value there starts a new group (an
//! alert, as a new problem should). A split enqueues no alert itself.
//!
//! The work is bounded: at most [`MAX_SPLIT_JOBS`] dead jobs are read and at most
//! [`MAX_SPLIT_VALUES`] groups made; past either the split is refused with the reason, and
//! nothing changes.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgConnection;

use super::learn::{lock_bucket, set_template};
use super::signature::Signature;
use super::template::Template;
use crate::{Error, Result, sql};

/// The most groups one split makes: a place with more values than this is a variable (an id,
/// a name), not the name of a problem.
pub const MAX_SPLIT_VALUES: usize = 50;

/// The most dead jobs a split reads and moves, so that one click stays one short transaction.
/// A group with more is split after its jobs are retried or discarded, or by `backstop regroup`.
pub const MAX_SPLIT_JOBS: i64 = 100_000;

/// What a split did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The group that was split: it keeps the value most of its dead jobs have.
    pub kept: SplitGroup,
    /// The groups made for the other values (or that took them, where a group of exactly that
    /// template existed already), most dead jobs first.
    pub others: Vec<SplitGroup>,
}

/// One group of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitGroup {
    /// Its id.
    pub id: i64,
    /// The value its messages have at the split place.
    pub value: String,
    /// How many of the split group's dead jobs it holds.
    pub jobs: usize,
}

/// One dead job of the group: its id, error and when it died.
type Member = (i64, Option<String>, DateTime<Utc>);

/// The dead jobs with one value at the split place.
#[derive(Debug, Default)]
struct Share {
    ids: Vec<i64>,
    first: Option<DateTime<Utc>>,
    last: Option<(DateTime<Utc>, i64, String)>,
    hours: BTreeMap<DateTime<Utc>, i64>,
}

/// Splits group `id` by the value its dead jobs have at its `wildcard`-th wildcard (from 0, in
/// the order the template reads). See the module documentation; audit it in the same
/// transaction.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// let mut tx = pool.begin().await?;
/// let split = backstop::triage::split_group(&mut tx, 12, 0).await?;
/// tx.commit().await?;
/// for group in std::iter::once(&split.kept).chain(&split.others) {
///     println!("group {}: {} ({} dead jobs)", group.id, group.value, group.jobs);
/// }
/// # Ok(()) }
/// ```
pub async fn split_group(conn: &mut PgConnection, id: i64, wildcard: usize) -> Result<Split> {
    let refuse = |why: String| Err(Error::InvalidOption(format!("cannot split group {id}: {why}")));
    // The bucket's lock is taken before the group's row, in the order the dead-letter path takes
    // them, so the two never deadlock. A group's length never changes, nor its source and kind.
    let bucket = sql::error_group_bucket(&mut *conn, id).await?;
    let Some((source, kind, Some(length))) = bucket else {
        return refuse("no such group with a learned template (merged, or from before templates?)".into());
    };
    lock_bucket(conn, &source, &kind, length).await?;
    let (tokens, fixed) = sql::error_group_lock_template(&mut *conn, id).await?;
    let template = Template { tokens, fixed: fixed as u64 };
    let Some(position) = template.wildcard_positions().nth(wildcard) else {
        return refuse(format!("its template has no wildcard number {}", wildcard + 1));
    };

    let members = members(conn, &source, id).await?;
    if members.len() as i64 > MAX_SPLIT_JOBS {
        return refuse(format!(
            "it has more than {MAX_SPLIT_JOBS} dead jobs; retry or discard some first, or split them with `backstop regroup`"
        ));
    }
    let mut shares: BTreeMap<String, Share> = BTreeMap::new();
    for (job, error, died_at) in members {
        let Some(error) = error else { continue };
        let signature = Signature::of(&error);
        if !template.covers(&Template::exact(&signature)) {
            continue; // an operator's merge brought it in under another template: it stays
        }
        let share = shares.entry(signature.tokens[position].clone()).or_default();
        share.ids.push(job);
        share.first = Some(share.first.map_or(died_at, |first| first.min(died_at)));
        if share.last.as_ref().is_none_or(|(last, _, _)| died_at >= *last) {
            share.last = Some((died_at, job, error));
        }
        let hour = died_at.duration_trunc(TimeDelta::hours(1)).unwrap_or(died_at);
        *share.hours.entry(hour).or_default() += 1;
    }
    if shares.is_empty() {
        return refuse("none of its dead jobs is left to split (retried or discarded)".into());
    }
    if shares.len() > MAX_SPLIT_VALUES {
        return refuse(format!(
            "its dead jobs have {} different values there: that part is a variable, not the name of a problem (at most {MAX_SPLIT_VALUES})",
            shares.len()
        ));
    }
    // Most dead jobs first; among equals the one seen first: the first keeps the group.
    let mut shares: Vec<(String, Share)> = shares.into_iter().collect();
    shares.sort_by(|(_, a), (_, b)| b.ids.len().cmp(&a.ids.len()).then(a.first.cmp(&b.first)));

    let mut made = Vec::new();
    for (value, share) in &shares[1..] {
        let split = template.fixed_at(position, value);
        let other = move_share(conn, id, &source, &kind, &split, share).await?;
        made.push(SplitGroup { id: other, value: value.clone(), jobs: share.ids.len() });
    }
    let (value, share) = &shares[0];
    set_template(conn, id, &source, &kind, &template.fixed_at(position, value)).await?;
    Ok(Split { kept: SplitGroup { id, value: value.clone(), jobs: share.ids.len() }, others: made })
}

/// The group's dead jobs, with the error each was grouped by: Backstop's own, or another
/// source's as Backstop recorded them (graphile-worker's still in its table).
async fn members(conn: &mut PgConnection, source: &str, id: i64) -> sqlx::Result<Vec<Member>> {
    sql::error_group_members(conn, source == "graphile_worker", id, MAX_SPLIT_JOBS + 1).await
}

/// Moves one value's dead jobs, counts and hourly arrivals from group `from` to the group of
/// `template`: the one that has exactly that template already, or a new one with `from`'s
/// status. Returns its id.
async fn move_share(
    conn: &mut PgConnection,
    from: i64,
    source: &str,
    kind: &str,
    template: &Template,
    share: &Share,
) -> sqlx::Result<i64> {
    let moved = share.ids.len() as i64;
    let (last_seen, sample_job, sample_error) = share.last.clone().expect("a share has a job");
    let first_seen = share.first.unwrap_or(last_seen);
    let message = template.render();
    let existing = sql::error_group_lock_by_message(&mut *conn, source, kind, &message).await?;
    let to = match existing {
        Some(to) => {
            sql::error_group_add_moved(&mut *conn, to, moved, first_seen, last_seen, template.fixed as i64)
                .await?;
            to
        }
        None => {
            let new = sql::SplitOff {
                source,
                kind,
                message: &message,
                sample_error: &sample_error,
                sample_job_id: sample_job,
                moved,
                first_seen,
                last_seen,
                tokens: &template.tokens,
                fixed: template.fixed as i64,
            };
            sql::error_group_insert_split(&mut *conn, from, &new).await?
        }
    };
    sql::error_group_remove_moved(&mut *conn, from, moved).await?;
    let (hours, counts): (Vec<DateTime<Utc>>, Vec<i64>) = share.hours.iter().map(|(h, n)| (*h, *n)).unzip();
    sql::error_group_arrivals_move(&mut *conn, from, to, &hours, &counts).await?;
    sql::error_group_move_jobs(conn, source == "graphile_worker", to, &share.ids).await?;
    Ok(to)
}
