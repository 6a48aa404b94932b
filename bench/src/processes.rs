//! `--processes 1,2,4`: one backlog drained by several worker processes (issue 12).
//!
//! For each count N: a fresh database, `--jobs` no-op jobs enqueued beforehand and vacuumed,
//! then N copies of this binary started as worker processes (the hidden `--worker-process`),
//! each a `Runner` with its defaults at `--concurrency`. Each one connects, builds its runner
//! and says it is ready; all are told to start at once, and the clock runs from then until
//! `backstop.job_stats` counts every job completed (polled every 5 ms: a completion deletes
//! the row and counts it in one transaction). Closing their stdin stops them gracefully.
//! Backstop only: graphile-worker's script runs one process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use backstop::{JobContext, JobError, Runner, Worker};
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::{Args, Noop, enqueue_noop_backlog};

struct Run {
    processes: usize,
    seconds: f64,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for &processes in &args.processes {
        let seconds = drain(processes, args).await?;
        eprintln!(
            "{processes} × {} worker processes: {} jobs in {seconds:.2} s = {:.0} jobs/s",
            args.concurrency,
            args.jobs,
            args.jobs as f64 / seconds
        );
        runs.push(Run { processes, seconds });
    }
    println!();
    println!("one backlog of {} no-op jobs drained by N worker processes, Backstop with defaults", args.jobs);
    println!("| worker processes | concurrency each | seconds | jobs/s | vs 1 process |");
    println!("|---:|---:|---:|---:|---:|");
    let one = runs.iter().find(|r| r.processes == 1).map(|r| args.jobs as f64 / r.seconds);
    for r in &runs {
        let rate = args.jobs as f64 / r.seconds;
        println!(
            "| {} | {} | {:.2} | {rate:.0} | {} |",
            r.processes,
            args.concurrency,
            r.seconds,
            one.map_or_else(|| "-".to_owned(), |one| format!("{:.2}x", rate / one))
        );
    }
    Ok(())
}

/// Drains a fresh backlog with `processes` worker processes; returns the seconds it took.
async fn drain(processes: usize, args: &Args) -> anyhow::Result<f64> {
    let db = backstop_bench::fresh_database("backstop_bench_processes", "bench", 4).await?;
    let pool = db.pool;
    enqueue_noop_backlog(&pool, args.jobs).await?;

    let mut children = Vec::new();
    for _ in 0..processes {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--worker-process", "--concurrency", &args.concurrency.to_string()])
            .env("DATABASE_URL", &db.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("start a worker process")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let ready = tokio::time::timeout(Duration::from_secs(30), BufReader::new(stdout).lines().next_line())
            .await
            .context("a worker process was not ready within 30 s")??;
        if ready.as_deref() != Some("ready") {
            bail!("a worker process said {ready:?}, not ready");
        }
        children.push(child);
    }
    let started = Instant::now();
    for child in &mut children {
        child.stdin.as_mut().context("worker stdin")?.write_all(b"go\n").await?;
    }
    let target = i64::try_from(args.jobs)?;
    let deadline = started + Duration::from_secs(1800);
    loop {
        let completed: i64 = sqlx::query_scalar(
            "select coalesce(sum(completed), 0)::bigint from backstop.job_stats where kind = 'noop'",
        )
        .fetch_one(&pool)
        .await?;
        if completed >= target {
            break;
        }
        if Instant::now() > deadline {
            bail!("{processes} processes did not drain {} jobs in 30 min ({completed} done)", args.jobs);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop(children).await?;
    let left: i64 = sqlx::query_scalar("select count(*) from backstop.jobs").fetch_one(&pool).await?;
    if left > 0 {
        bail!("{left} jobs left in backstop.jobs after every job was counted completed");
    }
    Ok(seconds)
}

/// Closes each worker's stdin (it shuts down gracefully) and waits for it.
async fn stop(children: Vec<Child>) -> anyhow::Result<()> {
    for mut child in children {
        drop(child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .context("a worker process did not stop within 60 s of being told to")??;
        if !status.success() {
            bail!("a worker process failed: {status}");
        }
    }
    Ok(())
}

struct NoopWorker;

impl Worker for NoopWorker {
    type Job = Noop;
    async fn work(&self, _: Noop, _: JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

/// The hidden `--worker-process`: a runner on `DATABASE_URL`, started by a `go` line on stdin
/// and stopped when stdin closes.
pub async fn worker_process(args: &Args) -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let pool = PgPoolOptions::new().max_connections(4).connect(&url).await?;
    let runner = Runner::builder(pool).register(NoopWorker).queue("default", args.concurrency).build()?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    if lines.next_line().await?.as_deref() != Some("go") {
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        while let Ok(Some(_)) = lines.next_line().await {}
        stop.cancel();
    });
    runner.run(shutdown).await?;
    Ok(())
}
