//! `--steady-state MINUTES`: offered load as an application makes it, for minutes (issue 12).
//!
//! `--producers` tasks (24) enqueue jobs in small transactions (1 to 10 jobs each) at a total of
//! `--rate` jobs/s. Each transaction is sent at its scheduled time (start + jobs this producer
//! sent so far / its share of the rate), so a late one is followed at once by the next and the
//! rate does not drift down. One worker process, a `Runner` with its defaults at
//! `--concurrency`, runs them. 1 % of the jobs fail every attempt: three attempts, about 1 s
//! and 2 s apart, then the dead-letter table, with realistic error messages that the runner
//! groups (`record_error_arrival`), as a real failing dependency would.
//!
//! Every minute it prints what was enqueued, completed and dead-lettered, what waits, the claim
//! statement's time (the runner's own claims, from sqlx's statement log: see `timing`),
//! enqueue → start latency of first attempts (from just before the enqueue transaction to the
//! worker's start, so the durable commit is in it), and the sizes of `backstop.jobs` (heap, all
//! indexes, the claim index), of `backstop.dead_jobs` and of Backstop's other tables, with the
//! jobs table's dead tuples and autovacuum runs. At the end, the first minute beside the last.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use backstop::{Job, JobContext, JobError, NewJob, RetryPolicy, Runner, Worker};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::timing::Timings;
use crate::{Args, percentiles};

/// The share of jobs that fail every attempt.
const FAILING: f64 = 0.01;

#[derive(Serialize, Deserialize)]
struct Steady {
    order: u64,
    /// Microseconds since the epoch, just before the enqueue transaction began.
    enqueued_us: i64,
    fail: bool,
}

impl Job for Steady {
    const KIND: &'static str = "steady";

    /// Short, so that failing jobs reach the dead-letter table within seconds.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(4)).max_attempts(3)
    }
}

struct SteadyWorker {
    /// Enqueue → start of first attempts, in milliseconds.
    latencies: Arc<Mutex<Vec<f64>>>,
}

impl Worker for SteadyWorker {
    type Job = Steady;
    async fn work(&self, job: Steady, ctx: JobContext) -> Result<(), JobError> {
        if ctx.attempt == 1 {
            let ms = (Utc::now().timestamp_micros() - job.enqueued_us) as f64 / 1000.0;
            self.latencies.lock().expect("latencies lock").push(ms);
        }
        if job.fail {
            return Err(JobError::retry(error_message(job.order)));
        }
        Ok(())
    }
}

/// A failing dependency's error, with the ids and numbers real ones carry.
pub fn error_message(order: u64) -> String {
    match order % 3 {
        0 => format!("HTTP 503 Service Unavailable from https://api.partner.example/v2/orders/{order}"),
        1 => format!("timeout after 30s calling api.partner.example (request {order:016x})"),
        _ => format!("connection refused: could not connect to db-{}.internal:5432", order % 7),
    }
}

/// Cumulative counts of the steady jobs (`backstop.job_stats`).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    completed: i64,
    dead: i64,
}

/// One minute's row.
#[derive(Debug)]
struct Minute {
    minute: u64,
    enqueued: u64,
    completed: i64,
    dead: i64,
    waiting: i64,
    retrying: i64,
    claims: usize,
    jobs_per_claim: f64,
    claim_p50: f64,
    claim_p99: f64,
    latency_p50: f64,
    latency_p99: f64,
    sizes: Sizes,
}

#[derive(Debug, sqlx::FromRow)]
struct Sizes {
    jobs_heap: i64,
    jobs_indexes: i64,
    claim_index: i64,
    payload_index: i64,
    dead_heap: i64,
    dead_indexes: i64,
    other_tables: i64,
    dead_tuples: i64,
    autovacuums: i64,
    last_autovacuum: Option<DateTime<Utc>>,
}

pub async fn run(args: &Args, minutes: u64) -> anyhow::Result<()> {
    let timings = Timings::install();
    // A connection per producer, and some for the runner's failures and the sizes.
    let connections = u32::try_from(args.producers)? + 8;
    let pool = backstop_bench::fresh_database("backstop_bench_steady", "bench", connections).await?.pool;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let runner = Runner::builder(pool.clone())
        .register(SteadyWorker { latencies: Arc::clone(&latencies) })
        .queue("default", args.concurrency)
        .build()?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(runner.run(shutdown.clone()));

    let interval = Duration::from_secs(args.steady_report_seconds);
    println!(
        "steady state: {} jobs/s offered by {} producers in transactions of 1-10 jobs, {:.0} % failing \
         (3 attempts, then dead), one worker process at concurrency {}; a row every {} s for {minutes} rows",
        args.rate,
        args.producers,
        FAILING * 100.0,
        args.concurrency,
        interval.as_secs()
    );
    println!(
        "claim = the runner's claim statement as its connection times it; enqueue → start = first attempts, \
         from just before the enqueue transaction; sizes in MB (main fork; indexes: all of the table's)"
    );
    println!();
    println!(
        "| min | enqueued | completed | dead | waiting | retrying | claims | jobs/claim | claim p50 / p99 | enqueue→start p50 / p99 | jobs heap | jobs indexes (claim / payload index) | dead_jobs heap / indexes | other tables | jobs dead tuples | autovacuums (last) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let started = Instant::now();
    let stop = CancellationToken::new();
    let enqueued = Arc::new(AtomicU64::new(0));
    let next_order = Arc::new(AtomicU64::new(0));
    let share = args.rate as f64 / args.producers as f64;
    let producers: Vec<_> = (0..args.producers)
        .map(|_| {
            let producer = Producer {
                pool: pool.clone(),
                rate: share,
                enqueued: Arc::clone(&enqueued),
                next_order: Arc::clone(&next_order),
            };
            tokio::spawn(producer.run(started, stop.clone()))
        })
        .collect();

    let mut rows = Vec::new();
    // Each index of `backstop.jobs` at the first row and at the last.
    let (mut first_indexes, mut last_indexes) = (Vec::new(), Vec::new());
    let mut before = Counts::default();
    let mut enqueued_before = 0;
    timings.take_claims();
    for minute in 1..=minutes {
        tokio::time::sleep_until((started + interval * u32::try_from(minute)?).into()).await;
        if producers.iter().any(|p| p.is_finished()) {
            // A producer only stops early on an error, which the awaits below report.
            break;
        }
        let counts = counts(&pool).await?;
        let enqueued_now = enqueued.load(Ordering::Relaxed);
        let (waiting, retrying): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where locked_by is null and run_at <= now()),
                    count(*) filter (where locked_by is null and run_at > now())
             from backstop.jobs where kind = 'steady'",
        )
        .fetch_one(&pool)
        .await?;
        let claims = timings.take_claims();
        let mut claim_ms: Vec<f64> = claims.iter().map(|c| c.0).collect();
        let claimed: u64 = claims.iter().map(|c| c.1).sum();
        let (claim_p50, claim_p99) = percentiles(&mut claim_ms);
        let mut latency_ms = std::mem::take(&mut *latencies.lock().expect("latencies lock"));
        let (latency_p50, latency_p99) = percentiles(&mut latency_ms);
        let row = Minute {
            minute,
            enqueued: enqueued_now - enqueued_before,
            completed: counts.completed - before.completed,
            dead: counts.dead - before.dead,
            waiting,
            retrying,
            claims: claims.len(),
            jobs_per_claim: claimed as f64 / claims.len().max(1) as f64,
            claim_p50,
            claim_p99,
            latency_p50,
            latency_p99,
            sizes: sizes(&pool).await?,
        };
        print_row(&row, &rows);
        rows.push(row);
        last_indexes = index_sizes(&pool).await?;
        if minute == 1 {
            first_indexes.clone_from(&last_indexes);
        }
        before = counts;
        enqueued_before = enqueued_now;
    }
    stop.cancel();
    for producer in producers {
        producer.await?.context("a producer failed")?;
    }
    shutdown.cancel();
    running.await??;
    let seconds = started.elapsed().as_secs_f64();
    let total = enqueued.load(Ordering::Relaxed);
    println!();
    println!(
        "offered {total} jobs in {seconds:.0} s = {:.0} jobs/s (target {})",
        total as f64 / seconds,
        args.rate
    );
    print_first_and_last(&rows);
    println!("- each index of backstop.jobs, first row → last row:");
    for (name, last) in &last_indexes {
        let first = first_indexes.iter().find(|(n, _)| n == name).map_or(0, |(_, size)| *size);
        println!("  - {name}: {} MB → {} MB", mb(first), mb(*last));
    }
    Ok(())
}

struct Producer {
    pool: PgPool,
    /// This producer's jobs per second.
    rate: f64,
    enqueued: Arc<AtomicU64>,
    next_order: Arc<AtomicU64>,
}

impl Producer {
    async fn run(self, started: Instant, stop: CancellationToken) -> anyhow::Result<()> {
        let mut sent = 0u64;
        loop {
            let due = started + Duration::from_secs_f64(sent as f64 / self.rate);
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.cancelled() => return Ok(()),
            }
            let size: u64 = rand::random_range(1..=10);
            let enqueued_us = Utc::now().timestamp_micros();
            let jobs: Vec<NewJob> = (0..size)
                .map(|_| {
                    let order = self.next_order.fetch_add(1, Ordering::Relaxed);
                    NewJob::new(&Steady { order, enqueued_us, fail: rand::random::<f64>() < FAILING })
                })
                .collect();
            let mut tx = self.pool.begin().await?;
            backstop::enqueue_many(&mut *tx, jobs).await?;
            tx.commit().await?;
            sent += size;
            self.enqueued.fetch_add(size, Ordering::Relaxed);
        }
    }
}

async fn counts(pool: &PgPool) -> anyhow::Result<Counts> {
    let (completed, dead): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(completed), 0)::bigint, coalesce(sum(dead), 0)::bigint
         from backstop.job_stats where kind = 'steady'",
    )
    .fetch_one(pool)
    .await?;
    Ok(Counts { completed, dead })
}

async fn sizes(pool: &PgPool) -> anyhow::Result<Sizes> {
    Ok(sqlx::query_as(
        "select pg_relation_size('backstop.jobs') as jobs_heap,
                pg_indexes_size('backstop.jobs') as jobs_indexes,
                pg_relation_size('backstop.jobs_claim_order') as claim_index,
                pg_relation_size('backstop.jobs_payload_waiting') as payload_index,
                pg_relation_size('backstop.dead_jobs') as dead_heap,
                pg_indexes_size('backstop.dead_jobs') as dead_indexes,
                (select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint from pg_class c
                 where c.relnamespace = 'backstop'::regnamespace and c.relkind = 'r'
                   and c.relname not in ('jobs', 'dead_jobs')) as other_tables,
                s.n_dead_tup as dead_tuples, s.autovacuum_count as autovacuums, s.last_autovacuum
         from pg_stat_user_tables s where s.relid = 'backstop.jobs'::regclass",
    )
    .fetch_one(pool)
    .await?)
}

async fn index_sizes(pool: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select indexrelname::text, pg_relation_size(indexrelid) from pg_stat_user_indexes
         where relid = 'backstop.jobs'::regclass order by 1",
    )
    .fetch_all(pool)
    .await?)
}

fn mb(bytes: i64) -> String {
    format!("{:.2}", bytes as f64 / 1_048_576.0)
}

fn print_row(row: &Minute, earlier: &[Minute]) {
    let s = &row.sizes;
    let autovacuums = s.autovacuums - earlier.last().map_or(0, |r| r.sizes.autovacuums);
    let last = s
        .last_autovacuum
        .map_or_else(|| "never".to_owned(), |at| format!("{} s ago", (Utc::now() - at).num_seconds()));
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {} | {} ({} / {}) | {} / {} | {} | {} | {autovacuums} ({last}) |",
        row.minute,
        row.enqueued,
        row.completed,
        row.dead,
        row.waiting,
        row.retrying,
        row.claims,
        row.jobs_per_claim,
        row.claim_p50,
        row.claim_p99,
        row.latency_p50,
        row.latency_p99,
        mb(s.jobs_heap),
        mb(s.jobs_indexes),
        mb(s.claim_index),
        mb(s.payload_index),
        mb(s.dead_heap),
        mb(s.dead_indexes),
        mb(s.other_tables),
        s.dead_tuples,
    );
}

/// One of the sizes a row reports.
type SizeOf = fn(&Sizes) -> i64;

fn print_first_and_last(rows: &[Minute]) {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return };
    let largest = |f: SizeOf| rows.iter().map(|r| f(&r.sizes)).max().unwrap_or(0);
    println!("first row vs last row (largest over the run):");
    println!(
        "- claim p50 / p99: {:.2} / {:.2} ms → {:.2} / {:.2} ms",
        first.claim_p50, first.claim_p99, last.claim_p50, last.claim_p99
    );
    println!(
        "- enqueue → start p50 / p99: {:.2} / {:.2} ms → {:.2} / {:.2} ms",
        first.latency_p50, first.latency_p99, last.latency_p50, last.latency_p99
    );
    let sizes: [(&str, SizeOf); 7] = [
        ("jobs heap", |s| s.jobs_heap),
        ("jobs indexes", |s| s.jobs_indexes),
        ("claim index", |s| s.claim_index),
        ("payload index", |s| s.payload_index),
        ("dead_jobs heap", |s| s.dead_heap),
        ("dead_jobs indexes", |s| s.dead_indexes),
        ("other tables", |s| s.other_tables),
    ];
    for (name, size) in sizes {
        println!(
            "- {name}: {} MB → {} MB ({} MB)",
            mb(size(&first.sizes)),
            mb(size(&last.sizes)),
            mb(largest(size))
        );
    }
    println!(
        "- jobs waiting: {} → {}; jobs table dead tuples: {} → {}",
        first.waiting, last.waiting, first.sizes.dead_tuples, last.sizes.dead_tuples
    );
}
