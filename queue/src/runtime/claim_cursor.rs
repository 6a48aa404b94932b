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
//!   their priority, and one more urgent than the cursor makes the next claim one of jobs more
//!   urgent than the cursor only (from the head, but never reaching the backlog's part of the
//!   index), leaving the cursor where it was;
//! - jobs whose insert committed late with an older `run_at`, jobs handed back or rescued
//!   (they keep their `run_at`), scheduled jobs more urgent than the cursor that came due, and
//!   rows another transaction had locked: the next claim after `head_every` starts at the head,
//!   and so does the next one after any claim that came back short. A short claim from the
//!   cursor goes straight on to the head before the fetcher sleeps.

use std::time::Duration;

use tokio::time::Instant;

use super::wake::Announced;
use crate::sql::{ClaimFrom, ClaimKey, ClaimedJob};

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

    /// Where the claim about to be made reads from, given what was announced since the last
    /// claim.
    pub fn start(&mut self, now: Instant, announced: Announced) -> ClaimFrom {
        let head_due = self.last_head.is_none_or(|last| now.duration_since(last) >= self.head_every);
        match self.after {
            Some(_) if head_due || announced.unspecified => {}
            Some(key) => {
                return match announced.most_urgent {
                    Some(priority) if priority < key.priority => ClaimFrom::MoreUrgentThan(key.priority),
                    _ => ClaimFrom::After(key),
                };
            }
            None => {}
        }
        self.after = None;
        self.last_head = Some(now);
        ClaimFrom::Head
    }

    /// After a claim from `from` that asked for `wanted` jobs and got `jobs` (in claim order;
    /// `None`: it failed). A full batch from the head or the cursor moves the cursor to its
    /// last job; anything less, or an error, sends the next claim to the head. A claim of
    /// more urgent jobs leaves the cursor alone.
    pub fn claimed(&mut self, from: ClaimFrom, jobs: Option<&[ClaimedJob]>, wanted: usize) {
        if matches!(from, ClaimFrom::MoreUrgentThan(_)) {
            if jobs.is_none() {
                self.after = None;
            }
            return;
        }
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

    use ClaimFrom::{After, Head, MoreUrgentThan};

    /// A claim: where it read from, then what it got.
    fn claim(
        cursor: &mut ClaimCursor,
        at: Instant,
        announced: Announced,
        got: &[ClaimedJob],
        wanted: usize,
    ) -> ClaimFrom {
        let from = cursor.start(at, announced);
        cursor.claimed(from, Some(got), wanted);
        from
    }

    #[test]
    fn a_full_batch_moves_the_cursor_to_its_last_job() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 1), job(0, 2)], 2), Head, "the first claim");
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 3), job(1, 4)], 2), After(job(0, 2).claim_key()));
        assert_eq!(cursor.start(t0, NONE), After(job(1, 4).claim_key()));
    }

    #[test]
    fn a_short_batch_or_an_error_sends_the_next_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        claim(&mut cursor, t0, NONE, &[job(0, 1)], 2);
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 2), job(0, 3)], 2), Head);
        assert!(matches!(claim(&mut cursor, t0, NONE, &[], 2), After(_)));
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 4), job(0, 5)], 2), Head);
        let from = cursor.start(t0, NONE);
        assert!(matches!(from, After(_)));
        cursor.claimed(from, None, 2);
        assert_eq!(cursor.start(t0, NONE), Head, "after an error");
    }

    #[test]
    fn work_more_urgent_than_the_cursor_is_claimed_alone_and_the_cursor_stays() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        claim(&mut cursor, t0, NONE, &[job(3, 1)], 1);
        let at_1 = After(job(3, 1).claim_key());
        assert_eq!(
            claim(&mut cursor, t0, priority(3), &[job(3, 2)], 1),
            at_1,
            "same priority: ahead of the cursor"
        );
        let at_2 = After(job(3, 2).claim_key());
        assert_eq!(claim(&mut cursor, t0, priority(i16::MAX), &[job(3, 3)], 1), at_2);
        let at_3 = After(job(3, 3).claim_key());
        // Less than asked for, and still the cursor stays: the backlog is not drained.
        assert_eq!(claim(&mut cursor, t0, priority(2), &[job(2, 9)], 5), MoreUrgentThan(3));
        assert_eq!(cursor.start(t0, NONE), at_3);
        let from = cursor.start(t0, priority(i16::MIN));
        assert_eq!(from, MoreUrgentThan(3));
        cursor.claimed(from, None, 1);
        assert_eq!(cursor.start(t0, NONE), Head, "after a failed claim");
    }

    #[test]
    fn an_announcement_without_a_priority_sends_the_next_claim_to_the_head() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        claim(&mut cursor, t0, NONE, &[job(3, 1)], 1);
        assert_eq!(cursor.start(t0, UNSPECIFIED), Head);
    }

    #[test]
    fn announced_work_is_urgent_when_more_urgent_than_the_last_claimed_job() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert!(!cursor.more_urgent_than_claimed(priority(i16::MIN)), "nothing claimed yet");
        claim(&mut cursor, t0, NONE, &[job(-2, 1), job(0, 2)], 5);
        assert!(cursor.more_urgent_than_claimed(priority(-1)));
        assert!(!cursor.more_urgent_than_claimed(priority(0)));
        assert!(!cursor.more_urgent_than_claimed(UNSPECIFIED), "pause, run now: not urgent");
        assert!(!cursor.more_urgent_than_claimed(NONE));
        claim(&mut cursor, t0, NONE, &[], 5);
        assert!(cursor.more_urgent_than_claimed(priority(-1)), "an empty claim changes nothing");
    }

    #[test]
    fn the_head_is_read_at_least_every_interval() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 1)], 1), Head);
        assert!(matches!(claim(&mut cursor, t0 + SECOND / 2, NONE, &[job(0, 2)], 1), After(_)));
        assert_eq!(claim(&mut cursor, t0 + SECOND, NONE, &[job(0, 3)], 1), Head, "a second after the last");
        let from = claim(&mut cursor, t0 + SECOND + SECOND / 2, NONE, &[job(0, 4)], 1);
        assert!(matches!(from, After(_)), "the interval counts from the last head claim");
        assert_eq!(cursor.start(t0 + 2 * SECOND, NONE), Head);
    }
}
