//! `--backlog N1,N2,...`: how throughput holds as the waiting backlog grows (issue 12).
//!
//! For each size, Backstop with its defaults and graphile-worker tuned drain the same number of
//! no-op jobs enqueued beforehand, one worker process each at the same concurrency, on the same
//! server, one after the other. While Backstop drains, a probe job more urgent than the backlog
//! is enqueued every 20 ms and timed to its start, from the enqueue call and from the call's
//! return (its commit: what the queue controls; the call is a durable commit competing with
//! the drain's). A plain client LISTENing beside the runner splits the probe's time in two:
//! until its notification reaches a client (the commit, the server's delivery), and from there
//! to the job's start (the runner's part: its listener, the urgent claim, an executor). Also
//! printed: the claim index blocks Backstop read per job, the figure the backlog size used to
//! drive up.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use backstop::{NewJob, Runner};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    Args, CountingWorker, Probe, ProbeWorker, enqueue_noop_backlog, measure_graphile_mode, percentiles,
};

/// One size's results.
struct Size {
    jobs: u64,
    backstop_jobs_per_sec: f64,
    graphile_jobs_per_sec: f64,
    probe_p50_ms: f64,
    probe_p99_ms: f64,
    /// From the enqueue call's return (its commit) to the start.
    committed_p50_ms: f64,
    committed_p99_ms: f64,
    probes: usize,
    /// From the enqueue call to the probe's notification reaching a client.
    notified_p50_ms: f64,
    notified_p99_ms: f64,
    /// From the notification reaching a client to the start.
    runner_p50_ms: f64,
    runner_p99_ms: f64,
    index_blocks_per_job: f64,
}

/// Each probe's timings, milliseconds.
#[derive(Default)]
struct Probes {
    from_call: Vec<f64>,
    from_commit: Vec<f64>,
    call_to_notified: Vec<f64>,
    notified_to_start: Vec<f64>,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    for &jobs in &args.backlog {
        let (backstop_jobs_per_sec, mut probes, index_blocks_per_job) = drain_backstop(jobs, args).await?;
        let graphile_jobs_per_sec = if args.skip_graphile {
            f64::NAN
        } else {
            measure_graphile_mode(jobs, args.concurrency, 1, "tuned")?.jobs_per_sec
        };
        let (probe_p50_ms, probe_p99_ms) = percentiles(&mut probes.from_call);
        let (committed_p50_ms, committed_p99_ms) = percentiles(&mut probes.from_commit);
        let (notified_p50_ms, notified_p99_ms) = percentiles(&mut probes.call_to_notified);
        let (runner_p50_ms, runner_p99_ms) = percentiles(&mut probes.notified_to_start);
        sizes.push(Size {
            jobs,
            backstop_jobs_per_sec,
            graphile_jobs_per_sec,
            probe_p50_ms,
            probe_p99_ms,
            committed_p50_ms,
            committed_p99_ms,
            probes: probes.from_call.len(),
            notified_p50_ms,
            notified_p99_ms,
            runner_p50_ms,
            runner_p99_ms,
            index_blocks_per_job,
        });
    }
    print_table(&sizes, args.concurrency);
    Ok(())
}

/// Enqueues `jobs` no-op jobs, drains them with a default runner while probing, and returns
/// jobs/s, the probes' timings and claim index blocks read per job.
async fn drain_backstop(jobs: u64, args: &Args) -> anyhow::Result<(f64, Probes, f64)> {
    let pool = backstop_bench::fresh_database("backstop_bench_backlog", "bench", 40).await?.pool;
    enqueue_noop_backlog(&pool, jobs).await?;
    eprintln!("backstop backlog {jobs}: enqueued and vacuumed");

    let done = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(Notify::new());
    let worker = CountingWorker { done: Arc::clone(&done), target: jobs, reached: Arc::clone(&reached) };
    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    let runner = Runner::builder(pool.clone())
        .register(worker)
        .register(ProbeWorker(probe_tx))
        .queue("default", args.concurrency)
        .build()?;
    let blocks_before = claim_index_blocks(&pool).await?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    let probing = CancellationToken::new();
    let prober = tokio::spawn(probe_until(pool.clone(), probe_rx, probing.clone()));
    tokio::time::timeout(Duration::from_secs(1800), reached.notified())
        .await
        .context("backlog drain over 30 min")?;
    while sqlx::query_scalar::<_, i64>("select count(*) from backstop.jobs where kind = 'noop'")
        .fetch_one(&pool)
        .await?
        > 0
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    probing.cancel();
    let probes = prober.await??;
    shutdown.cancel();
    running.await??;
    let index_blocks_per_job = (claim_index_blocks(&pool).await? - blocks_before) as f64 / jobs as f64;
    let jobs_per_sec = jobs as f64 / seconds;
    eprintln!(
        "backstop backlog {jobs}: drained in {seconds:.1}s = {jobs_per_sec:.0} jobs/s; {} probes; \
         {index_blocks_per_job:.2} claim index blocks per job",
        probes.from_call.len()
    );
    Ok((jobs_per_sec, probes, index_blocks_per_job))
}

/// Every 20 ms until cancelled: enqueue a probe more urgent than the backlog (priority -1) and
/// time it to its start, to its notification's arrival at a plain client, and from there to the
/// start.
async fn probe_until(
    pool: PgPool,
    mut started: mpsc::UnboundedReceiver<Instant>,
    stop: CancellationToken,
) -> anyhow::Result<Probes> {
    let mut notified = notifications_of_probes(&pool).await?;
    let mut probes = Probes::default();
    while !stop.is_cancelled() {
        let t0 = Instant::now();
        backstop::enqueue(&pool, NewJob::new(&Probe).priority(-1)).await?;
        let committed = Instant::now();
        let at = tokio::time::timeout(Duration::from_secs(10), started.recv())
            .await
            .context("a priority probe did not start within 10 s of its enqueue")?
            .context("probe worker gone")?;
        let notified_at = tokio::time::timeout(Duration::from_secs(10), notified.recv())
            .await
            .context("a probe's notification did not arrive within 10 s")?
            .context("listener gone")?;
        let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1000.0;
        probes.from_call.push(ms(t0, at));
        probes.from_commit.push(ms(committed, at));
        probes.call_to_notified.push(ms(t0, notified_at));
        probes.notified_to_start.push(ms(notified_at, at));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.cancelled() => {}
        }
    }
    Ok(probes)
}

/// When each probe's notification (payload `-1:default`) reaches a client of its own,
/// LISTENing as the runner's listener does.
async fn notifications_of_probes(pool: &PgPool) -> anyhow::Result<mpsc::UnboundedReceiver<Instant>> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen("backstop_jobs").await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(notification) = listener.recv().await {
            if notification.payload() == "-1:default" && tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Blocks of the claim index read so far (from shared buffers or not).
async fn claim_index_blocks(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "select coalesce(idx_blks_hit + idx_blks_read, 0) from pg_statio_user_indexes
         where schemaname = 'backstop' and indexrelname = 'jobs_claim_order'",
    )
    .fetch_one(pool)
    .await?)
}

fn print_table(sizes: &[Size], concurrency: usize) {
    println!();
    println!(
        "backlog drain, one worker process each at concurrency {concurrency}; Backstop with defaults, graphile-worker tuned"
    );
    println!(
        "| waiting jobs | Backstop jobs/s | graphile-worker jobs/s | ratio | Backstop vs its smallest size | priority probe p50 / p99 (n) | from its commit, p50 / p99 | call to notified, p50 / p99 | notified to start, p50 / p99 | claim index blocks per job |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let smallest = sizes.iter().min_by_key(|s| s.jobs).map(|s| s.backstop_jobs_per_sec);
    for s in sizes {
        println!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.0} % | {:.2} / {:.2} ms ({}) | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} |",
            s.jobs,
            s.backstop_jobs_per_sec,
            s.graphile_jobs_per_sec,
            s.backstop_jobs_per_sec / s.graphile_jobs_per_sec,
            smallest.map_or(f64::NAN, |base| s.backstop_jobs_per_sec / base * 100.0),
            s.probe_p50_ms,
            s.probe_p99_ms,
            s.probes,
            s.committed_p50_ms,
            s.committed_p99_ms,
            s.notified_p50_ms,
            s.notified_p99_ms,
            s.runner_p50_ms,
            s.runner_p99_ms,
            s.index_blocks_per_job
        );
    }
}
