//! Other job systems on the same database: while the console runs, graphile-worker's
//! permanently failed jobs are brought into Backstop's error groups (and so its triage page and
//! Slack alerts), found by sweeping its jobs table a bounded slice at a time (see
//! `backstop::graphile::record_failures`).

use std::time::Duration;

use backstop::graphile;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the console looks for new graphile-worker failures.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often it looks again for a schema it reads already (it may be upgraded).
const DETECT_EVERY: Duration = Duration::from_secs(60);

/// Polls until `shutdown`. Quiet while the database has no graphile-worker schema. `history`:
/// whether the failures already there when Backstop first looks are alerted.
pub async fn poll_graphile(pool: PgPool, history: graphile::History, shutdown: CancellationToken) {
    let mut schema = None;
    let mut detected_at: Option<tokio::time::Instant> = None;
    loop {
        // Until a readable schema is found, look every poll (graphile-worker may be migrating
        // it right now); then once a minute, for upgrades.
        let settled = schema.as_ref().is_some_and(graphile::GraphileSchema::reads_private_tables);
        if !settled || detected_at.is_none_or(|at| at.elapsed() >= DETECT_EVERY) {
            match graphile::detect(&pool).await {
                Ok(found) => {
                    if let Some(new) = found.as_ref().filter(|new| schema.as_ref() != Some(*new)) {
                        tracing::info!(version = %new.version_label(), supported = new.supported,
                            payloads_readable = new.payloads_readable, "graphile-worker schema found");
                    }
                    schema = found;
                }
                Err(e) => tracing::warn!(error = %e, "could not look for graphile-worker's schema"),
            }
            detected_at = Some(tokio::time::Instant::now());
        }
        if let Some(schema) = &schema {
            // A poll reads one slice: go on at once while slices bring failures, and through
            // the first round (the history), then wait.
            loop {
                match graphile::record_failures(&pool, schema, history).await {
                    Ok(poll) if poll.recorded == 0 && !poll.history_pending => break,
                    Ok(poll) => tracing::debug!(failures = poll.recorded, "graphile-worker failures grouped"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read graphile-worker's failures; retrying");
                        break;
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}
