//! One per queue: claims batches of runnable jobs into the queue's local buffer, and once a
//! heartbeat interval hands back the jobs of its queue that the database says this process
//! holds and it does not (see `held`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::buffer::Buffer;
use super::claim_cursor::ClaimCursor;
use super::wake::Wake;
use super::{ErrorBackoff, Shared, sleep_or_shutdown};
use crate::sql::{self, ClaimFrom, ClaimedJob};

pub(super) async fn run(
    shared: Arc<Shared>,
    queue: String,
    wake: Arc<Wake>,
    buffer: Arc<Buffer>,
    claiming: Arc<Mutex<()>>,
    shutdown: CancellationToken,
) {
    let mut backoff = ErrorBackoff::default();
    // Scheduled jobs come due without a notification; the cursor looks for them at the poll
    // interval, as an idle fetcher's poll does.
    let mut cursor = ClaimCursor::new(shared.config.poll_interval);
    let mut next_check = tokio::time::Instant::now() + shared.config.heartbeat_interval;
    loop {
        if tokio::time::Instant::now() >= next_check {
            if let Err(e) = check_for_orphans(&shared, &queue, &claiming).await {
                tracing::warn!(queue, error = %e, "checking this process's locks failed");
            }
            next_check = tokio::time::Instant::now() + shared.config.heartbeat_interval;
        }
        let target = buffer.target();
        let buffered = buffer.len();
        let want = target.saturating_sub(buffered).min(shared.config.claim_batch);
        if buffered > 0 && buffered * 2 >= target || want == 0 {
            // Enough is buffered: claim more when executors have taken half of it, so a
            // claim never waits on executors and executors rarely wait on a claim. Work more
            // urgent than what is buffered does not wait for this: the urgent lane claims it.
            tokio::select! {
                _ = buffer.low.notified() => continue,
                _ = tokio::time::sleep_until(next_check) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let starved = buffer.starved.swap(0, Ordering::Relaxed);
        let from = cursor.start(tokio::time::Instant::now(), wake.take());
        let claimed = match shared.ack_pool.acquire().await {
            Ok(mut conn) => {
                let limit = i64::try_from(want).unwrap_or(i64::MAX);
                let worker_id = &shared.config.worker_id;
                sql::job_claim_batch(&mut conn, &queue, worker_id, limit, None, from).await
            }
            Err(e) => Err(e),
        };
        cursor.claimed(from, claimed.as_deref().ok(), want);
        wake.set_claimed(cursor.last_claimed_priority());
        let jobs = match claimed {
            Ok(jobs) => {
                backoff.reset();
                shared.held.add(jobs.iter().map(|job| job.id));
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
        if let Err(refused) = buffer.push(jobs) {
            // The runner is stopping and has released its buffers already.
            hand_back(&shared, &queue, refused).await;
            return;
        }
        if got < want && from != ClaimFrom::Head {
            // Only a claim from the head coming back short means the queue is drained: after
            // the cursor's, what it passed over may be waiting at the head; after one of work
            // more urgent than the backlog, the backlog is still there.
            continue;
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

/// Hands back jobs claimed after the runner released its buffers (it waits for fetchers and
/// urgent lanes first, so this is a safety net): unstarted, their attempt given back.
pub(super) async fn hand_back(shared: &Shared, queue: &str, jobs: Vec<ClaimedJob>) {
    let ids: Vec<i64> = jobs.iter().map(|job| job.id).collect();
    let released = match shared.ack_pool.acquire().await {
        Ok(mut conn) => sql::job_release_unstarted(&mut conn, &ids, &shared.config.worker_id).await,
        Err(e) => Err(e),
    };
    match released {
        Ok(_) => shared.held.remove(ids),
        Err(e) => {
            tracing::warn!(queue, error = %e, "could not hand back claimed jobs; the heartbeat rescue will")
        }
    }
}

/// Hands back the jobs of `queue` locked by this process that it does not hold: their outcome
/// was written, then lost (a database crash takes the last moments of asynchronous commits),
/// or never written (the completer gave up). They run again, their attempt given back, as a
/// job whose claim was lost does. Returns how many.
///
/// Only with the urgent lane's claims held off (`claiming`) is a job the database shows locked
/// by this process and the held set lacks really an orphan: one the lane had just claimed, not
/// yet in the set, would be handed back while buffered, and could run twice. But the lane must
/// not wait on this check's statement, so the check looks first without the lock, and again
/// with it only when it found something. The statement usually takes well under a millisecond,
/// but it reads an index entry for every job this process claimed that cleanup has not
/// reached, and while a long transaction holds cleanup back that grows without bound: measured
/// during a 2,000,000-job drain beside one, 300 ms a check, up to 860 ms.
async fn check_for_orphans(shared: &Shared, queue: &str, claiming: &Mutex<()>) -> sqlx::Result<u64> {
    if orphans(shared, &mut *shared.ack_pool.acquire().await?, queue).await?.is_empty() {
        return Ok(0);
    }
    // The lock before the connection, as the lane takes them.
    let _no_claims = claiming.lock().await;
    let mut conn = shared.ack_pool.acquire().await?;
    let orphans = orphans(shared, &mut conn, queue).await?;
    if orphans.is_empty() {
        return Ok(0);
    }
    let released = sql::job_release_unstarted(&mut conn, &orphans, &shared.config.worker_id).await?;
    tracing::warn!(
        queue,
        released,
        "jobs locked by this process that it no longer held (an acknowledgement lost, as in a database crash) were handed back to run again"
    );
    Ok(released)
}

/// The jobs of `queue` the database shows locked by this process and the held set lacks.
async fn orphans(shared: &Shared, conn: &mut sqlx::PgConnection, queue: &str) -> sqlx::Result<Vec<i64>> {
    // The snapshot comes first: a job that leaves the set after it has had its outcome written,
    // so the database cannot show it locked unless that outcome was lost.
    let held = shared.held.snapshot();
    let mut locked = sql::job_locked_ids(conn, queue, &shared.config.worker_id).await?;
    locked.retain(|id| !held.contains(id));
    Ok(locked)
}
