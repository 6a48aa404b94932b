//! Deletes completed jobs in batches: one statement for however many finished meanwhile.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{ErrorBackoff, Shared};
use crate::sql;

/// Upper bound for one `DELETE ... WHERE id = ANY($1)`.
const MAX_BATCH: usize = 2_000;

/// How many times a batch is retried when the database is unreachable. After that the jobs
/// stay locked by this worker, which forgets them: its fetchers then find the locks it does
/// not hold and hand the jobs back to run again (at-least-once; see `held`).
const MAX_TRIES: u32 = 50;

pub(super) async fn run(shared: Arc<Shared>, mut completed: mpsc::UnboundedReceiver<i64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(id) = completed.recv().await {
        batch.push(id);
        // No waiting to fill the batch: when idle a completion is written at once, under load
        // the batch grows by itself while the previous statement runs.
        while batch.len() < MAX_BATCH {
            match completed.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        let mut backoff = ErrorBackoff::default();
        for attempt in 1..=MAX_TRIES {
            let result = match shared.ack_pool.acquire().await {
                Ok(mut conn) => sql::job_complete_many(&mut conn, &batch, &shared.config.worker_id).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => break,
                Err(e) if attempt == MAX_TRIES => {
                    tracing::error!(jobs = batch.len(), error = %e, "could not record completed jobs; they will run again");
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(jobs = batch.len(), attempt, error = %e, "recording completed jobs failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        shared.held.remove(batch.drain(..));
    }
}
