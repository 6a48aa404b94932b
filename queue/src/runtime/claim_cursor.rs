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

use super::wake::Announced;
use crate::sql::{ClaimKey, ClaimedJob};

pub(super) struct ClaimCursor {
    after: Option<ClaimKey>,
    head_every: Duration,
    last_head: Option<Instant>,
    /// The priority of the last job claimed: buffered work is about this urgent.
    last_priority: Option<i16>,
}

impl ClaimCursor {
    /// A cursor that sends a claim to the head at least every `head_every`.
    pub fn new(head_every: Duration) -> Self {
        Self { after: None, head_every, last_head: None, last_priority: None }
    }

    /// Whether announced work is more urgent than what was last claimed, so worth a claim
    /// now rather than after executors drain what is buffered.
    pub fn more_urgent_than_claimed(&self, announced: Announced) -> bool {
        match (announced.most_urgent, self.last_priority) {
            (Some(priority), Some(last)) => priority < last,
            _ => false,
        }
    }

    /// Where the claim about to be made starts (`None`: the head), given the most urgent
    /// work announced since the last claim.
    pub fn start(&mut self, now: Instant, announced: Announced) -> Option<ClaimKey> {
        let more_urgent = |key: &ClaimKey| {
            announced.unspecified || announced.most_urgent.is_some_and(|priority| priority < key.priority)
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
        if let Some(last) = jobs.and_then(<[ClaimedJob]>::last) {
            self.last_priority = Some(last.priority);
        }
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
    const NONE: Announced = Announced { most_urgent: None, unspecified: false };
    const UNSPECIFIED: Announced = Announced { most_urgent: None, unspecified: true };

    fn priority(priority: i16) -> Announced {
        Announced { most_urgent: Some(priority), unspecified: false }
    }

    #[test]
    fn a_full_batch_moves_the_cursor_to_its_last_job() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(cursor.start(t0, NONE), None, "the first claim starts at the head");
        cursor.claimed(Some(&[job(0, 1), job(0, 2)]), 2);
        assert_eq!(cursor.start(t0, NONE), Some(job(0, 2).claim_key()));
        cursor.claimed(Some(&[job(0, 3), job(1, 4)]), 2);
        assert_eq!(cursor.start(t0, NONE), Some(job(1, 4).claim_key()));
    }

    #[test]
    fn a_short_batch_or_an_error_sends_the_next_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        cursor.start(t0, NONE);
        cursor.claimed(Some(&[job(0, 1)]), 2);
        assert_eq!(cursor.start(t0, NONE), None);
        cursor.claimed(Some(&[job(0, 2), job(0, 3)]), 2);
        assert!(cursor.start(t0, NONE).is_some());
        cursor.claimed(Some(&[]), 2);
        assert_eq!(cursor.start(t0, NONE), None);
        cursor.claimed(Some(&[job(0, 4), job(0, 5)]), 2);
        cursor.claimed(None, 2);
        assert_eq!(cursor.start(t0, NONE), None);
    }

    #[test]
    fn only_work_more_urgent_than_the_cursor_sends_a_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        cursor.start(t0, NONE);
        cursor.claimed(Some(&[job(3, 1)]), 1);
        assert!(cursor.start(t0, priority(3)).is_some(), "same priority: ahead of the cursor");
        assert!(cursor.start(t0, priority(i16::MAX)).is_some());
        assert_eq!(cursor.start(t0, priority(2)), None, "more urgent: behind the cursor");
        cursor.claimed(Some(&[job(3, 2)]), 1);
        assert_eq!(cursor.start(t0, UNSPECIFIED), None, "unknown urgency: look at the head");
    }

    #[test]
    fn announced_work_is_urgent_when_more_urgent_than_the_last_claimed_job() {
        let mut cursor = ClaimCursor::new(SECOND);
        assert!(!cursor.more_urgent_than_claimed(priority(i16::MIN)), "nothing claimed yet");
        cursor.claimed(Some(&[job(-2, 1), job(0, 2)]), 5);
        assert!(cursor.more_urgent_than_claimed(priority(-1)));
        assert!(!cursor.more_urgent_than_claimed(priority(0)));
        assert!(!cursor.more_urgent_than_claimed(UNSPECIFIED), "pause, run now: not urgent");
        assert!(!cursor.more_urgent_than_claimed(NONE));
        cursor.claimed(Some(&[]), 5);
        assert!(cursor.more_urgent_than_claimed(priority(-1)), "an empty claim changes nothing");
    }

    #[test]
    fn the_head_is_read_at_least_every_interval() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(cursor.start(t0, NONE), None);
        cursor.claimed(Some(&[job(0, 1)]), 1);
        assert!(cursor.start(t0 + SECOND / 2, NONE).is_some());
        cursor.claimed(Some(&[job(0, 2)]), 1);
        assert_eq!(cursor.start(t0 + SECOND, NONE), None, "a second after the last head claim");
        cursor.claimed(Some(&[job(0, 3)]), 1);
        assert!(
            cursor.start(t0 + SECOND + SECOND / 2, NONE).is_some(),
            "the interval counts from the last head claim"
        );
        assert_eq!(cursor.start(t0 + 2 * SECOND, NONE), None);
    }
}
