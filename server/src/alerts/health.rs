//! Queue-health alerts: Slack hears when a queue falls behind (its oldest ready job has waited
//! too long), when jobs wait and no live worker serves the queue, and when dead letters spike
//! above their usual rate; and hears again when each is over.
//!
//! A check runs every minute as a cron job on queue `backstop`, so one console runs each tick
//! however many run. It reads every queue at once (`backstop::admin::queue_health`, no scans)
//! and compares what it sees with the open problems in `backstop.queue_health_alerts`. A
//! problem's alert is enqueued in the transaction that marks it announced, its all-clear in
//! the one that deletes it, so each goes out once, durably, paced and retried like every alert.
//!
//! Rules come from `--queue-alert`, one default and any number of per-queue overrides; see
//! [`QueueAlertRule`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use backstop::admin::{self, QueueHealth, WAITING_COUNT_CAP};
use backstop::triage::{ALERT_QUEUE, AlertWebhook};
use backstop::{Job, JobContext, JobError, NewJob, Worker};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::deliver::SlackAlert;

/// Deaths are counted over this window and compared with the usual count for one.
pub const DEAD_WINDOW: Duration = Duration::from_secs(600);

/// What can be wrong with a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Its oldest ready job has waited longer than the rule allows.
    FallingBehind,
    /// Jobs are ready and no live worker serves it.
    NoWorkers,
    /// More jobs died in the last [`DEAD_WINDOW`] than the rule allows against the usual.
    DeadSpike,
}

impl Problem {
    const ALL: [Problem; 3] = [Problem::NoWorkers, Problem::FallingBehind, Problem::DeadSpike];

    /// Its name in `backstop.queue_health_alerts.problem` and in alert payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::FallingBehind => "falling_behind",
            Problem::NoWorkers => "no_workers",
            Problem::DeadSpike => "dead_spike",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// The thresholds one queue is checked against; `None` turns that alert off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Alert when the oldest ready job has waited longer than this.
    pub waiting: Option<Duration>,
    /// Alert when jobs have waited with no live worker for this long.
    pub no_workers: Option<Duration>,
    /// Alert when deaths in the window reach this many times the usual count ...
    pub dead_spike: Option<f64>,
    /// ... and at least this many.
    pub dead_min: i64,
}

impl Thresholds {
    /// Ten minutes behind, two minutes unserved, five times the usual deaths and at least ten:
    /// quiet on a healthy system, and early enough to matter.
    pub const DEFAULT: Thresholds = Thresholds {
        waiting: Some(Duration::from_secs(600)),
        no_workers: Some(Duration::from_secs(120)),
        dead_spike: Some(5.0),
        dead_min: 10,
    };
}

/// One `--queue-alert` value: `[queue=Q1,Q2;]SETTING[;SETTING...]`, each setting one of
/// `waiting=DURATION`, `no-workers=DURATION`, `dead-spike=FACTORx`, `dead-min=COUNT`, with
/// `off` for any value, or `off` alone for every alert of those queues. Durations are
/// `90s`, `10m`, `2h`. Without `queue=` the rule changes the default for every queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueAlertRule {
    /// The queues it is for; empty: the default.
    pub queues: Vec<String>,
    pub waiting: Option<Option<Duration>>,
    pub no_workers: Option<Option<Duration>>,
    pub dead_spike: Option<Option<f64>>,
    pub dead_min: Option<i64>,
}

const RULE_USAGE: &str = "expected [queue=Q1,Q2;]SETTING;... with settings waiting=10m, \
                          no-workers=2m, dead-spike=5x, dead-min=10 (any of them `off`), or `off`";

impl FromStr for QueueAlertRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let mut rule = QueueAlertRule {
            queues: Vec::new(),
            waiting: None,
            no_workers: None,
            dead_spike: None,
            dead_min: None,
        };
        let mut settings = 0;
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').map_or((part, ""), |(n, v)| (n.trim(), v.trim()));
            match name {
                "queue" => {
                    rule.queues
                        .extend(value.split(',').map(str::trim).filter(|q| !q.is_empty()).map(String::from));
                    if rule.queues.is_empty() {
                        return Err(format!("queue= names no queue: {RULE_USAGE}"));
                    }
                    continue;
                }
                "off" if value.is_empty() => {
                    rule.waiting = Some(None);
                    rule.no_workers = Some(None);
                    rule.dead_spike = Some(None);
                }
                "waiting" => rule.waiting = Some(optional(value, parse_duration)?),
                "no-workers" => rule.no_workers = Some(optional(value, parse_duration)?),
                "dead-spike" => rule.dead_spike = Some(optional(value, parse_factor)?),
                "dead-min" => {
                    rule.dead_min = Some(value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("dead-min={value:?}: expected a whole number of at least 1")
                    })?);
                }
                _ => return Err(format!("unknown setting {name:?}: {RULE_USAGE}")),
            }
            settings += 1;
        }
        if settings == 0 {
            return Err(format!("no setting in {spec:?}: {RULE_USAGE}"));
        }
        Ok(rule)
    }
}

/// `off`, or what `parse` makes of the value.
fn optional<T>(value: &str, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if value == "off" { Ok(None) } else { parse(value).map(Some) }
}

/// `90s`, `10m`, `2h`: at least a minute (the check runs once a minute), at most a week.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?}: expected a duration such as 90s, 10m or 2h");
    let (number, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => return Err(bad()),
    };
    if !(60..=7 * 24 * 3600).contains(&seconds) {
        return Err(format!("{value:?}: between 1m and 168h (checks run once a minute)"));
    }
    Ok(Duration::from_secs(seconds))
}

/// `5x` or `5`: more than 1.
fn parse_factor(value: &str) -> Result<f64, String> {
    let factor: f64 = value
        .strip_suffix('x')
        .unwrap_or(value)
        .parse()
        .map_err(|_| format!("dead-spike={value:?}: expected a factor such as 5x"))?;
    if !(factor > 1.0 && factor <= 1_000.0) {
        return Err(format!("dead-spike={value:?}: the factor must be above 1 and at most 1000"));
    }
    Ok(factor)
}

/// Every `--queue-alert` rule, in order: later rules win over earlier ones for what they set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueAlertRules(Vec<QueueAlertRule>);

impl QueueAlertRules {
    pub fn new(rules: Vec<QueueAlertRule>) -> Self {
        QueueAlertRules(rules)
    }

    /// The thresholds for `queue`: the defaults, changed by each rule for every queue, then by
    /// each rule naming it.
    pub fn for_queue(&self, queue: &str) -> Thresholds {
        let mut thresholds = Thresholds::DEFAULT;
        let general = self.0.iter().filter(|r| r.queues.is_empty());
        let specific = self.0.iter().filter(|r| r.queues.iter().any(|q| q == queue));
        for rule in general.chain(specific) {
            thresholds.waiting = rule.waiting.unwrap_or(thresholds.waiting);
            thresholds.no_workers = rule.no_workers.unwrap_or(thresholds.no_workers);
            thresholds.dead_spike = rule.dead_spike.unwrap_or(thresholds.dead_spike);
            thresholds.dead_min = rule.dead_min.unwrap_or(thresholds.dead_min);
        }
        thresholds
    }

    /// Whether any queue can alert at all (`--queue-alert off` turns them all off).
    pub fn any_on(&self) -> bool {
        let on = |t: Thresholds| t.waiting.is_some() || t.no_workers.is_some() || t.dead_spike.is_some();
        on(self.for_queue("")) || self.0.iter().flat_map(|r| &r.queues).any(|q| on(self.for_queue(q)))
    }
}

/// What a check decides about one problem of one queue.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// It is there: recorded, and announced once it has lasted `hold`.
    Present { hold: Duration, detail: Value },
    /// It is not (or its alert is off): an open problem is closed.
    Absent,
}

/// Judges `problem` on `queue` by `thresholds`; `open` says whether it is announced already
/// (a queue falling behind stays so until it is back under half its threshold, so a backlog
/// hovering at the line does not alert every other minute).
fn judge(problem: Problem, queue: &QueueHealth, thresholds: &Thresholds, open: bool) -> Verdict {
    let wait = queue.oldest_wait().unwrap_or_default();
    let detail = || {
        json!({
            "waiting": queue.waiting,
            "waiting_capped": queue.waiting >= WAITING_COUNT_CAP,
            "oldest_wait_secs": wait.as_secs(),
            "workers": queue.workers,
            "dead_recent": queue.dead_recent,
            "dead_usual": (queue.dead_usual * 10.0).round() / 10.0,
            "window_secs": DEAD_WINDOW.as_secs(),
        })
    };
    // An operator paused it: waiting is what it is meant to do.
    let waits_on_purpose = queue.paused;
    let present = match problem {
        Problem::NoWorkers => thresholds
            .no_workers
            .filter(|_| !waits_on_purpose && queue.waiting > 0 && queue.workers == 0)
            .map(|hold| (hold, detail())),
        Problem::FallingBehind => thresholds
            .waiting
            // Its own alert says so when nothing serves the queue.
            .filter(|_| !waits_on_purpose && queue.workers > 0)
            .filter(|limit| if open { wait * 2 > *limit } else { wait > *limit })
            .map(|_| (Duration::ZERO, detail())),
        Problem::DeadSpike => thresholds
            .dead_spike
            .filter(|factor| {
                let usual_limit = (factor * queue.dead_usual).ceil() as i64;
                queue.dead_recent >= thresholds.dead_min.max(usual_limit)
            })
            .map(|_| (Duration::ZERO, detail())),
    };
    match present {
        Some((hold, detail)) => Verdict::Present { hold, detail },
        None => Verdict::Absent,
    }
}

/// What one check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Problems announced: `(queue, problem)`.
    pub announced: Vec<(String, Problem)>,
    /// Problems over after being announced.
    pub cleared: Vec<(String, Problem)>,
}

/// Reads every queue, opens, announces and closes problems by `rules`, and enqueues their
/// alerts for the webhooks that take them. Safe to run from several consoles at once.
pub async fn check_queue_health(pool: &PgPool, rules: &QueueAlertRules) -> backstop::Result<CheckOutcome> {
    let reading = admin::queue_health(pool, DEAD_WINDOW).await?;
    let open: HashMap<(String, String), Option<DateTime<Utc>>> = admin::health_alerts(pool)
        .await?
        .into_iter()
        .map(|alert| ((alert.queue, alert.problem), alert.alerted_at))
        .collect();
    let webhooks = backstop::triage::alert_webhooks(pool).await?;
    let mut outcome = CheckOutcome::default();
    let mut judged = HashSet::new();
    for queue in reading.iter().filter(|q| q.queue != ALERT_QUEUE) {
        let thresholds = rules.for_queue(&queue.queue);
        for problem in Problem::ALL {
            let key = (queue.queue.clone(), problem.as_str().to_owned());
            let announced = open.get(&key).is_some_and(Option::is_some);
            judged.insert(key.clone());
            match judge(problem, queue, &thresholds, announced) {
                Verdict::Present { hold, detail } => {
                    if announced {
                        continue;
                    }
                    let mut tx = pool.begin().await?;
                    let row = admin::health_alert_seen(&mut *tx, &queue.queue, problem.as_str()).await?;
                    let lasted = (queue.checked_at - row.seen_at).to_std().unwrap_or_default();
                    if row.alerted_at.is_none()
                        && lasted >= hold
                        && admin::health_alert_announce(&mut *tx, &queue.queue, problem.as_str(), &detail)
                            .await?
                    {
                        let alert = HealthNews {
                            queue: &queue.queue,
                            problem,
                            healthy: false,
                            detail,
                            since: row.seen_at,
                            at: queue.checked_at,
                        };
                        backstop::enqueue_many(&mut *tx, alert.jobs(&webhooks)).await?;
                        outcome.announced.push((queue.queue.clone(), problem));
                    }
                    tx.commit().await?;
                }
                Verdict::Absent if open.contains_key(&key) => {
                    if let Some(cleared) = clear(pool, &queue.queue, problem, queue, &webhooks).await? {
                        outcome.cleared.push(cleared);
                    }
                }
                Verdict::Absent => {}
            }
        }
    }
    // Problems of queues the reading no longer lists (nothing waits, nothing serves them, no
    // deaths for a day) are over too.
    let now = reading.first().map_or_else(Utc::now, |q| q.checked_at);
    for (queue, problem) in open.keys().filter(|key| !judged.contains(*key)) {
        let Some(problem) = Problem::parse(problem) else { continue };
        let gone = QueueHealth {
            queue: queue.clone(),
            oldest_waiting: None,
            waiting: 0,
            workers: 0,
            paused: false,
            dead_recent: 0,
            dead_usual: 0.0,
            checked_at: now,
        };
        if let Some(cleared) = clear(pool, queue, problem, &gone, &webhooks).await? {
            outcome.cleared.push(cleared);
        }
    }
    Ok(outcome)
}

/// Closes an open problem; if it had been announced (and this check is the one that closed it),
/// enqueues its all-clear in the same transaction.
async fn clear(
    pool: &PgPool,
    queue: &str,
    problem: Problem,
    now: &QueueHealth,
    webhooks: &[AlertWebhook],
) -> backstop::Result<Option<(String, Problem)>> {
    let mut tx = pool.begin().await?;
    let Some(row) = admin::health_alert_clear(&mut *tx, queue, problem.as_str()).await? else {
        return Ok(None);
    };
    let Some(alerted_at) = row.alerted_at else {
        // Seen, never announced (a worker restarting within the hold time): nothing to say.
        tx.commit().await?;
        return Ok(None);
    };
    let news = HealthNews {
        queue,
        problem,
        healthy: true,
        detail: json!({
            "waiting": now.waiting,
            "workers": now.workers,
            "oldest_wait_secs": now.oldest_wait().unwrap_or_default().as_secs(),
            "dead_recent": now.dead_recent,
            "lasted_secs": (now.checked_at - alerted_at).num_seconds().max(0),
        }),
        since: row.seen_at,
        at: now.checked_at,
    };
    backstop::enqueue_many(&mut *tx, news.jobs(webhooks)).await?;
    tx.commit().await?;
    Ok(Some((queue.to_owned(), problem)))
}

/// An alert or all-clear about to be enqueued.
struct HealthNews<'a> {
    queue: &'a str,
    problem: Problem,
    healthy: bool,
    detail: Value,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
}

impl HealthNews<'_> {
    /// One alert per webhook that takes this queue's health alerts: working, and routed to the
    /// queue or to every queue. A webhook routed by kind takes only its kinds' dead letters.
    fn alerts(&self, webhooks: &[AlertWebhook]) -> Vec<SlackAlert> {
        webhooks
            .iter()
            .filter(|w| w.active && w.broken_at.is_none() && w.kinds.is_none())
            .filter(|w| w.queues.as_ref().is_none_or(|queues| queues.iter().any(|q| q == self.queue)))
            .map(|webhook| SlackAlert {
                webhook: webhook.id.clone(),
                reason: if self.healthy { "queue_healthy" } else { "queue_unhealthy" }.into(),
                at: Some(self.at),
                since: Some(self.since),
                queue_health: Some(QueueHealthAlert {
                    queue: self.queue.to_owned(),
                    problem: self.problem.as_str().to_owned(),
                    detail: self.detail.clone(),
                }),
                ..SlackAlert::default()
            })
            .collect()
    }

    fn jobs(&self, webhooks: &[AlertWebhook]) -> Vec<NewJob> {
        self.alerts(webhooks).iter().map(NewJob::new).collect()
    }
}

/// What a queue-health alert job carries: the facts as the check saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueHealthAlert {
    pub queue: String,
    pub problem: String,
    pub detail: Value,
}

/// The cron job that runs a check (enqueued once a minute however many consoles run).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueHealthCheck {}

impl Job for QueueHealthCheck {
    const KIND: &'static str = "backstop.queue_health_check";
    const QUEUE: &'static str = ALERT_QUEUE;

    /// A check missed is made up by the next minute's: no point retrying this one for long.
    fn retry_policy() -> backstop::RetryPolicy {
        backstop::RetryPolicy::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(30))
            .max_attempts(3)
    }
}

#[derive(Debug, Clone)]
pub struct QueueHealthWorker {
    pub pool: PgPool,
    pub rules: Arc<QueueAlertRules>,
}

impl Worker for QueueHealthWorker {
    type Job = QueueHealthCheck;

    async fn work(&self, _: QueueHealthCheck, _: JobContext) -> Result<(), JobError> {
        let outcome = check_queue_health(&self.pool, &self.rules)
            .await
            .map_err(|e| JobError::retry(format!("database: {e}")))?;
        if !outcome.announced.is_empty() || !outcome.cleared.is_empty() {
            tracing::info!(announced = ?outcome.announced, cleared = ?outcome.cleared, "queue health changed");
        }
        Ok(())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(specs: &[&str]) -> QueueAlertRules {
        QueueAlertRules::new(specs.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn defaults_then_general_rules_then_the_queues_own() {
        let rules = rules(&[
            "waiting=30m",
            "queue=reports;off",
            "queue=billing,mail;dead-spike=3x;dead-min=2",
            "queue=mail;no-workers=off",
        ]);
        assert_eq!(
            rules.for_queue("other"),
            Thresholds { waiting: Some(Duration::from_secs(1800)), ..Thresholds::DEFAULT }
        );
        assert_eq!(
            rules.for_queue("reports"),
            Thresholds { waiting: None, no_workers: None, dead_spike: None, dead_min: 10 }
        );
        assert_eq!(rules.for_queue("billing").dead_spike, Some(3.0));
        assert_eq!(rules.for_queue("billing").dead_min, 2);
        assert_eq!(rules.for_queue("billing").no_workers, Thresholds::DEFAULT.no_workers);
        assert_eq!(rules.for_queue("mail").no_workers, None);
        assert!(rules.any_on());
        assert!(!self::rules(&["off"]).any_on());
        assert!(self::rules(&["off", "queue=mail;waiting=10m"]).any_on());
        assert!(QueueAlertRules::default().any_on(), "on by default");
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (spec, says) in [
            ("", "no setting"),
            ("queue=mail", "no setting"),
            ("queue=;waiting=5m", "names no queue"),
            ("waiting=5", "duration"),
            ("waiting=5d", "duration"),
            ("waiting=10s", "between 1m and 168h"),
            ("waiting=99999999999999999999h", "duration"),
            ("waiting=-5m", "duration"),
            ("dead-spike=0.5x", "above 1"),
            ("dead-spike=NaNx", "above 1"),
            ("dead-spike=infx", "above 1"),
            ("dead-min=0", "at least 1"),
            ("dead-min=<script>", "whole number"),
            ("wating=5m", "unknown setting"),
            ("off=yes", "unknown setting"),
        ] {
            let error = spec.parse::<QueueAlertRule>().unwrap_err();
            assert!(error.contains(says), "{spec:?}: {error}");
        }
        assert_eq!(
            "waiting=2h".parse::<QueueAlertRule>().unwrap().waiting,
            Some(Some(Duration::from_secs(7200)))
        );
        assert_eq!("dead-spike=off".parse::<QueueAlertRule>().unwrap().dead_spike, Some(None));
    }

    fn webhook(id: &str, queues: Option<&[&str]>, kinds: Option<&[&str]>, broken: bool) -> AlertWebhook {
        let names = |names: Option<&[&str]>| names.map(|n| n.iter().map(|s| s.to_string()).collect());
        AlertWebhook {
            id: id.into(),
            label: id.into(),
            queues: names(queues),
            kinds: names(kinds),
            broken_at: broken.then(Utc::now),
            broken_reason: None,
            blocked_until: None,
            sent: 0,
            last_sent_at: None,
            active: true,
        }
    }

    #[test]
    fn health_alerts_go_to_working_webhooks_routed_to_the_queue_and_not_by_kind() {
        let webhooks = [
            webhook("all", None, None, false),
            webhook("mail-only", Some(&["mail"]), None, false),
            webhook("billing-only", Some(&["billing"]), None, false),
            webhook("by-kind", None, Some(&["send_mail"]), false),
            webhook("broken", None, None, true),
        ];
        let news = HealthNews {
            queue: "mail",
            problem: Problem::NoWorkers,
            healthy: false,
            detail: json!({}),
            since: Utc::now(),
            at: Utc::now(),
        };
        let to: Vec<String> = news
            .alerts(&webhooks)
            .into_iter()
            .map(|alert| {
                assert_eq!(alert.reason, "queue_unhealthy");
                assert_eq!(alert.queue_health.unwrap().problem, "no_workers");
                alert.webhook
            })
            .collect();
        assert_eq!(to, ["all", "mail-only"]);
    }

    fn queue(waiting: i64, wait_secs: i64, workers: i64, dead_recent: i64, dead_usual: f64) -> QueueHealth {
        let now = Utc::now();
        QueueHealth {
            queue: "mail".into(),
            oldest_waiting: (waiting > 0).then(|| now - chrono::Duration::seconds(wait_secs)),
            waiting,
            workers,
            paused: false,
            dead_recent,
            dead_usual,
            checked_at: now,
        }
    }

    fn present(problem: Problem, queue: &QueueHealth, open: bool) -> bool {
        matches!(judge(problem, queue, &Thresholds::DEFAULT, open), Verdict::Present { .. })
    }

    #[test]
    fn each_problem_is_judged_by_its_threshold() {
        use Problem::*;
        // Ten minutes is the line; once announced, it stays until under five.
        assert!(!present(FallingBehind, &queue(5, 599, 2, 0, 0.0), false));
        assert!(present(FallingBehind, &queue(5, 601, 2, 0, 0.0), false));
        assert!(present(FallingBehind, &queue(5, 301, 2, 0, 0.0), true));
        assert!(!present(FallingBehind, &queue(5, 299, 2, 0, 0.0), true));
        // No worker: its own alert, not also "falling behind".
        assert!(present(NoWorkers, &queue(1, 5, 0, 0, 0.0), false));
        assert!(!present(FallingBehind, &queue(1, 3_600, 0, 0, 0.0), false));
        assert!(!present(NoWorkers, &queue(0, 0, 0, 0, 0.0), false), "nothing waits");
        // Paused on purpose.
        let paused = QueueHealth { paused: true, ..queue(9, 9_999, 0, 0, 0.0) };
        assert!(!present(NoWorkers, &paused, false) && !present(FallingBehind, &paused, false));
        // Deaths: at least ten, and five times the usual.
        assert!(!present(DeadSpike, &queue(0, 0, 1, 9, 0.0), false));
        assert!(present(DeadSpike, &queue(0, 0, 1, 10, 0.0), false));
        assert!(!present(DeadSpike, &queue(0, 0, 1, 49, 10.0), false));
        assert!(present(DeadSpike, &queue(0, 0, 1, 50, 10.0), false));
        // Off is off.
        let off = Thresholds { waiting: None, no_workers: None, dead_spike: None, dead_min: 1 };
        for problem in Problem::ALL {
            assert_eq!(judge(problem, &queue(9, 9_999, 0, 999, 0.0), &off, false), Verdict::Absent);
        }
    }
}
