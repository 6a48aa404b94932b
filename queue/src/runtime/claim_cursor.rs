//! Where a fetcher's next claim starts reading the claim index.
//!
//! Why: a claimed row leaves `jobs_claim_order` (a partial index on unlocked rows) only when
//! vacuum removes its entry. Until then every claim from the head of the queue walks the
//! entries of every job claimed since the last vacuum, and a draining queue inserts nothing
//! that would make btree prune them. Measured on a 2,000,000-job queue: 509 buffers per claim
//! of 500 at first, 3,475 after 600,000 claims. Starting after the last claimed job reads
//! about 507 however far the drain has gone.
//!
//! What a claim that starts after the cursor passes over, and how each is still found:
//! - jobs more urgent than the cursor's priority enqueued meanwhile: their notification says
//!   their priority, and one more urgent than the cursor sends the next claim to the head;
//! - jobs whose insert committed late with an older `run_at`, jobs handed back or rescued
//!   (they keep their `run_at`), scheduled jobs more urgent than the cursor that came due, and
//!   rows another transaction had locked: the next claim after `head_every` starts at the head,
//!   and so does the next one after any claim that came back short. A short claim from the
//!   cursor goes straight on to the head before the fetcher sleeps.

use std::time::Duration;

use tokio::time::Instant;

use super::wake::Urgency;
use crate::sql::{ClaimKey, ClaimedJob};

pub(super) struct ClaimCursor {
    after: Option<ClaimKey>,
    head_every: Duration,
    last_head: Option<Instant>,
}

impl ClaimCursor {
    /// A cursor that sends a claim to the head at least every `head_every`.
    pub fn new(head_every: Duration) -> Self {
        Self { after: None, head_every, last_head: None }
    }

    /// Where the claim about to be made starts (`None`: the head), given the most urgent
    /// work announced since the last claim.
    pub fn start(&mut self, now: Instant, announced: Option<Urgency>) -> Option<ClaimKey> {
        let more_urgent = |key: &ClaimKey| match announced {
            Some(Urgency::Priority(priority)) => priority < key.priority,
            Some(Urgency::Unknown) => true,
            None => false,
        };
        let head_due = self.last_head.is_none_or(|last| now.duration_since(last) >= self.head_every);
        if head_due || self.after.as_ref().is_some_and(more_urgent) {
            self.after = None;
        }
        if self.after.is_none() {
            self.last_head = Some(now);
        }
        self.after
    }

    /// After a claim that asked for `wanted` jobs and got `jobs` (in claim order): a full
    /// batch moves the cursor to its last job; anything less, or an error (`None`), sends the
    /// next claim to the head.
    pub fn claimed(&mut self, jobs: Option<&[ClaimedJob]>, wanted: usize) {
        self.after = match jobs {
            Some(jobs) if jobs.len() == wanted => jobs.last().map(ClaimedJob::claim_key),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn job(priority: i16, id: i64) -> ClaimedJob {
        ClaimedJob {
            id,
            queue: "q".into(),
            kind: "k".into(),
            payload: "{}".into(),
            priority,
            run_at: Utc.timestamp_opt(1_700_000_000 + id, 0).unwrap(),
            attempts: 1,
            max_attempts: 25,
            trace_context: None,
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_full_batch_moves_the_cursor_to_its_last_job() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(cursor.start(t0, None), None, "the first claim starts at the head");
        cursor.claimed(Some(&[job(0, 1), job(0, 2)]), 2);
        assert_eq!(cursor.start(t0, None), Some(job(0, 2).claim_key()));
        cursor.claimed(Some(&[job(0, 3), job(1, 4)]), 2);
        assert_eq!(cursor.start(t0, None), Some(job(1, 4).claim_key()));
    }

    #[test]
    fn a_short_batch_or_an_error_sends_the_next_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        cursor.start(t0, None);
        cursor.claimed(Some(&[job(0, 1)]), 2);
        assert_eq!(cursor.start(t0, None), None);
        cursor.claimed(Some(&[job(0, 2), job(0, 3)]), 2);
        assert!(cursor.start(t0, None).is_some());
        cursor.claimed(Some(&[]), 2);
        assert_eq!(cursor.start(t0, None), None);
        cursor.claimed(Some(&[job(0, 4), job(0, 5)]), 2);
        cursor.claimed(None, 2);
        assert_eq!(cursor.start(t0, None), None);
    }

    #[test]
    fn only_work_more_urgent_than_the_cursor_sends_a_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        cursor.start(t0, None);
        cursor.claimed(Some(&[job(3, 1)]), 1);
        assert!(cursor.start(t0, Some(Urgency::Priority(3))).is_some(), "same priority: ahead of the cursor");
        assert!(cursor.start(t0, Some(Urgency::Priority(i16::MAX))).is_some());
        assert_eq!(cursor.start(t0, Some(Urgency::Priority(2))), None, "more urgent: behind the cursor");
        cursor.claimed(Some(&[job(3, 2)]), 1);
        assert_eq!(cursor.start(t0, Some(Urgency::Unknown)), None, "unknown urgency: look at the head");
    }

    #[test]
    fn the_head_is_read_at_least_every_interval() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(cursor.start(t0, None), None);
        cursor.claimed(Some(&[job(0, 1)]), 1);
        assert!(cursor.start(t0 + SECOND / 2, None).is_some());
        cursor.claimed(Some(&[job(0, 2)]), 1);
        assert_eq!(cursor.start(t0 + SECOND, None), None, "a second after the last head claim");
        cursor.claimed(Some(&[job(0, 3)]), 1);
        assert!(
            cursor.start(t0 + SECOND + SECOND / 2, None).is_some(),
            "the interval counts from the last head claim"
        );
        assert_eq!(cursor.start(t0 + 2 * SECOND, None), None);
    }
}
