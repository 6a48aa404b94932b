//! What the server sends the pages: plain serializable data, shared by both halves of the app.
//! Times arrive already formatted (relative and exact), so the browser build needs no clock or
//! time zone logic and SSR and hydration render the same text.

use serde::{Deserialize, Serialize};

/// What a console user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also retries, discards, deletes, cancels and pauses.
    Operator,
}

/// The signed-in console user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// The name written to the audit log.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

impl CurrentUser {
    /// May this user change jobs and queues?
    pub fn can_act(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The states people see: the queue's own [`JobState`](backstop::JobState) on the server. The
/// browser build cannot link the queue crate (it needs a database driver), so it compiles the
/// same file, `queue/src/state.rs`: one definition, and serde names that match on both sides.
#[cfg(feature = "ssr")]
pub use backstop::JobState as State;
#[cfg(not(feature = "ssr"))]
pub use job_state::JobState as State;
#[cfg(not(feature = "ssr"))]
#[path = "../../queue/src/state.rs"]
mod job_state;

/// A state as people read it.
pub trait StateLabel {
    /// "Scheduled", "Queued", "Running", "Retrying", "Dead".
    fn label(self) -> &'static str;
}

impl StateLabel for State {
    fn label(self) -> &'static str {
        match self {
            State::Scheduled => "Scheduled",
            State::Queued => "Queued",
            State::Running => "Running",
            State::Retrying => "Retrying",
            State::Dead => "Dead",
        }
    }
}

/// A list filter. It lives in the URL (`?state=dead&queue=billing&payload=...`), so a link
/// reproduces the view and an action never loses it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// One state, or every live state when `None`.
    pub state: Option<State>,
    /// Exact queue name.
    pub queue: Option<String>,
    /// Exact kind.
    pub kind: Option<String>,
    /// JSON the payload must contain, as typed: `{"user_id": 42}`.
    pub payload: Option<String>,
    /// Words the last error must contain.
    pub error: Option<String>,
    /// Enqueued (live) or died (dead) at or after this UTC time, as the browser's
    /// `datetime-local` input writes it: `2026-11-25T14:30`.
    pub from: Option<String>,
    /// ... and before this UTC time.
    pub to: Option<String>,
    /// Only dead jobs of this error group (the triage page links here).
    pub group: Option<i64>,
    /// Whose jobs: Backstop's (`None`) or graphile-worker's (`Some(GRAPHILE)`).
    pub source: Option<String>,
}

/// The `source` of graphile-worker's jobs in URLs and filters.
pub const GRAPHILE: &str = "graphile_worker";

impl JobFilter {
    /// The filter's URL query parameters, in a fixed order, empty ones left out.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(state) = self.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        let texts = [
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("payload", &self.payload),
            ("error", &self.error),
            ("from", &self.from),
            ("to", &self.to),
        ];
        for (name, value) in texts {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                pairs.push((name, value.clone()));
            }
        }
        if let Some(group) = self.group {
            pairs.push(("group", group.to_string()));
        }
        if let Some(source) = &self.source {
            pairs.push(("source", source.clone()));
        }
        pairs
    }

    /// Builds a filter from URL parameters (unknown states are ignored).
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> JobFilter {
        let text = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        JobFilter {
            state: text("state").and_then(|s| s.parse().ok()),
            queue: text("queue"),
            kind: text("kind"),
            payload: text("payload"),
            error: text("error"),
            from: text("from"),
            to: text("to"),
            group: text("group").and_then(|g| g.parse().ok()),
            source: text("source").filter(|s| s == GRAPHILE),
        }
    }

    /// Whether anything beyond the state narrows the list.
    pub fn is_narrowed(&self) -> bool {
        self.query_pairs().iter().any(|(name, _)| !matches!(*name, "state" | "source"))
    }

    /// Whether anything beyond the state, the error group and the source narrows the list.
    pub fn is_narrowed_beyond_group(&self) -> bool {
        self.query_pairs().iter().any(|(name, _)| !matches!(*name, "state" | "group" | "source"))
    }

    /// Whether the list is graphile-worker's jobs.
    pub fn is_graphile(&self) -> bool {
        self.source.as_deref() == Some(GRAPHILE)
    }
}

/// A time shown two ways: relative for reading ("3 min ago"), exact for the tooltip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// "3 min ago", "in 20 s".
    pub relative: String,
    /// "2026-11-25 02:13:07 UTC".
    pub exact: String,
}

/// One row of a job list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRow {
    /// The job's id (kept when a dead job is retried).
    pub id: i64,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Its state now.
    pub state: State,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When it was enqueued.
    pub created_at: Moment,
    /// When it may run next (live jobs) or when it died (dead jobs).
    pub when: Moment,
    /// The first line of the last error, if any.
    pub error_line: Option<String>,
    /// The payload as compact JSON, shortened for the list (or why it cannot be shown).
    pub payload_preview: String,
    /// Its detail page.
    pub href: String,
}

/// One page of a job list, and where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPage {
    /// The rows, newest first.
    pub rows: Vec<JobRow>,
    /// The `before` cursor of the next page, if there may be one.
    pub next: Option<String>,
    /// Something the reader must know about these rows (a source read-only or its payloads
    /// hidden).
    pub notice: Option<String>,
}

/// One failed attempt, for the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// Which attempt.
    pub attempt: i32,
    /// When it failed.
    pub at: Moment,
    /// The worker process.
    pub worker: String,
    /// The whole message (first line is the summary, the rest a trace).
    pub message: String,
}

/// The attempts whose errors a job's history no longer holds, between two it kept: the
/// history keeps the first failed attempt and the newest (`backstop::MAX_KEPT_ATTEMPT_ERRORS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptsNotKept {
    /// The first attempt left out.
    pub from: i32,
    /// The last attempt left out.
    pub to: i32,
}

/// Where attempts are missing from a history, oldest first: each gap in the attempt numbers
/// of consecutive entries (a job retried from the dead letters counts from 1 again, which is
/// not a gap).
pub fn attempts_not_kept(attempts: &[AttemptRow]) -> Vec<(usize, AttemptsNotKept)> {
    attempts
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| pair[1].attempt > pair[0].attempt.saturating_add(1))
        .map(|(i, pair)| (i + 1, AttemptsNotKept { from: pair[0].attempt + 1, to: pair[1].attempt - 1 }))
        .collect()
}

/// Everything about one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The list row (state, attempts, times).
    pub row: JobRow,
    /// The payload, pretty-printed, with each masked value written `"[redacted /json/pointer]"`
    /// (see `backstop::redact`).
    pub payload: String,
    /// The JSON pointers of the masked values, in document order: what an operator may reveal.
    pub masked: Vec<String>,
    /// Lower runs first.
    pub priority: i16,
    /// The unique key, if any.
    pub unique_key: Option<String>,
    /// The worker holding it, if running.
    pub locked_by: Option<String>,
    /// Why it died (`exhausted`, `failed_now`, `cancelled`), for dead jobs.
    pub dead_reason: Option<String>,
    /// Whether an operator discarded it.
    pub discarded: bool,
    /// Every failed attempt, oldest first.
    pub attempts: Vec<AttemptRow>,
}

/// One queue on the overview and queues pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    /// Its name.
    pub queue: String,
    /// Jobs per state, in [`State::ALL`] order.
    pub counts: [i64; 5],
    /// How long the oldest ready job has waited.
    pub oldest_queued: Option<Moment>,
    /// Workers do not claim from it.
    pub paused: bool,
    /// Worker processes serving it now.
    pub workers: i64,
    /// How many of its jobs they run at once, together.
    pub concurrency: i64,
    /// What the queue-health check announced and has not seen end, in words: "Falling
    /// behind", "No worker", "Dead letters spiking".
    pub problems: Vec<String>,
}

/// A queue-health problem's name (`backstop.queue_health_alerts.problem`) in words.
pub fn problem_label(problem: &str) -> String {
    match problem {
        "falling_behind" => "Falling behind".to_owned(),
        "no_workers" => "No worker".to_owned(),
        "dead_spike" => "Dead letters spiking".to_owned(),
        other => other.replace('_', " "),
    }
}

/// A worker process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Its id.
    pub id: String,
    /// The queues it works.
    pub queues: Vec<String>,
    /// When it started.
    pub started: Moment,
    /// Its last heartbeat.
    pub last_seen: Moment,
}

/// Jobs finished and failed in one minute, for the throughput chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// "02:13".
    pub minute: String,
    /// Completed jobs.
    pub completed: i64,
    /// Failed attempts.
    pub failed: i64,
    /// Jobs that went to the dead-letter table.
    pub dead: i64,
}

/// The overview page's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Every known queue.
    pub queues: Vec<QueueRow>,
    /// `false` when the counts are estimates from a sample (very large tables).
    pub exact: bool,
    /// Worker processes that have checked in.
    pub workers: Vec<WorkerRow>,
    /// The last 60 minutes, oldest first, one point a minute.
    pub last_hour: Vec<MinutePoint>,
    /// graphile-worker's jobs, when the database has its schema.
    pub graphile: Option<GraphileOverview>,
    /// When the database's oldest open transaction began, if it has been open at least
    /// [`LONG_TRANSACTION_SECS`]: it holds back the cleanup claims depend on.
    pub long_transaction: Option<Moment>,
}

/// The overview warns of a transaction open at least this long (seconds). Shorter ones come
/// and go under load; one this old is usually forgotten, and claims slow down behind it.
pub const LONG_TRANSACTION_SECS: u64 = 300;

/// graphile-worker beside Backstop, on the overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphileOverview {
    /// "0.18 (migration 20)", or "unknown version (migration 9)".
    pub version: String,
    /// Jobs per state, in [`State::ALL`] order, each counted up to [`GRAPHILE_COUNT_LIMIT`].
    pub counts: [i64; 5],
    /// What the console cannot see or do there, if anything.
    pub notice: Option<String>,
}

/// Counting graphile-worker's jobs per state stops here (its table has no index for states).
pub const GRAPHILE_COUNT_LIMIT: i64 = 10_000;

impl Overview {
    /// Jobs per state over all queues, in [`State::ALL`] order.
    pub fn totals(&self) -> [i64; 5] {
        let mut totals = [0; 5];
        for queue in &self.queues {
            for (total, count) in totals.iter_mut().zip(queue.counts) {
                *total += count;
            }
        }
        totals
    }
}

/// What an action may do to jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// Dead: back to the queue. Retrying or scheduled: run now.
    Retry,
    /// Dead only: hide, keep for the record.
    Discard,
    /// Delete for good (running jobs are skipped).
    Delete,
    /// Live only: move to the dead-letter table as cancelled.
    Cancel,
}

impl JobAction {
    /// The verb on the button.
    pub fn label(self) -> &'static str {
        match self {
            JobAction::Retry => "Retry",
            JobAction::Discard => "Discard",
            JobAction::Delete => "Delete",
            JobAction::Cancel => "Cancel",
        }
    }

    /// Whether it destroys or hides something, so the console asks first.
    pub fn is_destructive(self) -> bool {
        !matches!(self, JobAction::Retry)
    }

    /// The actions that make sense for jobs in `state`.
    pub fn for_state(state: State) -> &'static [JobAction] {
        match state {
            State::Dead => &[JobAction::Retry, JobAction::Discard, JobAction::Delete],
            State::Running => &[],
            State::Scheduled | State::Queued | State::Retrying => {
                &[JobAction::Retry, JobAction::Cancel, JobAction::Delete]
            }
        }
    }
}

/// What an action did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Jobs it was asked to act on (the selection, or what the filter matched).
    pub matched: u64,
    /// Jobs it changed; the rest were running or otherwise left alone.
    pub changed: u64,
}

impl ActionReport {
    /// "Retried 98 of 100 jobs; 2 were skipped (running or changed meanwhile)."
    pub fn summary(&self, action: JobAction) -> String {
        let verb = match action {
            JobAction::Retry => "Retried",
            JobAction::Discard => "Discarded",
            JobAction::Delete => "Deleted",
            JobAction::Cancel => "Cancelled",
        };
        let plural = if self.matched == 1 { "job" } else { "jobs" };
        let skipped = self.matched.saturating_sub(self.changed);
        if skipped == 0 {
            format!("{verb} {} of {} {plural}.", self.changed, self.matched)
        } else {
            format!(
                "{verb} {} of {} {plural}; {skipped} skipped (running, or changed meanwhile).",
                self.changed, self.matched
            )
        }
    }
}

/// One step of an action on everything a filter matches. A big bulk action is done in steps
/// so the page can show progress; all steps share one audit-log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkProgress {
    /// Jobs this step matched.
    pub matched: u64,
    /// Jobs this step changed.
    pub changed: u64,
    /// Pass back as `after` to continue; `None` when nothing is left.
    pub next: Option<String>,
    /// The audit-log entry the steps add up in; pass it back with `after`.
    pub audit_id: i64,
}

/// One audit-log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Its id.
    pub id: i64,
    /// When.
    pub at: Moment,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what (JSON).
    pub target: String,
    /// Asked to change.
    pub requested: i64,
    /// Changed.
    pub changed: i64,
}

/// An error group's status as the triage page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// First seen (or back) within the last day.
    New,
    /// Open for longer.
    Ongoing,
    /// Marked fixed; the next arrival reopens it and alerts.
    Resolved,
    /// Silenced for a time or a number of arrivals.
    Ignored,
}

impl GroupState {
    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            GroupState::New => "New",
            GroupState::Ongoing => "Ongoing",
            GroupState::Resolved => "Resolved",
            GroupState::Ignored => "Ignored",
        }
    }
}

/// One error group on the triage page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    /// Its id (the group page is `/triage/<id>`).
    pub id: i64,
    /// `backstop` or `graphile_worker`.
    pub source: String,
    /// Its jobs' kind.
    pub kind: String,
    /// The queue of its latest job.
    pub queue: String,
    /// The normalised error.
    pub message: String,
    /// Dead jobs that joined it, ever.
    pub total: i64,
    /// When its first job died.
    pub first_seen: Moment,
    /// When its latest job died.
    pub last_seen: Moment,
    /// Its status now.
    pub state: GroupState,
    /// Until when, or until how many more, if ignored: "until 14:00 UTC", "for 100 more".
    pub ignored_note: Option<String>,
    /// Arrivals per hour over the last 24 hours, oldest first (24 numbers).
    pub sparkline: Vec<i64>,
}

/// One page of error groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPage {
    /// Most recently seen first.
    pub rows: Vec<GroupRow>,
    /// The `before` cursor of the next page, if there may be one.
    pub next: Option<String>,
}

/// Counting a group's dead jobs for its page stops here (shown as "1,000+"; the group's total
/// is exact anyway): counting 100,000 took 280 ms and 10,000 still up to 130 ms on the
/// benchmark, where a page should take a few.
pub const GROUP_DEAD_COUNT_LIMIT: i64 = 1_000;

/// The group page's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetail {
    /// The group as listed.
    pub row: GroupRow,
    /// Its latest real error, in full.
    pub sample_error: String,
    /// Its latest job.
    pub sample_job_id: i64,
    /// Its jobs still in the dead-letter table (not discarded), counted up to
    /// [`GROUP_DEAD_COUNT_LIMIT`].
    pub dead_now: i64,
    /// One label per wildcard of its template, in order (the word before it: `to <*>`): the
    /// places an operator can split it by.
    pub split_by: Vec<String>,
}

/// One group made by splitting a group (the first of a split keeps the split group's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPart {
    /// The group's id.
    pub id: i64,
    /// The value its messages have where the template varied.
    pub value: String,
    /// How many of the split group's dead jobs it holds.
    pub jobs: u64,
}

/// A change to a group's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChange {
    /// Fixed: the next arrival reopens it with an alert.
    Resolve,
    /// Open again (no alert).
    Reopen,
    /// Silence it for this many hours.
    IgnoreHours(u32),
    /// Silence it until this many more jobs arrive.
    IgnoreArrivals(u32),
}

impl GroupChange {
    /// The audit log's name for it.
    pub fn audit_name(self) -> &'static str {
        match self {
            GroupChange::Resolve => "resolve_group",
            GroupChange::Reopen => "reopen_group",
            GroupChange::IgnoreHours(_) | GroupChange::IgnoreArrivals(_) => "ignore_group",
        }
    }
}

/// A configured Slack webhook, as the overview shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    /// Host and last characters of its URL, never the URL.
    pub label: String,
    /// "all", or the queues and kinds it is routed.
    pub routes: String,
    /// Whether a running console is configured with it (only those get alerts).
    pub active: bool,
    /// Why Slack refused it for good, if it did.
    pub broken: Option<String>,
    /// Messages delivered.
    pub sent: i64,
    /// The latest delivery.
    pub last_sent: Option<Moment>,
}

/// Alerting as the overview shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsStatus {
    /// The configured webhooks (none: alerts are off).
    pub webhooks: Vec<WebhookRow>,
    /// Alert jobs waiting or retrying.
    pub pending: i64,
    /// Alert jobs that died (Slack down too long, or the webhook broken).
    pub dead: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_shows_where_attempts_were_left_out() {
        let row = |attempt| AttemptRow {
            attempt,
            at: Moment { relative: String::new(), exact: String::new() },
            worker: String::new(),
            message: String::new(),
        };
        let history: Vec<AttemptRow> = [1, 72, 73, 74].into_iter().map(row).collect();
        assert_eq!(attempts_not_kept(&history), vec![(1, AttemptsNotKept { from: 2, to: 71 })]);
        // Whole, retried from the dead letters (counting from 1 again), or empty: no gap.
        for whole in [vec![1, 2, 3], vec![1, 2, 1, 2], vec![], vec![5]] {
            let history: Vec<AttemptRow> = whole.into_iter().map(row).collect();
            assert_eq!(attempts_not_kept(&history), vec![]);
        }
        let history: Vec<AttemptRow> = [1, 3, 1, 2, 5].into_iter().map(row).collect();
        assert_eq!(
            attempts_not_kept(&history),
            vec![(1, AttemptsNotKept { from: 2, to: 2 }), (4, AttemptsNotKept { from: 3, to: 4 })]
        );
    }

    #[test]
    fn a_filter_survives_the_round_trip_through_the_url() {
        let filter = JobFilter {
            state: Some(State::Dead),
            queue: Some("billing".into()),
            kind: None,
            payload: Some(r#"{"user_id": 42}"#.into()),
            error: Some("timeout".into()),
            from: Some("2026-11-25T14:30".into()),
            to: None,
            group: Some(7),
            source: Some(GRAPHILE.into()),
        };
        let pairs = filter.query_pairs();
        let back =
            JobFilter::from_query(|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()));
        assert_eq!(back, filter);
        assert!(back.is_narrowed());
        assert!(!JobFilter { state: Some(State::Dead), ..JobFilter::default() }.is_narrowed());
    }

    #[test]
    fn every_state_has_a_label_and_a_url_name() {
        for state in State::ALL {
            assert!(!state.label().is_empty());
            assert_eq!(state.label().to_lowercase(), state.as_str(), "the label reads the URL name");
            let filter = JobFilter::from_query(|name| (name == "state").then(|| state.as_str().to_owned()));
            assert_eq!(filter.state, Some(state));
        }
    }

    #[test]
    fn reports_say_what_was_skipped() {
        assert_eq!(ActionReport { matched: 3, changed: 3 }.summary(JobAction::Retry), "Retried 3 of 3 jobs.");
        assert_eq!(
            ActionReport { matched: 100, changed: 98 }.summary(JobAction::Delete),
            "Deleted 98 of 100 jobs; 2 skipped (running, or changed meanwhile)."
        );
    }
}
