//! `--dead-letters N`: claims and dead-letter moves with an empty dead-letter table, then with N
//! rows in it (issue 12).
//!
//! For each of 0 and N dead rows, in a fresh database: the rows are inserted in one statement
//! (ten kinds, four queues, five error templates with ids and numbers in them, in fifty error
//! groups, died over the last week, ids below the live table's), the table's secondary indexes
//! dropped first and rebuilt after as a restore would, then vacuumed and analysed. Then, one
//! worker process (a `Runner` with its defaults at `--concurrency`):
//!
//! 1. drain: `--jobs` no-op jobs, enqueued beforehand and vacuumed: jobs/s, and the runner's
//!    claim statements' p50/p99 (see `timing`);
//! 2. dead-letter moves: `--dead-moves` jobs with one attempt each, whose worker fails with a
//!    realistic error (three templates), enqueued in one statement while the runner idles: the
//!    time until `backstop.job_stats` counts all dead, per job, and each move's p50/p99 from the
//!    worker's error to the runner's "moved to the dead-letter table" event: a connection, the
//!    move, the error grouping (`record_error_arrival`) and the durable commit. 24 at a time
//!    into the same few groups, as a burst of one failure is.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use backstop::{Job, JobContext, JobError, NewJob, RetryPolicy, Runner, Worker};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::timing::Timings;
use crate::{Args, CountingWorker, enqueue_noop_backlog, percentiles};

/// The seeded dead jobs' kinds.
const KINDS: [&str; 10] = [
    "send_email",
    "charge_card",
    "sync_crm",
    "resize_image",
    "deliver_webhook",
    "export_report",
    "index_document",
    "refund_order",
    "notify_slack",
    "import_catalog",
];

#[derive(Serialize, Deserialize)]
struct Doomed {
    order: u64,
}

impl Job for Doomed {
    const KIND: &'static str = "doomed";

    fn retry_policy() -> RetryPolicy {
        RetryPolicy::default().max_attempts(1)
    }
}

/// Fails every job, on its one attempt, marking the moment for the timing layer.
struct DoomedWorker(Arc<Timings>);

impl Worker for DoomedWorker {
    type Job = Doomed;
    async fn work(&self, job: Doomed, ctx: JobContext) -> Result<(), JobError> {
        let error = JobError::retry(crate::steady::error_message(job.order));
        self.0.failing(ctx.id);
        Err(error)
    }
}

struct Measured {
    dead_rows: u64,
    seed_seconds: f64,
    dead_table_mb: f64,
    drain_jobs_per_sec: f64,
    claims: usize,
    claim_p50: f64,
    claim_p99: f64,
    moves_per_sec: f64,
    move_p50: f64,
    move_p99: f64,
    moves_timed: usize,
}

pub async fn run(args: &Args, dead_rows: u64) -> anyhow::Result<()> {
    let timings = Timings::install();
    let mut results = Vec::new();
    for rows in [0, dead_rows] {
        results.push(measure(rows, args, &timings).await?);
    }
    println!();
    println!(
        "one worker process at concurrency {}, Backstop with defaults; {} no-op jobs drained, then {} jobs dead-lettered on their one attempt",
        args.concurrency, args.jobs, args.dead_moves
    );
    println!(
        "| dead rows before | seeded in | dead_jobs size | drain jobs/s | claim p50 / p99 (claims) | dead-letter moves/s | per move, all | move p50 / p99 (timed) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | {:.0} s | {:.0} MB | {:.0} | {:.2} / {:.2} ms ({}) | {:.0} | {:.2} ms | {:.2} / {:.2} ms ({}) |",
            m.dead_rows,
            m.seed_seconds,
            m.dead_table_mb,
            m.drain_jobs_per_sec,
            m.claim_p50,
            m.claim_p99,
            m.claims,
            m.moves_per_sec,
            1000.0 / m.moves_per_sec,
            m.move_p50,
            m.move_p99,
            m.moves_timed
        );
    }
    if let [empty, full] = results.as_slice() {
        println!();
        println!(
            "with {} dead rows vs none: drain {:.0} %, claim p50 {:.0} %, dead-letter moves/s {:.0} %, move p50 {:.0} %",
            full.dead_rows,
            full.drain_jobs_per_sec / empty.drain_jobs_per_sec * 100.0,
            full.claim_p50 / empty.claim_p50 * 100.0,
            full.moves_per_sec / empty.moves_per_sec * 100.0,
            full.move_p50 / empty.move_p50 * 100.0
        );
    }
    Ok(())
}

async fn measure(dead_rows: u64, args: &Args, timings: &Arc<Timings>) -> anyhow::Result<Measured> {
    let pool = backstop_bench::fresh_database("backstop_bench_dead_letters", "bench", 40).await?.pool;
    let seeded = Instant::now();
    if dead_rows > 0 {
        seed(&pool, dead_rows).await?;
    }
    sqlx::query("vacuum analyze backstop.dead_jobs").execute(&pool).await?;
    let seed_seconds = seeded.elapsed().as_secs_f64();
    let dead_table: i64 =
        sqlx::query_scalar("select pg_total_relation_size('backstop.dead_jobs')").fetch_one(&pool).await?;
    eprintln!(
        "dead letters {dead_rows}: seeded in {seed_seconds:.1} s, dead_jobs {} MB",
        dead_table / 1_048_576
    );

    enqueue_noop_backlog(&pool, args.jobs).await?;
    // Write the seed and the backlog out now, not during the runs.
    sqlx::query("checkpoint").execute(&pool).await?;

    let reached = Arc::new(Notify::new());
    let worker = CountingWorker {
        done: Arc::new(AtomicU64::new(0)),
        target: args.jobs,
        reached: Arc::clone(&reached),
    };
    let runner = Runner::builder(pool.clone())
        .register(worker)
        .register(DoomedWorker(Arc::clone(timings)))
        .queue("default", args.concurrency)
        .build()?;
    timings.take_claims();
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(1800), reached.notified())
        .await
        .context("backlog drain over 30 min")?;
    wait_for_stats(&pool, "noop", "completed", args.jobs).await?;
    let drain_seconds = started.elapsed().as_secs_f64();
    let mut claim_ms: Vec<f64> = timings.take_claims().into_iter().map(|c| c.0).collect();
    let claims = claim_ms.len();
    let (claim_p50, claim_p99) = percentiles(&mut claim_ms);
    let drain_jobs_per_sec = args.jobs as f64 / drain_seconds;
    eprintln!("dead letters {dead_rows}: drained {} jobs at {drain_jobs_per_sec:.0} jobs/s", args.jobs);

    timings.take_dead_moves();
    let doomed = (0..args.dead_moves).map(|order| NewJob::new(&Doomed { order }));
    let started = Instant::now();
    backstop::enqueue_many(&pool, doomed).await?;
    wait_for_stats(&pool, "doomed", "dead", args.dead_moves).await?;
    let moves_seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    running.await??;
    let mut moves = timings.take_dead_moves();
    let moves_timed = moves.len();
    let (move_p50, move_p99) = percentiles(&mut moves);
    let moves_per_sec = args.dead_moves as f64 / moves_seconds;
    eprintln!("dead letters {dead_rows}: {} dead-letter moves at {moves_per_sec:.0}/s", args.dead_moves);
    Ok(Measured {
        dead_rows,
        seed_seconds,
        dead_table_mb: dead_table as f64 / 1_048_576.0,
        drain_jobs_per_sec,
        claims,
        claim_p50,
        claim_p99,
        moves_per_sec,
        move_p50,
        move_p99,
        moves_timed,
    })
}

/// Waits until `backstop.job_stats` counts `target` jobs of `kind` in `column` (completions
/// and dead-letter moves count themselves in their own transaction).
async fn wait_for_stats(pool: &PgPool, kind: &str, column: &str, target: u64) -> anyhow::Result<()> {
    let target = i64::try_from(target)?;
    let sql = format!("select coalesce(sum({column}), 0)::bigint from backstop.job_stats where kind = $1");
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let counted: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(kind).fetch_one(pool).await?;
        if counted >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{counted} of {target} {kind} jobs {column} after 30 min");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Inserts `rows` dead jobs (ids 1..=rows; the live table's ids start after them) in fifty error
/// groups, with the secondary indexes dropped during the insert and rebuilt after.
async fn seed(pool: &PgPool, rows: u64) -> anyhow::Result<()> {
    let rows = i64::try_from(rows)?;
    let mut conn = pool.acquire().await?;
    sqlx::query("set maintenance_work_mem = '1GB'").execute(&mut *conn).await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index
         where indrelid = 'backstop.dead_jobs'::regclass and not indisprimary",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("drop index {name}"))).execute(&mut *conn).await?;
    }
    sqlx::query(
        r#"
        insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error,
                                           sample_job_id, total, digested_total, first_seen, last_seen)
        select md5(k.kind || ':' || t.template), 'backstop', k.kind, 'default', t.message, t.message,
               1, $1 / 50, $1 / 50, now() - interval '7 days', now() - interval '1 minute'
        from unnest($2::text[]) k(kind),
             (values (0, 'connection refused: could not connect to db-<n>.internal:<n>'),
                     (1, 'HTTP <n> Service Unavailable from https://api.partner.example/v2/orders/<n>'),
                     (2, 'duplicate key value violates unique constraint "orders_pkey" (order_id=<n>)'),
                     (3, 'timeout after 30s calling api.partner.example (request <hex>)'),
                     (4, 'thread panicked at src/worker.rs:<n>: called Option::unwrap() on a None value'))
             t(template, message)
        "#,
    )
    .bind(rows)
    .bind(KINDS.as_slice())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        r#"
        insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts,
                                        errors, last_error, created_at, died_at, reason, group_id)
        select i, (array['default','emails','billing','webhooks'])[1 + i % 4], d.kind,
               jsonb_build_object('user_id', i % 100000, 'order', i, 'ref', md5(i::text)),
               0, 5, 5,
               jsonb_build_array(jsonb_build_object('at', d.died_at, 'attempt', 5, 'error', d.msg, 'worker', 'w1')),
               d.msg, d.died_at - interval '1 hour', d.died_at, 'exhausted', g.id
        from generate_series(1, $1) i
        cross join lateral (
            select ($2::text[])[1 + i % 10] as kind,
                   now() - make_interval(secs => (604800.0 * ($1 - i) / $1)::float8) as died_at,
                   case i % 5
                       when 0 then format('connection refused: could not connect to db-%s.internal:5432', i % 7)
                       when 1 then format('HTTP 503 Service Unavailable from https://api.partner.example/v2/orders/%s', i)
                       when 2 then format('duplicate key value violates unique constraint "orders_pkey" (order_id=%s)', i)
                       when 3 then format('timeout after 30s calling api.partner.example (request %s)', md5(i::text))
                       else format('thread panicked at src/worker.rs:%s: called Option::unwrap() on a None value', 40 + i % 9)
                   end as msg
        ) d
        join backstop.error_groups g on g.fingerprint = md5(d.kind || ':' || (i % 5))
        "#,
    )
    .bind(rows)
    .bind(KINDS.as_slice())
    .execute(&mut *conn)
    .await?;
    for (_, definition) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(definition.as_str())).execute(&mut *conn).await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter table backstop.jobs alter column id restart with {}",
        rows + 1
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
