//! One per queue, beside its fetcher: claims announced work more urgent than what the fetcher
//! last claimed, at once and on a connection of the runner's pool (sized with one for each
//! lane), and puts it in the buffer, which hands it to the next free executor.
//!
//! The fetcher's claims are batches (hundreds of rows, several milliseconds while a backlog of
//! millions drains), and while its buffer is full it waits for executors to take half of it.
//! An urgent job announced during either would wait for them. The lane does not: it claims
//! only jobs more urgent than the fetcher's cursor (`ClaimFrom::MoreUrgentThan`), which the
//! fetcher's own claims from the cursor would pass over, so the two rarely compete for rows,
//! and `SKIP LOCKED` settles it when they do.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::buffer::Buffer;
use super::fetcher::hand_back;
use super::wake::Wake;
use crate::sql::{self, ClaimFrom};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: String,
    wake: Arc<Wake>,
    buffer: Arc<Buffer>,
    claiming: Arc<Mutex<()>>,
    shutdown: CancellationToken,
) {
    loop {
        let announced = tokio::select! {
            announced = wake.next_priority() => announced,
            _ = shutdown.cancelled() => return,
        };
        let Some(claimed) = more_urgent_than_claimed(announced, wake.claimed()) else {
            continue;
        };
        let room = buffer.target().saturating_sub(buffer.len()).min(shared.config.claim_batch);
        let limit = i64::try_from(room.max(1)).unwrap_or(i64::MAX);
        // Held until the claimed jobs are in the held set: the fetcher's check for orphaned
        // locks waits for it (see `fetcher`).
        let claiming = claiming.lock().await;
        let jobs = match shared.ack_pool.acquire().await {
            Ok(mut conn) => {
                let from = ClaimFrom::MoreUrgentThan(claimed);
                sql::job_claim_batch(&mut conn, &queue, &shared.config.worker_id, limit, None, from).await
            }
            Err(e) => Err(e),
        };
        match jobs {
            Ok(jobs) => {
                shared.held.add(jobs.iter().map(|job| job.id));
                drop(claiming);
                if let Err(refused) = buffer.push(jobs) {
                    // The runner is stopping and has released its buffers already.
                    hand_back(&shared, &queue, refused).await;
                    return;
                }
            }
            // No retry of its own: the fetcher looks for work more urgent than its cursor
            // every poll interval, and its claims from the head find the rest.
            Err(e) => tracing::warn!(queue, error = %e, "claiming urgent jobs failed"),
        }
    }
}

/// The priority the lane claims work more urgent than, if the announced work is more urgent
/// than what the fetcher last claimed. Before the fetcher's first claim there is nothing to
/// overtake: that claim reads from the head.
fn more_urgent_than_claimed(announced: i16, claimed: Option<i16>) -> Option<i16> {
    claimed.filter(|&claimed| announced < claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_work_is_urgent_when_more_urgent_than_the_last_claimed_job() {
        assert_eq!(more_urgent_than_claimed(i16::MIN, None), None, "nothing claimed yet");
        assert_eq!(more_urgent_than_claimed(-1, Some(0)), Some(0));
        assert_eq!(more_urgent_than_claimed(0, Some(0)), None, "as urgent: ahead of the cursor");
        assert_eq!(more_urgent_than_claimed(5, Some(0)), None);
        assert_eq!(more_urgent_than_claimed(i16::MIN, Some(i16::MIN)), None);
    }
}
