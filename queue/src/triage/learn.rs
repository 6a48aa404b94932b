//! Grouping in the database: the dead-letter transaction places the failure among the
//! templates learned so far (the same [`place`] as [`super::Grouper`]), stores what it learned,
//! and records the arrival, with the alerts a new or returning group calls for.
//!
//! Every process agrees because the decision is serialised: a transaction-scoped advisory lock
//! per (source, kind, length) is taken before the templates are read, so two processes
//! dead-lettering similar failures at once decide one after the other, each seeing the other's
//! templates. The lock is held to the end of the dead-letter transaction (about a millisecond).

use sqlx::PgConnection;

use super::signature::Signature;
use super::template::{Learned, MAX_CANDIDATES, Template, place};
use crate::sql::{self, TemplateRow};
use crate::text::StoredText;

/// The advisory lock space of template learning (the first of the two-key form), so its keys
/// never meet another use of advisory locks in the same database. "BSTG" in ASCII.
const LOCK_SPACE: i32 = 0x4253_5447;

/// What recording an arrival did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The group the failure joined.
    pub group_id: i64,
    /// The alert it enqueued: `new`, `reopened`, `unignored`, or none.
    pub alert: Option<String>,
    /// Groups merged into it because its template widened over theirs.
    pub merged: Vec<i64>,
}

/// Records one failure in its error group, learning templates as it goes, in the caller's
/// transaction (which should be the one that records the failure, so the two commit together).
/// Backstop's runner and the graphile-worker poller call it; so can anything that brings
/// failures of another source into triage.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
/// let mut tx = pool.begin().await?;
/// let arrival = backstop::triage::record_arrival(&mut tx, "cron_box", "nightly_export", "default",
///     "export 812 failed: disk full", 812).await?;
/// tx.commit().await?;
/// println!("group {} (alert: {:?})", arrival.group_id, arrival.alert);
/// # Ok(()) }
/// ```
pub async fn record_arrival(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    queue: &str,
    error: &str,
    job_id: i64,
) -> sqlx::Result<Arrival> {
    record(conn, source, kind, queue, error, job_id, false).await
}

/// [`record_arrival`] for one of Backstop's own dead jobs, which also takes its group, in the
/// same statement as the arrival: the dead-letter transaction's grouping is two round trips.
pub(crate) async fn record_dead_job_arrival(
    conn: &mut PgConnection,
    kind: &str,
    queue: &str,
    error: &str,
    dead_job_id: i64,
) -> sqlx::Result<Arrival> {
    record(conn, "backstop", kind, queue, error, dead_job_id, true).await
}

async fn record(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    queue: &str,
    error: &str,
    job_id: i64,
    is_dead_job: bool,
) -> sqlx::Result<Arrival> {
    // The sample kept on the group is bounded and storable like every stored error.
    let error = StoredText::new(error);
    let signature = Signature::of(error.as_str());
    let length = i32::try_from(signature.tokens.len()).unwrap_or(i32::MAX);
    let bucket = locked_bucket_templates(conn, source, kind, length).await?;
    let learned: Vec<Learned> = bucket.iter().map(|(learned, _)| learned.clone()).collect();
    let mut placement = place(&learned, &signature);
    let alias_of = |id: i64| bucket.iter().find(|(l, _)| l.id == id).and_then(|(_, target)| *target);

    let group = match placement.group {
        // A template an operator merged into another group: its failures go there, as they
        // are, and it learns nothing more.
        Some(alias) if alias_of(alias).is_some() => {
            placement.absorbed.clear();
            alias_of(alias)
        }
        Some(survivor) => {
            placement.absorbed.retain(|id| alias_of(*id).is_none());
            if placement.template_changed {
                absorb(conn, survivor, &placement.absorbed, source, kind, &placement.template).await?;
            }
            Some(survivor)
        }
        None => None,
    };
    let message = placement.template.render();
    let (group_id, alert) = sql::error_group_record_arrival(
        &mut *conn,
        &super::alerts::ARRIVAL_ALERTS,
        is_dead_job,
        source,
        kind,
        queue,
        &message,
        error.as_str(),
        job_id,
        &placement.template.tokens,
        group,
    )
    .await?;
    if group.is_none() && placement.template.fixed != 0 {
        // A new value where an operator split a group: the new group keeps the place fixed.
        sql::error_group_set_template_fixed(&mut *conn, group_id, placement.template.fixed as i64).await?;
    }
    Ok(Arrival { group_id, alert, merged: placement.absorbed })
}

/// Takes the lock that serialises learning in one bucket, to the end of the transaction.
pub(super) async fn lock_bucket(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    length: i32,
) -> sqlx::Result<()> {
    sql::error_template_bucket_lock(conn, LOCK_SPACE, source, kind, length).await
}

/// The templates a message of this source, kind and length is compared with, each with the
/// group it stands for when it is an operator's alias (a group merged into that one by hand),
/// read after taking the bucket's lock, in one round trip (`backstop.lock_error_templates`).
async fn locked_bucket_templates(
    conn: &mut PgConnection,
    source: &str,
    kind: &str,
    length: i32,
) -> sqlx::Result<Vec<(Learned, Option<i64>)>> {
    let rows = sql::error_template_bucket_lock_and_list(
        conn,
        LOCK_SPACE,
        source,
        kind,
        length,
        MAX_CANDIDATES as i32,
    )
    .await?;
    Ok(rows.into_iter().map(learned).collect())
}

fn learned((id, tokens, fixed, seen, alias_of): TemplateRow) -> (Learned, Option<i64>) {
    (Learned { id, template: Template { tokens, fixed: fixed as u64 }, seen }, alias_of)
}

/// Merges group `victim` into `survivor` (see `backstop.merge_error_groups`). A learned merge
/// drops the victim's template (the survivor's covers it); an operator's keeps it, as an alias
/// that sends the victim's future failures to the survivor.
async fn merge_groups_into(
    conn: &mut PgConnection,
    survivor: i64,
    victim: i64,
    keep_template: bool,
) -> sqlx::Result<()> {
    sql::error_group_merge(conn, survivor, victim, keep_template).await
}

/// A learned merge: `victims` join `survivor`, which takes `template` (the one that covers
/// them all).
async fn absorb(
    conn: &mut PgConnection,
    survivor: i64,
    victims: &[i64],
    source: &str,
    kind: &str,
    template: &Template,
) -> sqlx::Result<()> {
    for victim in victims {
        merge_groups_into(conn, survivor, *victim, false).await?;
    }
    set_template(conn, survivor, source, kind, template).await
}

/// Gives a group its widened template (and the message and fingerprint that follow from it).
/// A group from before templates whose normalised message happens to read the same holds
/// that fingerprint: it is the same problem, and merges in first.
pub(super) async fn set_template(
    conn: &mut PgConnection,
    id: i64,
    source: &str,
    kind: &str,
    template: &Template,
) -> sqlx::Result<()> {
    let message = template.render();
    let holder = sql::error_group_fingerprint_holder(&mut *conn, source, kind, &message, id).await?;
    if let Some(holder) = holder {
        merge_groups_into(conn, id, holder, false).await?;
    }
    sql::error_group_set_template(conn, id, &template.tokens, &message, source, kind, template.fixed as i64)
        .await
}

/// An operator's merge of two groups: one problem the grouper kept apart. The older group keeps
/// its id, status and template and takes the other's dead jobs, counts and history; the other's
/// id redirects to it, and its template stays as an alias, so its future failures join the older
/// group too (and alert nothing new). Both must be live groups of the same source and kind.
/// Returns the surviving group's id. Audit it in the same transaction.
pub async fn merge_groups(conn: &mut PgConnection, a: i64, b: i64) -> crate::Result<i64> {
    let rows = sql::error_group_lock_many(&mut *conn, &[a, b]).await?;
    let invalid =
        |why: &str| Err(crate::Error::InvalidOption(format!("cannot merge groups {a} and {b}: {why}")));
    match rows.as_slice() {
        _ if a == b => invalid("a group cannot merge with itself"),
        [older, newer] if older.3.is_some() || newer.3.is_some() => invalid("one of them is merged already"),
        [older, newer] if (&older.1, &older.2) != (&newer.1, &newer.2) => {
            invalid("they are failures of different sources or kinds")
        }
        [older, newer] => {
            merge_groups_into(conn, older.0, newer.0, true).await?;
            Ok(older.0)
        }
        _ => invalid("no such group"),
    }
}

/// What [`regroup`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regrouped {
    /// Groups from before templates that were given one (their own sample's).
    pub given_a_template: u64,
    /// Groups from before templates that turned out to be a problem another group already
    /// stands for, and merged into the older of the two.
    pub merged: u64,
    /// Groups from before templates still left (none once it has run to the end).
    pub remaining: u64,
}

/// Brings error groups from before learned templates (Backstop 0.1's normalised messages) into
/// template learning, oldest first, `batch` groups per progress report: each is placed by its latest
/// error, exactly as a new arrival would be (without counting an arrival or alerting). It keeps
/// its id, status and dead jobs, and takes that error's template; where the template is one
/// another group already has, the two merge into the older, which keeps its status. Idempotent:
/// a group with a template is never touched again, so it can be stopped and run again, and new
/// arrivals may go on meanwhile. `progress` is called after each batch.
pub async fn regroup(
    pool: &sqlx::PgPool,
    batch: i64,
    mut progress: impl FnMut(Regrouped),
) -> sqlx::Result<Regrouped> {
    let mut done = Regrouped::default();
    // Before any group (PostgreSQL's timestamps start in 4713 BC; chrono's minimum is older).
    let mut after = (chrono::DateTime::<chrono::Utc>::UNIX_EPOCH - chrono::Duration::days(365 * 1000), 0i64);
    loop {
        let old = sql::error_group_untemplated_page(pool, after, batch.max(1)).await?;
        let Some(last) = old.last() else {
            return Ok(done);
        };
        after = (last.1, last.0);
        for (id, _, source, kind, sample) in &old {
            // One transaction per group, the bucket locked before the group's row, in the
            // order the dead-letter path takes them: the two never deadlock.
            let mut tx = pool.begin().await?;
            let signature = Signature::of(sample);
            let length = i32::try_from(signature.tokens.len()).unwrap_or(i32::MAX);
            lock_bucket(&mut tx, source, kind, length).await?;
            let still_old = sql::error_group_lock_untemplated(&mut tx, *id).await?;
            if still_old.is_none() {
                continue; // regrouped meanwhile, by another run or an arrival
            }
            // The lock is held already; taking it again in the same transaction only stacks it.
            let learned: Vec<Learned> = locked_bucket_templates(&mut tx, source, kind, length)
                .await?
                .into_iter()
                .filter(|(_, alias_of)| alias_of.is_none())
                .map(|(learned, _)| learned)
                .collect();
            let placement = place(&learned, &signature);
            match placement.group {
                None => {
                    set_template(&mut tx, *id, source, kind, &placement.template).await?;
                    done.given_a_template += 1;
                }
                Some(other) => {
                    let (survivor, victim) = if other < *id { (other, *id) } else { (*id, other) };
                    let victims: Vec<i64> = placement.absorbed.iter().copied().chain([victim]).collect();
                    absorb(&mut tx, survivor, &victims, source, kind, &placement.template).await?;
                    done.merged += 1;
                }
            }
            tx.commit().await?;
        }
        let remaining = sql::error_group_untemplated_count(pool).await?;
        done.remaining = remaining.unsigned_abs();
        progress(done);
    }
}
