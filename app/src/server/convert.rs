//! From the queue's records to what pages show: times formatted, payloads redacted and
//! shortened, errors cut to their first line for lists.

use backstop::admin::{AuditEntry, DeadJob, HealthAlert, JobRecord, QueueCounts, StatsRow, WorkerProcess};
use backstop::graphile::GraphileJob;
use backstop::triage::{AlertWebhook, ErrorGroup, GroupArrivals, GroupStatus};
use chrono::{DateTime, DurationRound as _, Utc};
use serde_json::Value;

use crate::model::{
    AttemptRow, AuditRow, GroupRow, GroupState, JobDetail, JobRow, MinutePoint, Moment, QueueRow, State,
    WebhookRow, WorkerRow,
};

/// The console's redaction rules (`backstop::redact`): secret payload keys at any depth and
/// secret-shaped text in errors, unique keys and the audit log, plus the names given with
/// `--redact-keys`. Everything a page shows of a job goes through it here.
pub type RedactKeys = backstop::redact::Redactor;

/// Longest payload preview in a list, in characters.
const PREVIEW_CHARS: usize = 120;

/// A time relative to `now` and exact.
pub fn moment(at: DateTime<Utc>, now: DateTime<Utc>) -> Moment {
    let seconds = (now - at).num_seconds();
    let (n, ago) = (seconds.unsigned_abs(), seconds >= 0);
    let amount = match n {
        0..=4 => return Moment { relative: "just now".into(), exact: exact(at) },
        5..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    let relative = if ago { format!("{amount} ago") } else { format!("in {amount}") };
    Moment { relative, exact: exact(at) }
}

/// When the oldest open transaction began, if it is old enough for the overview to warn of it
/// ([`crate::model::LONG_TRANSACTION_SECS`]).
pub fn long_transaction(age: Option<std::time::Duration>, now: DateTime<Utc>) -> Option<Moment> {
    let age = age.filter(|age| age.as_secs() >= crate::model::LONG_TRANSACTION_SECS)?;
    let began = chrono::Duration::from_std(age).ok().and_then(|age| now.checked_sub_signed(age));
    Some(moment(began.unwrap_or(DateTime::<Utc>::MIN_UTC), now))
}

fn exact(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The first line of an error, masked.
fn first_line(text: &str, redact: &RedactKeys) -> String {
    redact.text(text.lines().next().unwrap_or_default()).into_owned()
}

fn preview(payload: &Value, redact: &RedactKeys) -> String {
    let text = redact.json(payload).to_string();
    if text.chars().count() <= PREVIEW_CHARS {
        text
    } else {
        let cut: String = text.chars().take(PREVIEW_CHARS).collect();
        format!("{cut}…")
    }
}

/// The payload as the detail page shows it, for reading and editing: each masked value names
/// its path (`"[redacted /user/token]"`), which edit-and-retry and reveal use.
fn pretty(payload: &Value, redact: &RedactKeys) -> String {
    let shown = redact.json_for_editing(payload);
    serde_json::to_string_pretty(&shown).unwrap_or_else(|_| shown.to_string())
}

/// A live job's list row.
pub fn live_row(job: &JobRecord, now: DateTime<Utc>, redact: &RedactKeys) -> JobRow {
    JobRow {
        id: job.id,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        state: job.state(now),
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: moment(job.created_at, now),
        when: moment(job.run_at, now),
        error_line: job.last_error.as_deref().map(|e| first_line(e, redact)),
        payload_preview: preview(&job.payload, redact),
        href: format!("/jobs/{}", job.id),
    }
}

/// A dead job's list row.
pub fn dead_row(job: &DeadJob, now: DateTime<Utc>, redact: &RedactKeys) -> JobRow {
    JobRow {
        id: job.id,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        state: State::Dead,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: moment(job.created_at, now),
        when: moment(job.died_at, now),
        error_line: job.last_error.as_deref().map(|e| first_line(e, redact)),
        payload_preview: preview(&job.payload, redact),
        href: format!("/jobs/{}", job.id),
    }
}

/// What the console says instead of a payload its role cannot read.
pub const PAYLOAD_HIDDEN: &str = "(payload not readable by the console's database role)";

/// A graphile-worker job's list row. Its queue is its named queue, or "(none)": graphile-worker
/// jobs without a queue name run in parallel.
pub fn graphile_row(job: &GraphileJob, now: DateTime<Utc>, redact: &RedactKeys) -> JobRow {
    let state = job.state(now);
    JobRow {
        id: job.id,
        queue: job.queue_name.clone().unwrap_or_else(|| "(no queue name)".into()),
        kind: job.task_identifier.clone(),
        state,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: moment(job.created_at, now),
        when: moment(if state == State::Dead { job.updated_at } else { job.run_at }, now),
        error_line: job.last_error.as_deref().map(|e| first_line(e, redact)),
        payload_preview: job
            .payload
            .as_ref()
            .map_or_else(|| PAYLOAD_HIDDEN.to_owned(), |p| preview(p, redact)),
        href: format!("/jobs/{}?source={}", job.id, backstop::graphile::SOURCE),
    }
}

/// Everything about a graphile-worker job. graphile-worker keeps only the latest error, so the
/// timeline has one entry.
pub fn graphile_detail(job: &GraphileJob, now: DateTime<Utc>, redact: &RedactKeys) -> JobDetail {
    JobDetail {
        row: graphile_row(job, now, redact),
        payload: job.payload.as_ref().map_or_else(|| PAYLOAD_HIDDEN.to_owned(), |p| pretty(p, redact)),
        masked: job.payload.as_ref().map(|p| redact.masked_paths(p)).unwrap_or_default(),
        priority: i16::try_from(job.priority).unwrap_or(i16::MAX),
        unique_key: job.key.as_deref().map(|key| redact.text(key).into_owned()),
        locked_by: job.locked_by.clone(),
        dead_reason: None,
        discarded: false,
        attempts: job
            .last_error
            .iter()
            .map(|error| AttemptRow {
                attempt: job.attempts,
                at: moment(job.updated_at, now),
                worker: "graphile-worker".into(),
                message: redact.text(error).into_owned(),
            })
            .collect(),
    }
}

fn attempts(
    errors: &[backstop::admin::AttemptError],
    now: DateTime<Utc>,
    redact: &RedactKeys,
) -> Vec<AttemptRow> {
    errors
        .iter()
        .map(|e| AttemptRow {
            attempt: e.attempt,
            at: moment(e.at, now),
            worker: e.worker.clone(),
            message: redact.text(&e.error).into_owned(),
        })
        .collect()
}

/// Everything about a live job.
pub fn live_detail(job: &JobRecord, now: DateTime<Utc>, redact: &RedactKeys) -> JobDetail {
    JobDetail {
        row: live_row(job, now, redact),
        payload: pretty(&job.payload, redact),
        masked: redact.masked_paths(&job.payload),
        priority: job.priority,
        unique_key: job.unique_key.as_deref().map(|key| redact.text(key).into_owned()),
        locked_by: job.locked_by.clone(),
        dead_reason: None,
        discarded: false,
        attempts: attempts(&job.errors, now, redact),
    }
}

/// Everything about a dead job.
pub fn dead_detail(job: &DeadJob, now: DateTime<Utc>, redact: &RedactKeys) -> JobDetail {
    JobDetail {
        row: dead_row(job, now, redact),
        payload: pretty(&job.payload, redact),
        masked: redact.masked_paths(&job.payload),
        priority: job.priority,
        unique_key: job.unique_key.as_deref().map(|key| redact.text(key).into_owned()),
        locked_by: None,
        dead_reason: Some(job.reason.clone()),
        discarded: job.discarded_at.is_some(),
        attempts: attempts(&job.errors, now, redact),
    }
}

/// A queue's counts.
pub fn queue_row(counts: &QueueCounts, now: DateTime<Utc>, problems: &[HealthAlert]) -> QueueRow {
    QueueRow {
        queue: counts.queue.clone(),
        counts: [counts.scheduled, counts.queued, counts.running, counts.retrying, counts.dead],
        oldest_queued: counts.oldest_queued.map(|at| moment(at, now)),
        paused: counts.paused,
        workers: counts.workers,
        concurrency: counts.concurrency,
        problems: problems
            .iter()
            .filter(|p| p.queue == counts.queue && p.alerted_at.is_some())
            .map(|p| crate::model::problem_label(&p.problem))
            .collect(),
    }
}

/// A worker process.
pub fn worker_row(worker: &WorkerProcess, now: DateTime<Utc>) -> WorkerRow {
    WorkerRow {
        id: worker.id.clone(),
        queues: worker.queues.clone(),
        started: moment(worker.started_at, now),
        last_seen: moment(worker.last_seen, now),
    }
}

/// An audit-log line. Its target is masked like a payload: a filter can hold a secret (a
/// payload search for a token, error words with a password in them).
pub fn audit_row(entry: &AuditEntry, now: DateTime<Utc>, redact: &RedactKeys) -> AuditRow {
    AuditRow {
        id: entry.id,
        at: moment(entry.at, now),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        target: redact.json(&entry.target).to_string(),
        requested: entry.requested,
        changed: entry.changed,
    }
}

/// The 60 minutes up to `now`, oldest first, each with the counters of every queue and kind
/// summed (minutes with no row are zero).
pub fn last_hour(stats: &[StatsRow], now: DateTime<Utc>) -> Vec<MinutePoint> {
    let this_minute = now.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(now);
    (0..60)
        .rev()
        .map(|back| {
            let minute = this_minute - chrono::Duration::minutes(back);
            let rows = stats.iter().filter(|row| row.minute == minute);
            let (completed, failed, dead) =
                rows.fold((0, 0, 0), |(c, f, d), row| (c + row.completed, f + row.failed, d + row.dead));
            MinutePoint { minute: minute.format("%H:%M").to_string(), completed, failed, dead }
        })
        .collect()
}

/// The `before` cursor of a dead-job page: the last row's `died_at` (microseconds) and id.
/// Hours in a triage sparkline.
pub const SPARKLINE_HOURS: i64 = 24;

/// An error group as listed, with its hourly arrivals (`arrivals`: this group's rows, any
/// order) as a 24-hour sparkline ending with the current hour, and its message masked.
pub fn group_row(
    group: &ErrorGroup,
    arrivals: &[GroupArrivals],
    now: DateTime<Utc>,
    redact: &RedactKeys,
) -> GroupRow {
    let this_hour = now.duration_trunc(chrono::Duration::hours(1)).unwrap_or(now);
    let mut sparkline = vec![0; SPARKLINE_HOURS as usize];
    for point in arrivals.iter().filter(|a| a.group_id == group.id) {
        let hours_ago = (this_hour - point.hour).num_hours();
        if (0..SPARKLINE_HOURS).contains(&hours_ago) {
            sparkline[(SPARKLINE_HOURS - 1 - hours_ago) as usize] += point.arrivals;
        }
    }
    let state = match group.status(now) {
        GroupStatus::New => GroupState::New,
        GroupStatus::Ongoing => GroupState::Ongoing,
        GroupStatus::Resolved => GroupState::Resolved,
        GroupStatus::Ignored => GroupState::Ignored,
    };
    let ignored_note = (state == GroupState::Ignored).then(|| {
        let mut parts = Vec::new();
        if let Some(until) = group.ignored_until {
            parts.push(format!("until {}", exact(until)));
        }
        if let Some(total) = group.ignored_until_total {
            parts.push(format!("for {} more", (total - group.total).max(0)));
        }
        parts.join(" or ")
    });
    GroupRow {
        id: group.id,
        source: group.source.clone(),
        kind: group.kind.clone(),
        queue: group.queue.clone(),
        message: redact.text(&group.message).into_owned(),
        total: group.total,
        first_seen: moment(group.first_seen, now),
        last_seen: moment(group.last_seen, now),
        state,
        ignored_note,
        sparkline,
    }
}

/// A webhook as the overview shows it: its label and routes, never its URL.
pub fn webhook_row(webhook: &AlertWebhook, now: DateTime<Utc>) -> WebhookRow {
    let mut routes = Vec::new();
    if let Some(queues) = &webhook.queues {
        routes.push(format!("queues {}", queues.join(", ")));
    }
    if let Some(kinds) = &webhook.kinds {
        routes.push(format!("kinds {}", kinds.join(", ")));
    }
    WebhookRow {
        label: webhook.label.clone(),
        active: webhook.active,
        routes: if routes.is_empty() { "every dead job".into() } else { routes.join("; ") },
        broken: webhook
            .broken_at
            .map(|at| format!("{} (since {})", webhook.broken_reason.clone().unwrap_or_default(), exact(at))),
        sent: webhook.sent,
        last_sent: webhook.last_sent_at.map(|at| moment(at, now)),
    }
}

pub fn dead_cursor(died_at: DateTime<Utc>, id: i64) -> String {
    format!("{}_{id}", died_at.timestamp_micros())
}

/// Reads a [`dead_cursor`]; `None` if it is not one.
pub fn parse_dead_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn previews_mask_secret_keys_at_any_depth() {
        let payload = serde_json::json!({
            "user": {"email": "a@example.com", "Password": "hunter2"},
            "items": [{"access_token": "abc"}, {"sku": 1}],
        });
        let text = preview(&payload, &RedactKeys::default());
        assert!(!text.contains("hunter2") && !text.contains("abc"), "{text}");
    }

    #[test]
    fn dead_cursors_round_trip() {
        let at =
            Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + chrono::Duration::microseconds(123_456);
        assert_eq!(parse_dead_cursor(&dead_cursor(at, 42)), Some((at, 42)));
        assert_eq!(parse_dead_cursor("42"), None);
        assert_eq!(parse_dead_cursor("x_1"), None);
    }

    #[test]
    fn times_read_naturally() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(moment(now, now).relative, "just now");
        assert_eq!(moment(now - chrono::Duration::seconds(30), now).relative, "30 s ago");
        assert_eq!(moment(now - chrono::Duration::minutes(5), now).relative, "5 min ago");
        // A transaction is worth a warning from five minutes on, with when it began.
        let secs = std::time::Duration::from_secs;
        assert_eq!(long_transaction(None, now), None);
        assert_eq!(long_transaction(Some(secs(299)), now), None);
        assert_eq!(long_transaction(Some(secs(300)), now).unwrap().relative, "5 min ago");
        assert_eq!(long_transaction(Some(secs(7200)), now).unwrap().relative, "2 h ago");
        assert_eq!(moment(now + chrono::Duration::hours(2), now).relative, "in 2 h");
        assert_eq!(moment(now, now).exact, "2026-11-25 12:00:00 UTC");
    }

    #[test]
    fn previews_are_cut_on_a_character_boundary() {
        let payload = serde_json::json!({ "text": "é".repeat(500) });
        let text = preview(&payload, &RedactKeys::default());
        assert_eq!(text.chars().count(), PREVIEW_CHARS + 1);
        assert!(text.ends_with('…'));
    }
}
