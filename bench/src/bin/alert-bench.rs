//! `backstop-alert-bench`: how long from a job dying of a new error to Slack receiving the
//! alert, through the real parts: a worker process dead-letters the job (grouping it and
//! enqueueing the alert in that transaction), a real `backstop serve` with `--slack-webhook`
//! delivers it, and an HTTP server here stands in for Slack and notes the arrival time.
//!
//! Latency is measured from the dead-letter row's `died_at` (PostgreSQL's clock, the start of
//! the transaction that moved it) to the moment the request arrives here (the same machine's
//! clock). Samples are spaced a little over one second apart: alerts to one webhook are paced at
//! one per second, and this measures delivery, not the pace. Run it through `./dev bench-alerts`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backstop::{Job, JobContext, JobError, Runner, Worker};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::{Deserialize, Serialize};
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
    let (webhook, mut received) = backstop_bench::slack_stand_in().await?;
    let _console =
        backstop_bench::Console::start(&args.backstop, &db_url, &webhook, "bench", Stdio::inherit())?;
    backstop_bench::wait_for_webhook(&pool).await?;

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
