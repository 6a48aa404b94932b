//! The cron loop: registers a runner's schedules and fires their due ticks, once per tick
//! across every process (see `crate::cron` for the schedules themselves).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use croner::Cron;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::{Shared, sleep_or_shutdown};
use crate::cron::CronSchedule;
use crate::{Client, Result, sql};

pub(crate) async fn register(conn: &mut PgConnection, schedules: &[CronSchedule]) -> Result<()> {
    for s in schedules {
        sql::cron_schedule_upsert(conn, &s.name, &s.expression, &s.job.kind, &s.job.queue, s.payload_text()?)
            .await?;
    }
    Ok(())
}

/// Enqueues the due ticks of one schedule, if no other process is doing so. Returns how many
/// jobs this call enqueued.
pub(crate) async fn fire_due(
    pool: &sqlx::PgPool,
    schedule: &CronSchedule,
    cron: &Cron,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let Some(last_tick) = sql::cron_schedule_lock(&mut tx, &schedule.name).await? else {
        return Ok(0); // another process holds the row and is handling this tick
    };
    let ticks = schedule.due_ticks(cron, last_tick, now);
    let Some(&newest) = ticks.last() else { return Ok(0) };
    let jobs = ticks.iter().map(|tick| {
        // The key makes a tick's job unique even if two processes disagreed about the row.
        schedule.job.clone().unique_key(format!("cron:{}:{}", schedule.name, tick.to_rfc3339()))
    });
    let enqueued = Client::default().enqueue_many(&mut *tx, jobs).await?;
    sql::cron_schedule_advance(&mut tx, &schedule.name, newest).await?;
    tx.commit().await?;
    Ok(enqueued.iter().filter(|e| e.created().is_some()).count())
}

/// Sleeps until the next tick of any schedule, then fires what is due.
pub(crate) async fn run(shared: Arc<Shared>, schedules: Vec<CronSchedule>, shutdown: CancellationToken) {
    if schedules.is_empty() {
        return;
    }
    let parsed: Vec<(CronSchedule, Cron)> = schedules
        .into_iter()
        .filter_map(|s| s.parse().ok().map(|c| (s, c))) // validated in `build`
        .collect();
    loop {
        let now = Utc::now();
        for (schedule, cron) in &parsed {
            match fire_due(&shared.pool, schedule, cron, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(schedule = %schedule.name, jobs = n, "cron tick enqueued"),
                Err(e) => {
                    tracing::warn!(schedule = %schedule.name, error = %e, "cron tick failed; will retry")
                }
            }
        }
        let next =
            parsed.iter().filter_map(|(_, cron)| cron.find_next_occurrence(&Utc::now(), false).ok()).min();
        // Wake at the next tick, but at least every poll interval: a failed tick is retried,
        // and a clock jump cannot make us oversleep.
        let until_next = next
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or_default()
            .min(shared.config.poll_interval);
        if !sleep_or_shutdown(until_next, &shutdown).await {
            return;
        }
    }
}
