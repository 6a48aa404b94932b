//! Recurring jobs from cron expressions, run once per tick however many processes run them:
//! the schedule and its ticks here, the loop that fires them in `runtime/cron_loop.rs`.
//!
//! Every runner registers its schedules in `backstop.cron_schedules`. When a tick is due, each
//! process tries to lock the schedule's row (`FOR UPDATE SKIP LOCKED`); the one that gets it
//! enqueues the tick's job and moves `last_tick` forward in the same transaction, so the
//! others find nothing left to do. Times are UTC.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use croner::Cron;

use crate::{Error, NewJob, Result};

/// What to do with ticks that passed while no runner was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedTicks {
    /// Run nothing for missed ticks; wait for the next one. A tick counts as missed when it
    /// is over a minute late.
    Skip,
    /// Run once for all the missed ticks together (the default): a nightly report that missed
    /// three nights runs once, now.
    RunOnce,
    /// Run every missed tick, up to this many (the most recent ones).
    RunAll {
        /// The most jobs one catch-up enqueues.
        max: usize,
    },
}

/// How late a tick may be and still count as on time for [`MissedTicks::Skip`].
const ON_TIME_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// A recurring job: a name, a cron expression (5 fields, or 6 with seconds first), and the job
/// to enqueue at each tick.
///
/// ```
/// use backstop::{CronSchedule, MissedTicks, NewJob};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct NightlyReport;
/// # impl backstop::Job for NightlyReport { const KIND: &'static str = "nightly_report"; }
///
/// let nightly = CronSchedule::new("nightly-report", "0 3 * * *", NewJob::new(&NightlyReport))
///     .missed_ticks(MissedTicks::RunOnce);
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub(crate) name: String,
    pub(crate) expression: String,
    pub(crate) job: NewJob,
    missed: MissedTicks,
}

impl CronSchedule {
    /// A schedule named `name` (its identity across restarts: keep it stable).
    pub fn new(name: impl Into<String>, expression: impl Into<String>, job: impl Into<NewJob>) -> Self {
        Self {
            name: name.into(),
            expression: expression.into(),
            job: job.into(),
            missed: MissedTicks::RunOnce,
        }
    }

    /// Chooses what happens to ticks missed during downtime (default [`MissedTicks::RunOnce`]).
    pub fn missed_ticks(mut self, policy: MissedTicks) -> Self {
        self.missed = policy;
        self
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn validate(&self) -> Result<()> {
        // Stored at registration: what PostgreSQL refuses must be refused here, not at every
        // start-up attempt.
        if let Ok(payload) = &self.job.payload
            && let Some(location) = crate::text::json_nul_location(payload)
        {
            return Err(Error::UnstorablePayload { kind: self.job.kind.clone(), location });
        }
        if let Ok(payload) = &self.job.payload {
            crate::text::check_payload_depth(&self.job.kind, payload)?;
        }
        for (what, value) in [
            ("a cron schedule name", &self.name),
            ("a job kind", &self.job.kind),
            ("a queue name", &self.job.queue),
        ] {
            crate::text::check_length(what, value, crate::MAX_NAME_BYTES)?;
        }
        if self.name.contains('\0') || self.job.kind.contains('\0') || self.job.queue.contains('\0') {
            return Err(Error::InvalidOption(format!(
                "cron schedule {:?}: its name, kind and queue must not contain the NUL character",
                self.name
            )));
        }
        self.parse().map(drop)
    }

    pub(crate) fn parse(&self) -> Result<Cron> {
        Cron::from_str(&self.expression).map_err(|e| Error::InvalidCron {
            name: self.name.clone(),
            expression: self.expression.clone(),
            reason: e.to_string(),
        })
    }

    /// The ticks after `last_tick` up to `now` that should get a job, oldest first.
    pub(crate) fn due_ticks(
        &self,
        cron: &Cron,
        last_tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        // croner carries `now`'s fraction of a second into the ticks it returns; ticks must be
        // whole seconds so every process computes the same ones.
        let now = now.trunc_subsecs(0);
        let Ok(latest) = cron.find_previous_occurrence(&now, true) else { return Vec::new() };
        if latest <= last_tick {
            return Vec::new();
        }
        match self.missed {
            MissedTicks::RunOnce => vec![latest],
            MissedTicks::Skip => {
                if now - latest <= ON_TIME_GRACE {
                    vec![latest]
                } else {
                    Vec::new()
                }
            }
            MissedTicks::RunAll { max } => {
                let mut ticks = vec![latest];
                while ticks.len() < max.max(1) {
                    let oldest = *ticks.last().expect("not empty");
                    match cron.find_previous_occurrence(&oldest, false) {
                        Ok(tick) if tick > last_tick => ticks.push(tick),
                        _ => break,
                    }
                }
                ticks.reverse();
                ticks
            }
        }
    }

    pub(crate) fn payload_text(&self) -> Result<&str> {
        self.job
            .payload
            .as_deref()
            .map_err(|reason| Error::Serialize { kind: self.job.kind.clone(), reason: reason.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap()
    }

    fn schedule(policy: MissedTicks) -> (CronSchedule, Cron) {
        let s = CronSchedule::new("hourly", "0 * * * *", NewJob::from_json("tick", &serde_json::json!({})))
            .missed_ticks(policy);
        let c = s.parse().unwrap();
        (s, c)
    }

    #[test]
    fn nothing_due_before_the_next_tick() {
        let (s, c) = schedule(MissedTicks::RunOnce);
        assert!(s.due_ticks(&c, at(10, 0), at(10, 59)).is_empty());
    }

    #[test]
    fn run_once_folds_missed_ticks_into_the_latest() {
        let (s, c) = schedule(MissedTicks::RunOnce);
        assert_eq!(s.due_ticks(&c, at(7, 0), at(10, 30)), vec![at(10, 0)]);
    }

    #[test]
    fn run_all_catches_up_oldest_first_within_the_cap() {
        let (s, c) = schedule(MissedTicks::RunAll { max: 2 });
        assert_eq!(s.due_ticks(&c, at(7, 0), at(10, 30)), vec![at(9, 0), at(10, 0)]);
        let (s, c) = schedule(MissedTicks::RunAll { max: 10 });
        assert_eq!(s.due_ticks(&c, at(7, 0), at(10, 30)), vec![at(8, 0), at(9, 0), at(10, 0)]);
    }

    #[test]
    fn ticks_are_whole_seconds_whatever_the_clock_says() {
        let (s, c) = schedule(MissedTicks::RunAll { max: 10 });
        let now = at(10, 30) + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(s.due_ticks(&c, at(9, 0), now), vec![at(10, 0)]);
    }

    #[test]
    fn skip_runs_only_an_on_time_tick() {
        let (s, c) = schedule(MissedTicks::Skip);
        assert_eq!(s.due_ticks(&c, at(9, 0), at(10, 0) + chrono::Duration::seconds(5)), vec![at(10, 0)]);
        assert!(s.due_ticks(&c, at(7, 0), at(10, 30)).is_empty());
    }

    #[test]
    fn a_bad_expression_is_a_clear_error() {
        let s = CronSchedule::new("bad", "61 * * * *", NewJob::from_json("tick", &serde_json::json!({})));
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("bad") && err.contains("61 * * * *"), "{err}");
    }
}
