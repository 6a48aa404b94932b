//! `/healthz`, `/readyz` and `/metrics`: for load balancers, orchestrators and Prometheus.
//!
//! `/healthz` answers 200 while the process serves HTTP, whatever the database does. `/readyz`
//! answers 200 when the database answers and Backstop's migrations are current, 503 saying
//! which is not. Neither needs sign-in or a served host name: they say nothing about the jobs
//! (see `web::router`). `/metrics` is Prometheus' text format, read by whoever may read the
//! console's pages, or with `--metrics-token` (see `auth::require_metrics_reader`).
//!
//! Every number comes from what the overview already reads, never a scan of the jobs tables:
//! counts per queue and state from `admin::queue_counts` (exact up to 20,000 rows per table,
//! estimated from a block sample above, as the overview marks with "≈"), workers per queue and
//! the oldest waiting job from the same statement, completions and failures from the
//! per-minute counters (`backstop.job_stats`), alerts from the webhook rows and the alert
//! jobs, queue problems from the queue-health check's open rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use backstop::admin::{self, JobSearch, StatsRow};
use backstop::triage;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// The longest a readiness check waits for the database: a load balancer's probe gives up after
/// a few seconds, and an answer after that is no answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Dead alert jobs are counted up to this, as the overview does.
const ALERT_DEAD_CAP: i64 = 10_000;

/// What the health and metrics routes share: the console's pool (with its statement timeout)
/// and the job counters' running totals.
#[derive(Debug, Clone)]
pub struct Monitoring {
    pool: PgPool,
    counters: Arc<Mutex<JobCounters>>,
}

impl Monitoring {
    /// Counters count from the start of the minute `started` falls in (the console's start).
    pub fn new(pool: PgPool, started: DateTime<Utc>) -> Self {
        Monitoring { pool, counters: Arc::new(Mutex::new(JobCounters::new(started))) }
    }
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n".to_owned())
}

/// `GET /readyz`: the database answers within [`READY_TIMEOUT`] and Backstop's migrations are
/// all applied. The reason for a 503 is general (no database error text: the route is open to
/// anyone who reaches it); the log has the detail.
pub async fn readyz(State(monitoring): State<Monitoring>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, backstop::MIGRATOR.status(&monitoring.pool)).await {
        Ok(Ok(status)) if status.is_current() => plain(StatusCode::OK, "ready\n".to_owned()),
        Ok(Ok(status)) => {
            let why = match (status.failed, status.pending.first(), status.changed.first()) {
                (Some(version), _, _) => format!("Backstop's migration {version} failed part-way"),
                (None, Some(_), _) => {
                    format!("{} of Backstop's migrations are not applied", status.pending.len())
                }
                (None, None, Some(version)) => {
                    format!("Backstop's applied migration {version} differs from this build's")
                }
                (None, None, None) => "migrations are not current".to_owned(),
            };
            plain(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database did not answer");
            plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: the database did not answer\n".to_owned())
        }
        Err(_) => {
            tracing::warn!(timeout = ?READY_TIMEOUT, "readiness: the database did not answer in time");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database did not answer in time\n".to_owned(),
            )
        }
    }
}

/// `GET /metrics`: Prometheus' text format (version 0.0.4).
pub async fn metrics(State(monitoring): State<Monitoring>) -> Response {
    match render(&monitoring, Utc::now()).await {
        Ok(text) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not read the database");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics unavailable: the database did not answer\n".to_owned(),
            )
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn render(monitoring: &Monitoring, now: DateTime<Utc>) -> backstop::Result<String> {
    let pool = &monitoring.pool;
    let queues = admin::queue_counts(pool).await?;
    let totals = monitoring.counters.lock().await.read(pool).await?;
    let webhooks = triage::alert_webhooks(pool).await?;
    let alerts_pending = triage::waiting_alert_jobs(pool).await?;
    let alert_kind = JobSearch { kind: Some(triage::ALERT_KIND.to_owned()), ..JobSearch::default() };
    let alerts_dead = admin::count_dead_jobs(pool, &alert_kind, false, ALERT_DEAD_CAP).await?;
    let problems = admin::health_alerts(pool).await?;
    let oldest_transaction = admin::oldest_transaction_age(pool).await?;

    let mut out = Exposition::default();
    out.family(
        "backstop_jobs",
        "gauge",
        "Jobs per queue and state (scheduled, queued, running, retrying, dead), as the console's \
         overview counts them: exact up to 20000 rows per table, estimated from a sample above.",
        queues.iter().flat_map(|q| {
            [
                ("scheduled", q.scheduled),
                ("queued", q.queued),
                ("running", q.running),
                ("retrying", q.retrying),
                ("dead", q.dead),
            ]
            .map(|(state, n)| (vec![("queue", q.queue.as_str()), ("state", state)], n as f64))
        }),
    );
    out.family(
        "backstop_jobs_counts_exact",
        "gauge",
        "1 when backstop_jobs counted every row, 0 when it is an estimate from a sample.",
        [(vec![], if queues.iter().all(|q| q.exact) { 1.0 } else { 0.0 })],
    );
    out.family(
        "backstop_queue_oldest_waiting_seconds",
        "gauge",
        "How long the queue's longest-waiting ready job has been ready (0: none waiting). From the \
         same sample as backstop_jobs on large tables.",
        queues.iter().map(|q| {
            let waited =
                q.oldest_queued.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
            (vec![("queue", q.queue.as_str())], waited)
        }),
    );
    out.family(
        "backstop_queue_workers",
        "gauge",
        "Worker processes serving the queue, seen within the last minute (or their heartbeat timeout).",
        queues.iter().map(|q| (vec![("queue", q.queue.as_str())], q.workers as f64)),
    );
    out.family(
        "backstop_queue_concurrency",
        "gauge",
        "How many of the queue's jobs its live worker processes run at once, together.",
        queues.iter().map(|q| (vec![("queue", q.queue.as_str())], q.concurrency as f64)),
    );
    out.family(
        "backstop_queue_paused",
        "gauge",
        "1 when an operator paused the queue.",
        queues.iter().map(|q| (vec![("queue", q.queue.as_str())], if q.paused { 1.0 } else { 0.0 })),
    );
    for (name, help, pick) in [
        (
            "backstop_jobs_completed_total",
            "Jobs completed, from the per-minute counters, since the start of the minute this console started.",
            (|t: &Counts| t.completed) as fn(&Counts) -> i64,
        ),
        (
            "backstop_jobs_failed_total",
            "Failed attempts (retried or final), from the per-minute counters, since the start of the \
             minute this console started.",
            |t: &Counts| t.failed,
        ),
        (
            "backstop_jobs_dead_total",
            "Jobs moved to the dead-letter table (cancellations excluded), from the per-minute counters, \
             since the start of the minute this console started.",
            |t: &Counts| t.dead,
        ),
    ] {
        out.family(
            name,
            "counter",
            help,
            totals.iter().map(|((queue, kind), t)| {
                (vec![("queue", queue.as_str()), ("kind", kind.as_str())], pick(t) as f64)
            }),
        );
    }
    let ids: Vec<String> = webhooks.iter().map(|w| w.id.chars().take(8).collect()).collect();
    out.family(
        "backstop_alerts_sent_total",
        "counter",
        "Slack messages delivered to the webhook, as recorded in the database since it was first configured.",
        webhooks
            .iter()
            .zip(&ids)
            .map(|(w, id)| (vec![("webhook", w.label.as_str()), ("id", id.as_str())], w.sent as f64)),
    );
    out.family(
        "backstop_alert_webhook_broken",
        "gauge",
        "1 when Slack refused the webhook itself and alerts to it stopped.",
        webhooks.iter().zip(&ids).map(|(w, id)| {
            (
                vec![("webhook", w.label.as_str()), ("id", id.as_str())],
                if w.broken_at.is_some() { 1.0 } else { 0.0 },
            )
        }),
    );
    out.family(
        "backstop_alert_webhooks_broken",
        "gauge",
        "Webhooks Slack refused, to which no alerts go.",
        [(vec![], webhooks.iter().filter(|w| w.broken_at.is_some()).count() as f64)],
    );
    out.family(
        "backstop_alerts_pending",
        "gauge",
        "Alert jobs waiting to be sent (Slack unreachable, paced, or retrying).",
        [(vec![], alerts_pending as f64)],
    );
    out.family(
        "backstop_alerts_dead",
        "gauge",
        "Alert jobs that failed for good and wait in the dead-letter table (counted up to 10000).",
        [(vec![], alerts_dead as f64)],
    );
    out.family(
        "backstop_queue_problem",
        "gauge",
        "1 for each problem the queue-health check announced and has not seen end: falling_behind, \
         no_workers or dead_spike (see --queue-alert).",
        problems
            .iter()
            .filter(|p| p.alerted_at.is_some())
            .map(|p| (vec![("queue", p.queue.as_str()), ("problem", p.problem.as_str())], 1.0)),
    );
    out.family(
        "backstop_oldest_transaction_seconds",
        "gauge",
        "How long the oldest open transaction in the database (another session's, with an id or a \
         snapshot) has been open; 0: none. A long one keeps the index entries of every job claimed \
         since, and claims slow down until it ends.",
        [(vec![], oldest_transaction.map_or(0.0, |age| age.as_secs_f64()))],
    );
    Ok(out.0)
}

/// Prometheus' text exposition format, family by family.
#[derive(Debug, Default)]
struct Exposition(String);

impl Exposition {
    /// One metric family: its `HELP` and `TYPE` lines, then its samples. Label values are
    /// escaped (`\`, `"` and line feeds), so any queue name reads back as it is.
    fn family<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.0.push_str(name);
            if !labels.is_empty() {
                self.0.push('{');
                for (i, (label, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.0.push(',');
                    }
                    let value = value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n");
                    let _ = write!(self.0, "{label}=\"{value}\"");
                }
                self.0.push('}');
            }
            let _ = writeln!(self.0, " {value}");
        }
    }
}

/// Completed, failed and dead jobs of one queue and kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    completed: i64,
    failed: i64,
    dead: i64,
}

impl Counts {
    fn add(&mut self, row: &StatsRow) {
        self.completed += row.completed;
        self.failed += row.failed;
        self.dead += row.dead;
    }
}

/// Counters that never go down, from `backstop.job_stats`, whose rows maintenance deletes after
/// a while (a plain sum over the table would fall then, which Prometheus reads as a restart).
///
/// Rows of minutes well past are final: their sums are folded into `folded` once, and only the
/// newer rows are read again on each scrape, so a scrape reads a few minutes of rows however
/// long the console runs. A row is final once it is [`FINAL_AFTER`] older than the newest row:
/// the runtime's counter updates are stamped with their transaction's start, and its
/// transactions last well under that.
#[derive(Debug)]
struct JobCounters {
    /// Rows of minutes before this are in `folded`.
    folded_before: DateTime<Utc>,
    folded: BTreeMap<(String, String), Counts>,
}

/// How much older than the newest counter row a row must be to be folded for good.
const FINAL_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

impl JobCounters {
    fn new(started: DateTime<Utc>) -> Self {
        JobCounters { folded_before: started, folded: BTreeMap::new() }
    }

    /// Reads the rows since the folded minutes and returns the totals per queue and kind.
    async fn read(&mut self, pool: &PgPool) -> backstop::Result<BTreeMap<(String, String), Counts>> {
        // `stats_since` starts at the minute `folded_before` falls in.
        let rows = admin::stats_since(pool, self.folded_before).await?;
        Ok(self.fold(&rows))
    }

    /// Folds the rows that are final and returns folded plus the rest.
    fn fold(&mut self, rows: &[StatsRow]) -> BTreeMap<(String, String), Counts> {
        let newest = rows.iter().map(|row| row.minute).max();
        let final_before = newest.map(|newest| newest - FINAL_AFTER).filter(|&at| at > self.folded_before);
        let mut totals = self.folded.clone();
        for row in rows {
            let key = (row.queue.clone(), row.kind.clone());
            totals.entry(key.clone()).or_default().add(row);
            if final_before.is_some_and(|before| row.minute < before) {
                self.folded.entry(key).or_default().add(row);
            }
        }
        if let Some(before) = final_before {
            self.folded_before = before;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: DateTime<Utc>, queue: &str, completed: i64) -> StatsRow {
        StatsRow { minute, queue: queue.into(), kind: "k".into(), completed, failed: 1, dead: 0 }
    }

    #[test]
    fn counters_fold_final_minutes_once_and_never_go_down() {
        let start = "2026-12-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let minute = |m: i64| start + chrono::TimeDelta::minutes(m);
        let mut counters = JobCounters::new(start);
        let key = ("q".to_owned(), "k".to_owned());

        let first = counters.fold(&[row(minute(0), "q", 5), row(minute(1), "q", 2)]);
        assert_eq!(first[&key].completed, 7);
        assert_eq!(counters.folded_before, start, "nothing is two minutes older than the newest row yet");

        // Minute 1 grew; minute 5 arrived: minutes 0..3 are final now.
        let rows = [row(minute(0), "q", 5), row(minute(1), "q", 3), row(minute(5), "q", 1)];
        let second = counters.fold(&rows);
        assert_eq!(second[&key].completed, 9);
        assert_eq!(counters.folded_before, minute(3));
        assert_eq!(counters.folded[&key].completed, 8);

        // Next read starts at minute 3: what maintenance deletes before that no longer matters.
        let third = counters.fold(&[row(minute(5), "q", 4)]);
        assert_eq!(third[&key].completed, 12);
        assert_eq!(third[&key].failed, 3, "each row's failures once");
    }
}
