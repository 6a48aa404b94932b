//! One per queue: claims batches of runnable jobs into the queue's local buffer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::buffer::Buffer;
use super::{ErrorBackoff, Shared, sleep_or_shutdown};
use crate::sql::{self, ClaimedJob};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: String,
    wake: Arc<Notify>,
    buffer: Arc<Buffer>,
    tx: mpsc::Sender<ClaimedJob>,
    shutdown: CancellationToken,
) {
    let mut backoff = ErrorBackoff::default();
    loop {
        let target = buffer.target();
        let buffered = buffer.max - tx.capacity();
        let want = target.saturating_sub(buffered).min(shared.config.claim_batch);
        if buffered > 0 && buffered * 2 >= target || want == 0 {
            // Enough is buffered: claim more when executors have taken half of it, so a
            // claim never waits on executors and executors rarely wait on a claim.
            tokio::select! {
                _ = buffer.low.notified() => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let starved = buffer.starved.swap(0, Ordering::Relaxed);
        let claimed = match shared.ack_pool.acquire().await {
            Ok(mut conn) => {
                let limit = i64::try_from(want).unwrap_or(i64::MAX);
                sql::job_claim_batch(&mut conn, &queue, &shared.config.worker_id, limit, None).await
            }
            Err(e) => Err(e),
        };
        let jobs = match claimed {
            Ok(jobs) => {
                backoff.reset();
                jobs
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue, error = %e, retry_in = ?delay, "claiming jobs failed");
                if !sleep_or_shutdown(delay, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let got = jobs.len();
        buffer.adapt(starved, got == want);
        for job in jobs {
            // Never waits: the buffer holds `max` jobs and we claimed at most the free room.
            if tx.send(job).await.is_err() {
                return;
            }
        }
        if got < want {
            // The queue is drained: sleep until a NOTIFY, the poll interval, or shutdown. A
            // notification that arrived since the claim is stored by `Notify`, so none is lost.
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(shared.config.poll_interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
