//! `backstop-bench`: Backstop and graphile-worker side by side on one PostgreSQL.
//!
//! For each system and mode: enqueue N no-op jobs, start one worker process with concurrency
//! C, and time until every job is done (throughput); then, with the worker idle, enqueue one
//! job at a time and time enqueue-call → job start (latency, p50/p99). Each mode gets a fresh
//! database. Two more Backstop runs, with three-key payloads, with and without the live table's
//! search indexes, show what those indexes cost. Run it through
//! `backstop with-postgres --durable -- ...` (see `./dev bench`).

mod backlog;
mod dead_letters;
mod processes;
mod steady;
mod timing;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backstop::{Job, JobContext, JobError, NewJob, Runner, RunnerBuilder, Worker};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    /// No-op jobs per throughput run.
    #[arg(long, default_value_t = 200_000)]
    jobs: u64,
    /// Jobs run at once by the one worker process.
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    /// Sequential enqueue → start samples.
    #[arg(long, default_value_t = 1_000)]
    latency_samples: usize,
    /// Only measure Backstop.
    #[arg(long)]
    skip_graphile: bool,
    /// Instead of the modes above: drain backlogs of these sizes (comma-separated), Backstop
    /// with defaults beside graphile-worker tuned, with priority probes (see `backlog`).
    #[arg(long, value_delimiter = ',')]
    backlog: Vec<u64>,
    /// Instead: MINUTES of steady offered load (`--rate` jobs/s in small transactions, 1 %
    /// failing into retries and dead letters), printing claim time and table sizes every
    /// minute (see `steady`).
    #[arg(long, value_name = "MINUTES")]
    steady_state: Option<u64>,
    /// Jobs per second offered in `--steady-state`.
    #[arg(long, default_value_t = 3_000)]
    rate: u64,
    /// Producer tasks sharing `--rate` in `--steady-state` (each waits for its own durable
    /// commits: 8 could not offer 3,000 jobs/s on a busy 2-core machine).
    #[arg(long, default_value_t = 24)]
    producers: u64,
    /// Seconds between `--steady-state` rows (60: a row a minute; shorter for trying it out).
    #[arg(long, default_value_t = 60, hide = true)]
    steady_report_seconds: u64,
    /// Instead: drain `--jobs` with each of these numbers of worker processes (comma-separated),
    /// each at `--concurrency` (see `processes`).
    #[arg(long, value_delimiter = ',')]
    processes: Vec<usize>,
    /// Instead: claims and dead-letter moves with an empty dead-letter table, then with this
    /// many rows in it (see `dead_letters`).
    #[arg(long, value_name = "ROWS")]
    dead_letters: Option<u64>,
    /// Jobs dead-lettered (one attempt each) per `--dead-letters` run.
    #[arg(long, default_value_t = 10_000)]
    dead_moves: u64,
    /// A worker process of `--processes` (started by the benchmark itself).
    #[arg(long, hide = true)]
    worker_process: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measurement {
    system: String,
    mode: String,
    jobs: u64,
    concurrency: usize,
    seconds: f64,
    jobs_per_sec: f64,
    /// Bulk enqueue rate (batches of 10,000 per statement), before the throughput run.
    enqueue_jobs_per_sec: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

/// A no-op job. Its payload is `{}`, like graphile-worker's side; the payload modes enqueue
/// three keys under the same kind (the fields are ignored when it runs).
#[derive(Serialize, Deserialize)]
struct Noop {}
impl Job for Noop {
    const KIND: &'static str = "noop";
}

/// Enqueues `jobs` no-op jobs in batches of 10,000 and vacuums the table: the backlog the
/// `--backlog`, `--processes` and `--dead-letters` modes drain.
async fn enqueue_noop_backlog(pool: &PgPool, jobs: u64) -> anyhow::Result<()> {
    let mut enqueued = 0;
    while enqueued < jobs {
        let batch = enqueued..jobs.min(enqueued + 10_000);
        enqueued = batch.end;
        backstop::enqueue_many(pool, batch.map(|_| NewJob::new(&Noop {}))).await?;
    }
    sqlx::query("vacuum analyze backstop.jobs").execute(pool).await?;
    Ok(())
}

/// Counts runs; wakes the timer when the target is reached.
struct CountingWorker {
    done: Arc<AtomicU64>,
    target: u64,
    reached: Arc<Notify>,
}

impl Worker for CountingWorker {
    type Job = Noop;
    async fn work(&self, _: Noop, _: JobContext) -> Result<(), JobError> {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.reached.notify_one();
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Probe;
impl Job for Probe {
    const KIND: &'static str = "probe";
}

struct ProbeWorker(mpsc::UnboundedSender<Instant>);
impl Worker for ProbeWorker {
    type Job = Probe;
    async fn work(&self, _: Probe, _: JobContext) -> Result<(), JobError> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Defaults,
    Tuned,
    /// Tuned, with payloads of three keys (a user id, an order number, a reference).
    TunedPayloads,
    /// As `TunedPayloads`, on a live table without the console's search indexes: what those
    /// indexes cost, measured side by side.
    TunedPayloadsWithoutSearchIndexes,
}

/// The live table's console search indexes (migration 20261127000001_live_search).
const LIVE_SEARCH_INDEXES: [&str; 4] =
    ["jobs_kind_waiting", "jobs_payload_waiting", "jobs_error_text_failed", "jobs_retrying"];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Defaults => "defaults",
            Self::Tuned => "tuned",
            Self::TunedPayloads => "tuned, 3-key payloads",
            Self::TunedPayloadsWithoutSearchIndexes => "tuned, 3-key payloads, no search indexes",
        }
    }

    /// What the index cost is measured on: small but real payloads, as the console searches.
    fn with_payloads(self) -> bool {
        matches!(self, Self::TunedPayloads | Self::TunedPayloadsWithoutSearchIndexes)
    }

    /// Tuned mirrors graphile-worker's tuned run: a local queue of 500 claimed jobs.
    fn configure(self, builder: RunnerBuilder) -> RunnerBuilder {
        match self {
            Self::Defaults => builder,
            Self::Tuned | Self::TunedPayloads | Self::TunedPayloadsWithoutSearchIndexes => {
                builder.prefetch(500).claim_batch(500)
            }
        }
    }

    fn database_name(self) -> &'static str {
        match self {
            Self::Defaults => "backstop_bench_defaults",
            Self::Tuned => "backstop_bench_tuned",
            Self::TunedPayloads => "backstop_bench_tuned_payloads",
            Self::TunedPayloadsWithoutSearchIndexes => "backstop_bench_tuned_payloads_bare",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.worker_process {
        return processes::worker_process(&args).await;
    }
    let url =
        std::env::var("DATABASE_URL").context("DATABASE_URL must be set (run through `./dev bench`)")?;
    let admin = PgPool::connect(&url).await?;
    print_environment(&admin).await?;
    if !args.backlog.is_empty() {
        return backlog::run(&args).await;
    }
    if let Some(minutes) = args.steady_state {
        return steady::run(&args, minutes).await;
    }
    if !args.processes.is_empty() {
        return processes::run(&args).await;
    }
    if let Some(rows) = args.dead_letters {
        return dead_letters::run(&args, rows).await;
    }

    let mut results = Vec::new();
    for mode in [Mode::Defaults, Mode::Tuned, Mode::TunedPayloads, Mode::TunedPayloadsWithoutSearchIndexes] {
        results.push(measure_backstop(mode, &args).await?);
    }
    if !args.skip_graphile {
        results.extend(measure_graphile(&args)?);
    }
    print_table(&results);
    Ok(())
}

async fn measure_backstop(mode: Mode, args: &Args) -> anyhow::Result<Measurement> {
    let pool = backstop_bench::fresh_database(mode.database_name(), "bench", 40).await?.pool;
    if mode == Mode::TunedPayloadsWithoutSearchIndexes {
        for index in LIVE_SEARCH_INDEXES {
            sqlx::query(sqlx::AssertSqlSafe(format!("drop index backstop.{index}"))).execute(&pool).await?;
        }
    }

    // Enqueue everything first, in batches of 10,000 per statement, so the run measures the
    // workers alone.
    let enqueue_started = Instant::now();
    let mut enqueued = 0;
    while enqueued < args.jobs {
        let batch = enqueued..args.jobs.min(enqueued + 10_000);
        enqueued = batch.end;
        backstop::enqueue_many(&pool, batch.map(|i| noop_job(mode, i))).await?;
    }
    let enqueue_seconds = enqueue_started.elapsed().as_secs_f64();
    eprintln!("backstop {}: enqueued {} jobs in {enqueue_seconds:.1}s", mode.name(), args.jobs);
    sqlx::query("vacuum analyze backstop.jobs").execute(&pool).await?;

    let done = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(Notify::new());
    let worker = CountingWorker { done: Arc::clone(&done), target: args.jobs, reached: Arc::clone(&reached) };
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let builder = Runner::builder(pool.clone())
        .register(worker)
        .register(ProbeWorker(probe_tx))
        .queue("default", args.concurrency);
    let runner = mode.configure(builder).build()?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(600), reached.notified())
        .await
        .context("throughput run over 10 min")?;
    // Done means deleted from the table, as for graphile-worker: wait for the last batch.
    while sqlx::query_scalar::<_, i64>("select count(*) from backstop.jobs").fetch_one(&pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let jobs_per_sec = args.jobs as f64 / seconds;
    eprintln!("backstop {}: {} jobs in {seconds:.2}s = {jobs_per_sec:.0} jobs/s", mode.name(), args.jobs);

    // Vacuumed first, as before the throughput run and as autovacuum soon would: the latency
    // phase measures an idle queue, not the dead rows of the jobs just done (measured at 200,000
    // jobs: p50 1.69 ms without, 0.85 ms with). graphile-worker's half does the same.
    sqlx::query("vacuum analyze backstop.jobs").execute(&pool).await?;
    let mut latencies = Vec::with_capacity(args.latency_samples);
    // How much of the latency is the enqueue's own (durable) commit.
    let mut enqueue_only = Vec::with_capacity(args.latency_samples);
    for _ in 0..args.latency_samples {
        let t0 = Instant::now();
        backstop::enqueue(&pool, &Probe).await?;
        enqueue_only.push(t0.elapsed().as_secs_f64() * 1000.0);
        let started_at = tokio::time::timeout(Duration::from_secs(10), probe_rx.recv())
            .await
            .context("a probe job did not start within 10 s")?
            .context("probe worker gone")?;
        latencies.push(started_at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    shutdown.cancel();
    running.await??;
    let (p50, p99) = percentiles(&mut latencies);
    let (enqueue_p50, _) = percentiles(&mut enqueue_only);
    eprintln!(
        "backstop {}: latency p50 {p50:.2} ms, p99 {p99:.2} ms (of which the enqueue call itself: p50 {enqueue_p50:.2} ms)",
        mode.name()
    );
    Ok(Measurement {
        system: format!("backstop {}", env!("CARGO_PKG_VERSION")),
        mode: mode.name().into(),
        jobs: args.jobs,
        concurrency: args.concurrency,
        seconds,
        jobs_per_sec,
        enqueue_jobs_per_sec: args.jobs as f64 / enqueue_seconds,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
    })
}

fn measure_graphile(args: &Args) -> anyhow::Result<Vec<Measurement>> {
    graphile_runs(args.jobs, args.concurrency, args.latency_samples, "all")
}

/// graphile-worker's run in one mode (`defaults` or `tuned`).
fn measure_graphile_mode(
    jobs: u64,
    concurrency: usize,
    latency_samples: usize,
    mode: &str,
) -> anyhow::Result<Measurement> {
    graphile_runs(jobs, concurrency, latency_samples, mode)?
        .pop()
        .context("the graphile-worker script printed no result")
}

fn graphile_runs(
    jobs: u64,
    concurrency: usize,
    latency_samples: usize,
    mode: &str,
) -> anyhow::Result<Vec<Measurement>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/graphile-worker.mjs");
    let output = Command::new("node")
        .arg(script)
        .args(["--jobs", &jobs.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--latency-samples", &latency_samples.to_string()])
        .args(["--mode", mode])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running node bench/graphile-worker.mjs (is Node installed and `npm ci` done?)")?;
    if !output.status.success() {
        bail!("graphile-worker benchmark failed: {}", output.status);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("unexpected line from the graphile-worker script: {l}"))
        })
        .collect()
}

fn noop_job(mode: Mode, i: u64) -> NewJob {
    if mode.with_payloads() {
        let payload = serde_json::json!({"user_id": i % 100_000, "order": i, "ref": format!("ref-{i:016x}")});
        NewJob::from_json(Noop::KIND, &payload)
    } else {
        NewJob::new(&Noop {})
    }
}

/// p50 and p99; NaN for no samples.
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

async fn print_environment(admin: &PgPool) -> anyhow::Result<()> {
    let version: String = sqlx::query_scalar("show server_version").fetch_one(admin).await?;
    let mut settings = Vec::new();
    for name in ["fsync", "synchronous_commit", "full_page_writes", "shared_buffers"] {
        let value: String =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("show {name}"))).fetch_one(admin).await?;
        settings.push(format!("{name}={value}"));
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("machine: {cores} cores ({cpu}); PostgreSQL {version} ({})", settings.join(", "));
    Ok(())
}

fn print_table(results: &[Measurement]) {
    println!();
    println!(
        "| system | mode | jobs | concurrency | seconds | jobs/s | bulk enqueue jobs/s | latency p50 | latency p99 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
            m.system,
            m.mode,
            m.jobs,
            m.concurrency,
            m.seconds,
            m.jobs_per_sec,
            m.enqueue_jobs_per_sec,
            m.latency_p50_ms,
            m.latency_p99_ms
        );
    }
    let find =
        |system: &str, mode: &str| results.iter().find(|m| m.system.starts_with(system) && m.mode == mode);
    println!();
    for mode in ["defaults", "tuned"] {
        if let (Some(b), Some(g)) = (find("backstop", mode), find("graphile-worker", mode)) {
            println!(
                "{mode}: backstop / graphile-worker throughput = {:.2}x; latency p50 {:.2} vs {:.2} ms",
                b.jobs_per_sec / g.jobs_per_sec,
                b.latency_p50_ms,
                g.latency_p50_ms
            );
        }
    }
    if let (Some(with), Some(without)) = (
        find("backstop", "tuned, 3-key payloads"),
        find("backstop", "tuned, 3-key payloads, no search indexes"),
    ) {
        let change = |with: f64, without: f64| (with / without - 1.0) * 100.0;
        println!(
            "the live table's search indexes (3-key payloads): {:.0} jobs/s with them, {:.0} without ({:+.1} %); \
             bulk enqueue {:.0} vs {:.0} jobs/s ({:+.1} %)",
            with.jobs_per_sec,
            without.jobs_per_sec,
            change(with.jobs_per_sec, without.jobs_per_sec),
            with.enqueue_jobs_per_sec,
            without.enqueue_jobs_per_sec,
            change(with.enqueue_jobs_per_sec, without.enqueue_jobs_per_sec)
        );
    }
    if let (Some(b), Some(g)) = (find("backstop", "defaults"), find("graphile-worker", "tuned")) {
        println!("backstop defaults / graphile-worker tuned = {:.2}x", b.jobs_per_sec / g.jobs_per_sec);
    }
}
