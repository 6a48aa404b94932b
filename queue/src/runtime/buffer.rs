//! A queue's local buffer of claimed jobs, between its fetcher and its executors, with an
//! adaptive size.
//!
//! The fetcher keeps about `target` jobs buffered. The target starts at the queue's
//! concurrency and doubles (up to the maximum) whenever executors found the buffer empty
//! since the last claim while the claim came back full: short jobs then get big claims,
//! which is where throughput comes from. When executors never wait, it shrinks back, so a
//! process running slow jobs never hoards work that other processes could start.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify, mpsc};

use crate::sql::ClaimedJob;

#[derive(Debug)]
pub(crate) struct Buffer {
    pub rx: Mutex<mpsc::Receiver<ClaimedJob>>,
    /// Woken when executors have drained the buffer to half the target.
    pub low: Notify,
    /// Executors that found the buffer empty since the fetcher last looked.
    pub starved: AtomicUsize,
    pub target: AtomicUsize,
    pub min: usize,
    pub max: usize,
    pub adaptive: bool,
}

impl Buffer {
    /// `fixed`: a prefetch set by the user (no adaptation); otherwise adapt between the
    /// concurrency and `max`.
    pub fn new(concurrency: usize, fixed: Option<usize>, max: usize) -> (Self, mpsc::Sender<ClaimedJob>) {
        let (min, max, adaptive) = match fixed {
            Some(n) => (n.max(1), n.max(1), false),
            None => (concurrency.max(1), max.max(concurrency).max(1), true),
        };
        let (tx, rx) = mpsc::channel(max);
        let buffer = Self {
            rx: Mutex::new(rx),
            low: Notify::new(),
            starved: AtomicUsize::new(0),
            target: AtomicUsize::new(min),
            min,
            max,
            adaptive,
        };
        (buffer, tx)
    }

    pub fn target(&self) -> usize {
        self.target.load(Ordering::Relaxed)
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
