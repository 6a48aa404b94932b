//! The jobs this process holds: claimed, and their outcome not yet written. What the database
//! says this process holds beyond these is an orphaned lock, and is handed back.
//!
//! Claims and completions commit asynchronously (see `RunnerBuilder::durable_acks`), so a
//! database crash loses the last moments of them. A lost claim is harmless (the job is simply
//! unclaimed again), but a lost completion brings back the job locked by this process, which
//! is alive and heartbeating, so no rescue ever takes it back, while this process has
//! forgotten it. So does a completion the completer gave up on. Each fetcher therefore
//! compares, once a heartbeat interval, the jobs of its queue the database says this process
//! holds with the ones it knows it holds, and hands back the difference to run again
//! (at-least-once, as for a lost claim).
//!
//! Why it is exact: a job enters the set when its claim returns, before its claimer (the
//! queue's fetcher or urgent lane) does anything else, and leaves only once its outcome is
//! written (completion, failure, hand-back). The check takes its snapshot of the set before it
//! asks the database, while neither claims (see `fetcher::check_for_orphans`). So a job the
//! database shows locked by this process and missing from the snapshot had its outcome written
//! and then lost. A job can be held twice (its claim was lost, and the same process claimed it
//! again): the set counts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct Held(Mutex<HashMap<i64, u32>>);

impl Held {
    /// Notes claimed jobs (right after their claim returned).
    pub fn add(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.0.lock().expect("held lock");
        for id in ids {
            *held.entry(id).or_default() += 1;
        }
    }

    /// Forgets jobs whose outcome is written (or that are handed back).
    pub fn remove(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.0.lock().expect("held lock");
        for id in ids {
            if let Some(count) = held.get_mut(&id) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&id);
                }
            }
        }
    }

    /// The jobs held now (take it before asking the database what it thinks).
    pub fn snapshot(&self) -> HashSet<i64> {
        self.0.lock().expect("held lock").keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_held_twice_is_held_until_both_are_done() {
        let held = Held::default();
        held.add([1, 2, 1]);
        held.remove([1]);
        assert_eq!(held.snapshot(), HashSet::from([1, 2]));
        held.remove([1, 2]);
        assert!(held.snapshot().is_empty(), "{:?}", held.snapshot());
        held.remove([3]); // never held: nothing to forget
        assert!(held.snapshot().is_empty());
    }
}
