//! A queue's local buffer of claimed jobs, between its fetcher and its executors: executors
//! take the most urgent job buffered, and the buffer's size adapts.
//!
//! Most urgent first, not first in: a job more urgent than a backlog is claimed ahead of it
//! (see `fetcher`), and must not then wait behind the hundreds of backlog jobs claimed before
//! it. Jobs of one priority still start in claim order (`ClaimKey`).
//!
//! The fetcher keeps about `target` jobs buffered. The target starts at the queue's
//! concurrency and doubles (up to the maximum) whenever executors found the buffer empty
//! since the last claim while the claim came back full: short jobs then get big claims,
//! which is where throughput comes from. When executors never wait, it shrinks back, so a
//! process running slow jobs never hoards work that other processes could start.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::sql::{ClaimKey, ClaimedJob};

#[derive(Debug)]
pub(crate) struct Buffer {
    jobs: Mutex<Jobs>,
    /// Woken when jobs are added (every waiting executor looks).
    added: Notify,
    /// Woken when executors have drained the buffer to half the target.
    pub low: Notify,
    /// Executors that found the buffer empty since the fetcher last looked.
    pub starved: AtomicUsize,
    pub target: AtomicUsize,
    pub min: usize,
    pub max: usize,
    pub adaptive: bool,
}

#[derive(Debug, Default)]
struct Jobs {
    heap: BinaryHeap<Reverse<Buffered>>,
    /// Set when the runner stops: nothing more goes in, so nothing is left behind unreleased.
    closed: bool,
}

/// A buffered job, ordered by its place in claim order.
#[derive(Debug)]
struct Buffered(ClaimKey, ClaimedJob);

impl PartialEq for Buffered {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Buffered {}
impl PartialOrd for Buffered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Buffered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Buffer {
    /// `fixed`: a prefetch set by the user (no adaptation); otherwise adapt between the
    /// concurrency and `max`.
    pub fn new(concurrency: usize, fixed: Option<usize>, max: usize) -> Self {
        let (min, max, adaptive) = match fixed {
            Some(n) => (n.max(1), n.max(1), false),
            None => (concurrency.max(1), max.max(concurrency).max(1), true),
        };
        Self {
            jobs: Mutex::new(Jobs::default()),
            added: Notify::new(),
            low: Notify::new(),
            starved: AtomicUsize::new(0),
            target: AtomicUsize::new(min),
            min,
            max,
            adaptive,
        }
    }

    pub fn target(&self) -> usize {
        self.target.load(Ordering::Relaxed)
    }

    /// Jobs buffered now.
    pub fn len(&self) -> usize {
        self.lock().heap.len()
    }

    /// Adds claimed jobs. After [`close`](Self::close) they are returned instead, for the
    /// caller to hand back.
    pub fn push(&self, jobs: Vec<ClaimedJob>) -> Result<(), Vec<ClaimedJob>> {
        {
            let mut buffered = self.lock();
            if buffered.closed {
                return Err(jobs);
            }
            buffered.heap.extend(jobs.into_iter().map(|job| Reverse(Buffered(job.claim_key(), job))));
        }
        self.added.notify_waiters();
        Ok(())
    }

    /// The most urgent buffered job, waiting for one if there is none; `None` once `shutdown`
    /// is cancelled (buffered jobs are then handed back, not started).
    pub async fn take(&self, shutdown: &CancellationToken) -> Option<ClaimedJob> {
        loop {
            // Registered before looking, so a push between the look and the wait still wakes us.
            let added = self.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            if shutdown.is_cancelled() {
                return None;
            }
            let (job, left) = {
                let mut buffered = self.lock();
                (buffered.heap.pop().map(|Reverse(Buffered(_, job))| job), buffered.heap.len())
            };
            if let Some(job) = job {
                if left * 2 <= self.target() {
                    self.low.notify_one();
                }
                return Some(job);
            }
            self.starved.fetch_add(1, Ordering::Relaxed);
            self.low.notify_one();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return None,
                _ = &mut added => {}
            }
        }
    }

    /// Takes everything buffered and accepts nothing more (the runner is stopping).
    pub fn close(&self) -> Vec<ClaimedJob> {
        let mut buffered = self.lock();
        buffered.closed = true;
        buffered.heap.drain().map(|Reverse(Buffered(_, job))| job).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        // Nothing panics while holding it; a poisoned lock still holds consistent jobs.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called by the fetcher after each claim.
    pub fn adapt(&self, starved: usize, claim_was_full: bool) {
        if !self.adaptive {
            return;
        }
        let target = self.target();
        let next = if starved > 0 && claim_was_full {
            (target * 2).min(self.max)
        } else if starved == 0 {
            (target * 3 / 4).max(self.min)
        } else {
            target
        };
        self.target.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;

    fn job(priority: i16, id: i64) -> ClaimedJob {
        ClaimedJob {
            id,
            queue: "q".into(),
            kind: "k".into(),
            payload: "{}".into(),
            priority,
            run_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            attempts: 1,
            max_attempts: 25,
            trace_context: None,
        }
    }

    #[tokio::test]
    async fn executors_take_the_most_urgent_job_then_claim_order() {
        let buffer = Buffer::new(1, None, 10);
        let never = CancellationToken::new();
        buffer.push(vec![job(0, 1), job(0, 2), job(0, 3)]).unwrap();
        assert_eq!(buffer.take(&never).await.unwrap().id, 1);
        // Claimed later, but more urgent than everything buffered.
        buffer.push(vec![job(-1, 9), job(0, 4)]).unwrap();
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.push(buffer.take(&never).await.unwrap().id);
        }
        assert_eq!(taken, [9, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_waiting_executor_is_woken_by_a_push() {
        let buffer = Arc::new(Buffer::new(1, None, 10));
        let never = CancellationToken::new();
        let waiting = tokio::spawn({
            let buffer = Arc::clone(&buffer);
            async move { buffer.take(&never).await.map(|j| j.id) }
        });
        // Whether or not the executor is already waiting, the push must reach it.
        tokio::task::yield_now().await;
        buffer.push(vec![job(0, 7)]).unwrap();
        let taken = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap();
        assert_eq!(taken, Some(7));
        assert!(buffer.starved.load(Ordering::Relaxed) <= 1);
    }

    #[tokio::test]
    async fn shutdown_stops_takers_and_close_returns_everything_left() {
        let buffer = Buffer::new(1, None, 10);
        let shutdown = CancellationToken::new();
        buffer.push(vec![job(0, 1), job(0, 2)]).unwrap();
        shutdown.cancel();
        assert!(buffer.take(&shutdown).await.is_none(), "nothing starts after shutdown");
        let mut left: Vec<i64> = buffer.close().into_iter().map(|j| j.id).collect();
        left.sort();
        assert_eq!(left, [1, 2]);
        let refused = buffer.push(vec![job(0, 3)]).unwrap_err();
        assert_eq!(refused.len(), 1, "a closed buffer hands jobs back to the caller");
        assert_eq!(buffer.len(), 0);
    }
}
