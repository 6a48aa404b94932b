//! One per queue: claims batches of runnable jobs into the queue's local buffer.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{ErrorBackoff, Shared, sleep_or_shutdown};
use crate::sql::{self, ClaimedJob};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: String,
    wake: Arc<Notify>,
    buffer: mpsc::Sender<ClaimedJob>,
    shutdown: CancellationToken,
) {
    let mut backoff = ErrorBackoff::default();
    loop {
        // Wait for room in the buffer, so we never claim jobs nobody can start soon.
        let permit = tokio::select! {
            permit = buffer.reserve() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let room = (1 + buffer.capacity()).min(shared.config.claim_batch);
        let claimed = match shared.pool.acquire().await {
            Ok(mut conn) => {
                let limit = i64::try_from(room).unwrap_or(i64::MAX);
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
                drop(permit);
                let delay = backoff.next_delay();
                tracing::warn!(queue, error = %e, retry_in = ?delay, "claiming jobs failed");
                if !sleep_or_shutdown(delay, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let got = jobs.len();
        let mut jobs = jobs.into_iter();
        match jobs.next() {
            Some(first) => permit.send(first),
            None => drop(permit),
        }
        for job in jobs {
            // Cannot wait long: the buffer had room for `room` jobs and only we send.
            if buffer.send(job).await.is_err() {
                return;
            }
        }
        if got < room {
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
