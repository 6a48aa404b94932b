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
//!   their priority, and the urgent lane (`urgent_lane`) claims jobs more urgent than the
//!   cursor only at once (from the head, but never reaching the backlog's part of the index),
//!   leaving the cursor where it was; the fetcher's next claim does the same if the lane has
//!   not, and finds nothing;
//! - jobs handed back unstarted (they keep their `run_at`): the hand-back notifies the queue
//!   without a priority, which sends the next claim to the head;
//! - scheduled jobs more urgent than the cursor coming due: every poll interval a claim looks
//!   for work more urgent than the cursor, which reads only that part of the index;
//! - jobs whose insert committed late with an older `run_at`, and rows another transaction had
//!   locked when the cursor passed: a claim from the head every `HEAD_EVERY_POLLS` poll
//!   intervals, and after any claim from the cursor that came back short (straight away,
//!   before the fetcher sleeps).

use std::time::Duration;

use tokio::time::Instant;

use super::wake::Announced;
use crate::sql::{ClaimFrom, ClaimKey, ClaimedJob};

/// How many poll intervals apart the safety-net claims from the head are. Each reads every
/// index entry the drain has left since the last vacuum (up to 2,000,000 at 10 M waiting), so
/// they are rarer than the cheap look for more urgent work, which runs every poll interval.
const HEAD_EVERY_POLLS: u32 = 10;

pub(super) struct ClaimCursor {
    after: Option<ClaimKey>,
    /// How often to look for jobs more urgent than the cursor that no notification announced
    /// (scheduled ones coming due).
    urgent_every: Duration,
    last_urgent: Option<Instant>,
    head_every: Duration,
    last_head: Option<Instant>,
    /// The priority of the last job claimed: buffered work is about this urgent.
    last_priority: Option<i16>,
}

impl ClaimCursor {
    /// A cursor that looks for more urgent work every `poll` and claims from the head every
    /// `HEAD_EVERY_POLLS` polls.
    pub fn new(poll: Duration) -> Self {
        Self {
            after: None,
            urgent_every: poll,
            last_urgent: None,
            head_every: poll.saturating_mul(HEAD_EVERY_POLLS),
            last_head: None,
            last_priority: None,
        }
    }

    /// The priority of the last job claimed, the urgency of buffered work: the urgent lane
    /// claims announced work more urgent than this at once (see `urgent_lane`).
    pub fn last_claimed_priority(&self) -> Option<i16> {
        self.last_priority
    }

    /// Where the claim about to be made reads from, given what was announced since the last
    /// claim.
    pub fn start(&mut self, now: Instant, announced: Announced) -> ClaimFrom {
        let due = |last: Option<Instant>, every: Duration| {
            last.is_none_or(|last| now.duration_since(last) >= every)
        };
        match self.after {
            Some(_) if due(self.last_head, self.head_every) || announced.unspecified => {}
            Some(key) => {
                let announced_urgent = announced.most_urgent.is_some_and(|priority| priority < key.priority);
                if announced_urgent || key.priority > i16::MIN && due(self.last_urgent, self.urgent_every) {
                    self.last_urgent = Some(now);
                    return ClaimFrom::MoreUrgentThan(key.priority);
                }
                return ClaimFrom::After(key);
            }
            None => {}
        }
        self.after = None;
        self.last_head = Some(now);
        self.last_urgent = Some(now);
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
    fn the_last_claimed_priority_is_the_last_job_of_the_last_claim_that_got_any() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(cursor.last_claimed_priority(), None, "nothing claimed yet");
        claim(&mut cursor, t0, NONE, &[job(-2, 1), job(0, 2)], 5);
        assert_eq!(cursor.last_claimed_priority(), Some(0));
        claim(&mut cursor, t0, NONE, &[], 5);
        assert_eq!(cursor.last_claimed_priority(), Some(0), "an empty claim changes nothing");
    }

    #[test]
    fn more_urgent_work_is_looked_for_every_poll_and_the_head_read_every_ten() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        assert_eq!(claim(&mut cursor, t0, NONE, &[job(0, 1)], 1), Head);
        assert!(matches!(claim(&mut cursor, t0 + SECOND / 2, NONE, &[job(0, 2)], 1), After(_)));
        assert_eq!(
            claim(&mut cursor, t0 + SECOND, NONE, &[], 1),
            MoreUrgentThan(0),
            "a poll after the head claim"
        );
        let from = claim(&mut cursor, t0 + SECOND * 3 / 2, NONE, &[job(0, 3)], 1);
        assert!(matches!(from, After(_)), "the poll counts from the last look");
        assert_eq!(cursor.start(t0 + 2 * SECOND, NONE), MoreUrgentThan(0));
        assert!(matches!(cursor.start(t0 + 9 * SECOND + SECOND / 2, NONE), MoreUrgentThan(0) | After(_)));
        assert_eq!(cursor.start(t0 + 10 * SECOND, NONE), Head, "ten polls after the last head claim");
    }

    #[test]
    fn nothing_is_more_urgent_than_the_most_urgent_priority() {
        let t0 = Instant::now();
        let mut cursor = ClaimCursor::new(SECOND);
        claim(&mut cursor, t0, NONE, &[job(i16::MIN, 1)], 1);
        assert!(matches!(cursor.start(t0 + 2 * SECOND, NONE), After(_)));
    }
}
