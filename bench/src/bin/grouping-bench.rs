//! `backstop-grouping-bench`: what error grouping costs. In process: the time to place one
//! message (masking, tokens, comparison with the learned templates), over Backstop's labelled
//! corpus. In the database: the time grouping adds to the dead-letter transaction (the
//! advisory lock, reading the bucket's templates, storing what was learned, counting the
//! arrival), measured around `backstop::triage::record_arrival` inside real transactions.
//! Run it through `./dev bench-grouping`.

use std::time::{Duration, Instant};

use anyhow::Context;
use backstop::triage::Grouper;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The labelled corpus (JSON lines with `message` and `source`).
    #[arg(long, default_value = "queue/tests/corpus/job-failures.jsonl")]
    corpus: String,
    /// Passes over the corpus in process.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

#[derive(serde::Deserialize)]
struct Labelled {
    source: String,
    message: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpus: Vec<Labelled> = std::fs::read_to_string(&args.corpus)
        .with_context(|| format!("read {}", args.corpus))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    // In process: a fresh grouper per round, so every round learns from nothing, as a new
    // deployment would; each message timed alone.
    let mut samples = Vec::with_capacity(corpus.len() * args.rounds);
    for _ in 0..args.rounds {
        let mut grouper = Grouper::default();
        for item in &corpus {
            let started = Instant::now();
            std::hint::black_box(grouper.learn(&item.message));
            samples.push(started.elapsed());
        }
    }
    println!("error grouping, {} messages x {} rounds", corpus.len(), args.rounds);
    println!("{:<58} {:>10} {:>10} {:>10}", "", "mean", "p50", "p99");
    print_row("in process, per message", &mut samples);

    // In the database: each message of the corpus dead-letters in its own transaction, as the
    // runner does, its source as the job kind. Twice: the first pass learns, the second meets
    // what it learned.
    let db = backstop_bench::fresh_database("backstop_grouping_bench", "bench-grouping", 4).await?;
    for pass in ["first pass (learning)", "second pass (known groups)"] {
        let mut added = Vec::with_capacity(corpus.len());
        for (i, item) in corpus.iter().enumerate() {
            let mut tx = db.pool.begin().await?;
            let started = Instant::now();
            backstop::triage::record_arrival(
                &mut tx,
                "backstop",
                &item.source,
                "default",
                &item.message,
                i as i64,
            )
            .await?;
            added.push(started.elapsed());
            tx.commit().await?;
        }
        print_row(&format!("added to a dead-letter transaction, {pass}"), &mut added);
    }
    let groups: i64 =
        sqlx::query_scalar("select count(*) from backstop.error_groups where merged_into is null")
            .fetch_one(&db.pool)
            .await?;
    let version: String = sqlx::query_scalar("show server_version").fetch_one(&db.admin).await?;
    println!("{groups} groups in the database; PostgreSQL {version}");
    Ok(())
}

fn print_row(label: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!("{label:<58} {:>10} {:>10} {:>10}", micros(mean), micros(at(0.5)), micros(at(0.99)));
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
