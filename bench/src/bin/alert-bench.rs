//! `backstop-alert-bench`: how long from a job dying of a new error to Slack receiving the
//! alert, through the real parts: a worker process dead-letters the job (grouping it and
//! enqueueing the alert in that transaction), a real `backstop serve` with `--slack-webhook`
//! delivers it, and an HTTP server here stands in for Slack and notes the arrival time.
//!
//! Latency is measured from the dead-letter row's `died_at` (PostgreSQL's clock, the start of
//! the transaction that moved it) to the moment the request arrives here (the same machine's
//! clock). Samples are spaced a little over one second apart: alerts to one webhook are paced at
//! one per second, and this measures delivery, not the pace. Run it through `./dev bench-alerts`.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backstop::{Job, JobContext, JobError, Runner, Worker};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    /// Alerts to time (each a new error group).
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// The `backstop` binary that runs the console (and so the alert delivery).
    #[arg(long, env = "BACKSTOP_BIN", default_value = "target/release/backstop")]
    backstop: String,
}

/// A job that dies at once of the error it carries.
#[derive(Debug, Serialize, Deserialize)]
struct Doomed {
    error: String,
}

impl Job for Doomed {
    const KIND: &'static str = "bench_doomed";
    const QUEUE: &'static str = "bench";
}

#[derive(Debug)]
struct Dies;

impl Worker for Dies {
    type Job = Doomed;

    async fn work(&self, job: Doomed, _: JobContext) -> Result<(), JobError> {
        Err(JobError::fail_now(job.error))
    }
}

/// The gap between samples: a little over the console's default pace of one message a second.
const SPACING: Duration = Duration::from_millis(1_100);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backstop_bench::BenchDatabase { admin, url: db_url, pool } =
        backstop_bench::fresh_database("alert_bench", "bench-alerts", 8).await?;

    // Slack's stand-in: every request's arrival time and body, in order.
    let (arrivals, mut received) = mpsc::unbounded_channel::<(DateTime<Utc>, String)>();
    let slack = axum::Router::new().route(
        "/services/T0/B0/bench",
        axum::routing::post(move |body: String| {
            let arrivals = arrivals.clone();
            async move {
                let _ = arrivals.send((Utc::now(), body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let webhook = format!("http://{}/services/T0/B0/bench", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, slack).await });

    let _console = Console::start(&args.backstop, &db_url, &webhook)?;
    wait_for_webhook(&pool).await?;

    let shutdown = CancellationToken::new();
    let runner = Runner::builder(pool.clone()).queue("bench", 4).register(Dies).build()?;
    let worker = tokio::spawn(runner.run(shutdown.clone()));

    let mut latencies = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let started = Instant::now();
        // Letters only: a number would be masked by the normaliser and join the previous group.
        let word = letters(i);
        backstop::enqueue(&pool, &Doomed { error: format!("bench failure {word}") }).await?;
        let (arrived, body) = tokio::time::timeout(Duration::from_secs(30), received.recv())
            .await
            .with_context(|| format!("no alert within 30 s for sample {i}"))?
            .context("the Slack stand-in stopped")?;
        if !body.contains(&word) {
            bail!("sample {i}: expected an alert about {word}, got {body:.300}");
        }
        let died_at: DateTime<Utc> = sqlx::query_scalar(
            "select died_at from backstop.dead_jobs where kind = 'bench_doomed' and last_error = $1",
        )
        .bind(format!("bench failure {word}"))
        .fetch_one(&pool)
        .await?;
        latencies.push((arrived - died_at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        if let Some(rest) = SPACING.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    shutdown.cancel();
    worker.await??;

    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let version: String = sqlx::query_scalar("show server_version").fetch_one(&admin).await?;
    println!();
    println!(
        "Dead letter → Slack webhook, new error group, {} samples (PostgreSQL {version}):",
        latencies.len()
    );
    println!();
    println!("| p50 | p90 | p99 | max |");
    println!("|---:|---:|---:|---:|");
    println!("| {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |", at(0.5), at(0.9), at(0.99), at(1.0));
    Ok(())
}

/// A distinct word of letters for sample `i`.
fn letters(mut i: usize) -> String {
    let mut word = String::from("x");
    loop {
        word.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return word;
        }
    }
}

/// Waits until the console has registered its webhook (it is serving alerts from then on).
async fn wait_for_webhook(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let count: i64 =
            sqlx::query_scalar("select count(*) from backstop.alert_webhooks").fetch_one(pool).await?;
        if count > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the console did not register its webhook within 60 s")
}

/// `backstop serve` with the Slack stand-in as its webhook, stopped when dropped.
struct Console(Child);

impl Console {
    fn start(binary: &str, db_url: &str, webhook: &str) -> anyhow::Result<Console> {
        let args = ["--bind", "127.0.0.1:0", "--slack-webhook", webhook, "--environment", "bench"];
        Ok(Console(backstop_bench::spawn_serve(binary, db_url, &args)?))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
