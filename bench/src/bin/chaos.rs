//! `backstop-chaos`: Backstop's promises under abuse. Jobs whose effect is guarded by an
//! idempotency key are worked by three worker processes that are killed with SIGKILL at random
//! every few seconds and started again, while PostgreSQL is restarted with `-m immediate` (a
//! crash: asynchronous commits of the last moments are lost) and a real console delivers Slack
//! alerts to a recording stand-in. At the end every acknowledged job must have its effect
//! exactly once or be in the dead-letter table, and every new error group must have been
//! alerted exactly once. Run it through `./dev chaos`.
//!
//! How it is built, and why:
//!
//! - **The effect.** A job does 0-9 ms of work (a sleep: a call to another service, say), then
//!   writes its effect, a row in `chaos_effects`, in one transaction with
//!   `backstop::claim_idempotency_key` for the job's key (`chaos:N`, also its unique key): the
//!   pattern the crate documents. `chaos_effects` has no unique constraint on the key, so a
//!   guard that failed would show as a duplicate row instead of an error. A run that finds the
//!   key already claimed (its effect committed, then the process died or the completion was
//!   lost before the job left the queue) writes a row to `chaos_reruns` instead.
//! - **Acknowledged jobs.** Jobs are enqueued in batches of 500 evenly over the chaos, each
//!   batch in a transaction with a row in `chaos_batches`. A commit that fails (the database
//!   crashing under it) has an unknown outcome: the batch row says whether it happened, and the
//!   batch is enqueued again only if it did not. Only committed batches count.
//! - **Failures.** About 2 % of the jobs fail every attempt (3 attempts, 1-2 s apart) with
//!   one of three problems whose messages differ only by numbers, so they make three error
//!   groups. A kill that catches one of them on its last attempt makes it die of the rescue's
//!   "stopped heartbeating" message instead: a fourth group, alerted like the others. The
//!   alerts expected are the error groups the console's grouping holds at the end; each must
//!   arrive exactly once (a death in a known group goes to the digest, not a new alert).
//! - **Chaos.** Kills (every 2-5 s, a random one of the three, SIGKILL then a new process) and
//!   the database restarts (one at a random moment in each half) go on for 60 s while the
//!   jobs are enqueued. Then the chaos stops and the run waits, polling with a deadline, for
//!   the queue to empty and the alerts to arrive. No process is killed then, so a job a crash
//!   left held by a live worker (as happened before the runner handed such locks back) is
//!   reported, not rescued by a lucky kill of its holder.
//! - **Workers** heartbeat every second and are presumed dead after 5 s (defaults 5 s and
//!   30 s), so a killed process's jobs come back within the run.
//! - **The seed** fixes the plan (which jobs fail, the gaps between kills, which worker, when
//!   the database restarts), not the timing of everything else.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backstop::{Job, JobContext, JobError, NewJob, RetryPolicy, Runner, Worker};
use clap::{Parser, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Jobs to enqueue.
    #[arg(long, default_value_t = 50_000)]
    jobs: u32,
    /// Seed for the plan (which jobs fail, when kills and restarts happen); random if not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Jobs each worker process runs at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Jobs in a thousand that fail every attempt.
    #[arg(long, default_value_t = 20)]
    doomed_per_mille: u32,
    /// How long the chaos lasts: jobs are enqueued evenly over it, kills and restarts happen
    /// within it.
    #[arg(long, default_value_t = 60)]
    chaos_seconds: u64,
    /// Seconds between kills: at least this many...
    #[arg(long, default_value_t = 2.0)]
    kill_min: f64,
    /// ...and at most this many. No kills with `--kill-max 0`.
    #[arg(long, default_value_t = 5.0)]
    kill_max: f64,
    /// PostgreSQL restarts (`pg_ctl restart -m immediate`).
    #[arg(long, default_value_t = 2)]
    pg_restarts: usize,
    /// How long, after the chaos, every job gets to finish and every alert to arrive.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
    /// The `backstop` binary that runs the console (and so the alert delivery).
    #[arg(long, env = "BACKSTOP_BIN", default_value = "target/release/backstop")]
    backstop: String,
    /// Where the worker processes, the console and pg_ctl write their logs.
    #[arg(long, default_value = "target/chaos")]
    log_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// One worker process (started by the chaos run itself).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        concurrency: usize,
    },
}

/// The queue and kind of the chaos jobs.
const QUEUE: &str = "chaos";
/// Jobs per enqueue transaction.
const BATCH: u32 = 500;
/// Attempts for jobs that succeed: enough that kills and restarts never exhaust them (a kill
/// uses up the attempt of every job its process had claimed).
const GOOD_ATTEMPTS: i32 = 25;
/// How the Slack messages of new error groups begin (`[environment] New failure: ...`).
const ENVIRONMENT: &str = "chaos";

/// One chaos job: `n` names it (its key is `chaos:n`); `doom` makes it fail every attempt
/// with one of the [`PROBLEMS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChaosJob {
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doom: Option<usize>,
}

impl Job for ChaosJob {
    const KIND: &'static str = "chaos_effect";
    const QUEUE: &'static str = QUEUE;

    /// Failing jobs die within seconds: 3 attempts, 1 s then 2 s apart.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(2)).max_attempts(3)
    }
}

/// Three problems, each one error group: their messages differ only in numbers (ids of five
/// digits or more, a duration of four), which grouping treats as variables from the start.
const PROBLEMS: [&str; 3] = ["card declined", "address validation failed", "inventory service timed out"];

fn problem_message(problem: usize, n: u32) -> String {
    let id = 100_000 + u64::from(n);
    match problem {
        0 => format!("card declined for invoice {id}: insufficient funds"),
        1 => format!("address validation failed for order {id}: postcode missing"),
        _ => format!("inventory service timed out after {} ms reserving sku {id}", 1_000 + n % 9_000),
    }
}

fn effect_key(n: u32) -> String {
    format!("chaos:{n}")
}

/// Applies a job's effect once, however often the job runs.
#[derive(Debug)]
struct ApplyEffect;

impl Worker for ApplyEffect {
    type Job = ChaosJob;

    async fn work(&self, job: ChaosJob, ctx: JobContext) -> Result<(), JobError> {
        if let Some(problem) = job.doom {
            return Err(JobError::retry(problem_message(problem, job.n)));
        }
        // The work before the effect (a call to another service, say): 0-9 ms, so kills and
        // crashes find jobs in the middle of it.
        tokio::time::sleep(Duration::from_millis(u64::from(job.n % 10))).await;
        let key = effect_key(job.n);
        let mut tx = ctx.pool.begin().await?;
        // The effect and its key commit together: a run that finds the key taken knows the
        // effect is there, and only notes that it ran again.
        let table = if backstop::claim_idempotency_key(&mut *tx, &key).await? {
            "chaos_effects"
        } else {
            "chaos_reruns"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into {table} (job_key, job_id, attempt, worker) values ($1, $2, $3, $4)"
        )))
        .bind(&key)
        .bind(ctx.id)
        .bind(ctx.attempt)
        .bind(&ctx.worker_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.mode {
        Some(Mode::Worker { ref database_url, concurrency }) => {
            runtime.block_on(work(database_url, concurrency))?;
            Ok(ExitCode::SUCCESS)
        }
        None => runtime.block_on(drive(args)),
    }
}

/// A worker process: works queue `chaos` until SIGTERM (or SIGKILL).
async fn work(database_url: &str, concurrency: usize) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // Lazy: a process started while the database restarts waits for it (the runner retries)
    // instead of exiting.
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency + 4).unwrap_or(u32::MAX))
        .connect_lazy(database_url)?;
    Runner::builder(pool)
        .register(ApplyEffect)
        .queue(QUEUE, concurrency)
        .heartbeat(Duration::from_secs(1), Duration::from_secs(5))
        .build()?
        .run_until_signal()
        .await?;
    Ok(())
}

/// The worker processes, each restarted in its slot after a kill.
#[derive(Debug)]
struct Workers {
    exe: PathBuf,
    database_url: String,
    concurrency: usize,
    log_dir: PathBuf,
    slots: Vec<Child>,
    kills: usize,
}

impl Workers {
    fn start(
        count: usize,
        database_url: &str,
        concurrency: usize,
        log_dir: &Path,
    ) -> anyhow::Result<Workers> {
        let mut workers = Workers {
            exe: std::env::current_exe()?,
            database_url: database_url.to_owned(),
            concurrency,
            log_dir: log_dir.to_owned(),
            slots: Vec::new(),
            kills: 0,
        };
        for slot in 0..count {
            let child = workers.spawn(slot)?;
            workers.slots.push(child);
        }
        Ok(workers)
    }

    fn spawn(&self, slot: usize) -> anyhow::Result<Child> {
        let log = append(&self.log_dir.join(format!("worker-{slot}.log")))?;
        Command::new(&self.exe)
            .args(["worker", "--database-url", &self.database_url])
            .args(["--concurrency", &self.concurrency.to_string()])
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start a worker process")
    }

    /// SIGKILLs the worker in `slot` and starts a new one there.
    fn kill_and_restart(&mut self, slot: usize) -> anyhow::Result<()> {
        let child = &mut self.slots[slot];
        child.kill().context("SIGKILL a worker")?;
        child.wait()?;
        self.kills += 1;
        self.slots[slot] = self.spawn(slot)?;
        Ok(())
    }

    /// Processes that exited by themselves (they should not: only kills end them).
    fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut exited = Vec::new();
        for (slot, child) in self.slots.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                exited.push((slot, status));
            }
        }
        exited
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.slots {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn append(path: &Path) -> anyhow::Result<File> {
    File::options().create(true).append(true).open(path).with_context(|| format!("open {}", path.display()))
}

/// The run's plan, all drawn from the seed.
#[derive(Debug)]
struct Plan {
    jobs: Vec<ChaosJob>,
    /// Seconds into the chaos of each database restart.
    restarts: Vec<f64>,
}

impl Plan {
    fn draw(args: &Args, rng: &mut StdRng) -> Plan {
        let doomed = f64::from(args.doomed_per_mille) / 1000.0;
        let jobs = (0..args.jobs)
            .map(|n| ChaosJob {
                n,
                doom: rng.random_bool(doomed).then(|| rng.random_range(0..PROBLEMS.len())),
            })
            .collect();
        // Restart i happens somewhere in the middle of the i-th equal slice of the chaos, so
        // restarts never bunch together and each finds work in flight.
        let slice = args.chaos_seconds as f64 / args.pg_restarts.max(1) as f64;
        let restarts =
            (0..args.pg_restarts).map(|i| slice * (i as f64 + rng.random_range(0.2..0.8))).collect();
        Plan { jobs, restarts }
    }
}

/// What enqueueing saw.
#[derive(Debug, Default)]
struct Enqueued {
    jobs: u64,
    batches: u64,
    /// Batches whose commit failed with an unknown outcome, and so were looked up.
    unknown_outcome: u64,
    /// ...of which had in fact committed.
    committed_anyway: u64,
}

/// Enqueues `jobs` in batches of [`BATCH`], evenly over `over`.
async fn enqueue_all(pool: PgPool, jobs: Vec<ChaosJob>, over: Duration) -> anyhow::Result<Enqueued> {
    let mut stats = Enqueued::default();
    let batches: Vec<&[ChaosJob]> = jobs.chunks(BATCH as usize).collect();
    let pause = over.div_f64(batches.len().max(1) as f64);
    let started = tokio::time::Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        tokio::time::sleep_until(started + pause * i as u32).await;
        let number = i32::try_from(i)?;
        let new_jobs: Vec<NewJob> = batch
            .iter()
            .map(|job| {
                let new = NewJob::new(job).unique_key(effect_key(job.n));
                if job.doom.is_some() { new } else { new.max_attempts(GOOD_ATTEMPTS) }
            })
            .collect();
        enqueue_batch(&pool, number, batch.len(), new_jobs, &mut stats).await?;
        stats.jobs += batch.len() as u64;
        stats.batches += 1;
    }
    Ok(stats)
}

/// Enqueues one batch until it is known to have committed exactly once.
async fn enqueue_batch(
    pool: &PgPool,
    number: i32,
    size: usize,
    jobs: Vec<NewJob>,
    stats: &mut Enqueued,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let mut tx = pool.begin().await?;
            sqlx::query("insert into chaos_batches (batch, jobs) values ($1, $2)")
                .bind(number)
                .bind(i32::try_from(size)?)
                .execute(&mut *tx)
                .await?;
            let outcomes = backstop::enqueue_many(&mut *tx, jobs.clone()).await?;
            if let Some(duplicate) = outcomes.iter().find(|o| o.created().is_none()) {
                bail!("batch {number}: a job's key was already taken: {duplicate:?}");
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        let Err(error) = attempt else { return Ok(()) };
        if Instant::now() > deadline {
            return Err(error.context(format!("batch {number} could not be enqueued within 60 s")));
        }
        // The commit may have happened before the connection broke: ask, once the database
        // answers, and enqueue again only if it did not.
        stats.unknown_outcome += 1;
        loop {
            let found: Result<bool, _> =
                sqlx::query_scalar("select exists (select 1 from chaos_batches where batch = $1)")
                    .bind(number)
                    .fetch_one(pool)
                    .await;
            match found {
                Ok(true) => {
                    stats.committed_anyway += 1;
                    return Ok(());
                }
                Ok(false) => break,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => bail!("batch {number}: the database did not come back within 60 s: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Restarts PostgreSQL at each of `at` (seconds from now) with `pg_ctl restart -m immediate`.
/// Returns how long each restart command took (the database is down for about that long).
async fn restart_database(at: Vec<f64>, log_dir: PathBuf) -> anyhow::Result<Vec<Duration>> {
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let ctl = std::env::var("BACKSTOP_PG_CTL").context(
        "BACKSTOP_PG_CTL is not set: restarts need the private cluster `./dev chaos` starts \
         (without DATABASE_URL), or pass --pg-restarts 0",
    )?;
    let options = std::env::var("BACKSTOP_PG_OPTIONS").unwrap_or_default();
    let started = tokio::time::Instant::now();
    let mut took = Vec::new();
    for seconds in at {
        tokio::time::sleep_until(started + Duration::from_secs_f64(seconds)).await;
        let began = Instant::now();
        let log = append(&log_dir.join("pg_ctl.log"))?;
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{ctl} restart -m immediate -w -o \"{options}\""))
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await?;
        if !status.success() {
            bail!(
                "pg_ctl restart -m immediate failed ({status}); see {}",
                log_dir.join("pg_ctl.log").display()
            );
        }
        took.push(began.elapsed());
    }
    Ok(took)
}

/// The Slack messages received so far, as they arrived.
type Received = Arc<Mutex<Vec<String>>>;

/// What the Slack stand-in received: new-group alerts by group id, and anything else.
#[derive(Debug, Default)]
struct Alerts {
    new_by_group: BTreeMap<i64, usize>,
    other: usize,
}

impl Alerts {
    fn read(received: &Received) -> Alerts {
        let mut alerts = Alerts::default();
        for body in received.lock().expect("received lock").iter() {
            match new_group_alert(body) {
                Some(group) => *alerts.new_by_group.entry(group).or_default() += 1,
                None => alerts.other += 1,
            }
        }
        alerts
    }
}

/// The group a "New failure" alert is about (from the link to its triage page).
fn new_group_alert(body: &str) -> Option<i64> {
    let message: serde_json::Value = serde_json::from_str(body).ok()?;
    let text = message.get("text")?.as_str()?;
    if !text.starts_with(&format!("[{ENVIRONMENT}] New failure: {} ", ChaosJob::KIND)) {
        return None;
    }
    let after = &text[text.find("/triage/")? + "/triage/".len()..];
    after.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// The error groups of the chaos jobs (not merged away): the alerts expected.
async fn chaos_groups(pool: &PgPool) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "select id from backstop.error_groups where kind = $1 and merged_into is null order by id",
    )
    .bind(ChaosJob::KIND)
    .fetch_all(pool)
    .await
}

/// Waits until no chaos job or alert job is left and every group has its alert, or `timeout`.
/// `Ok(true)` when settled.
async fn drain(pool: &PgPool, received: &Received, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let settled = async {
            let left: i64 = sqlx::query_scalar(
                "select count(*) from backstop.jobs where queue = $1 or kind = 'backstop.slack_alert'",
            )
            .bind(QUEUE)
            .fetch_one(pool)
            .await?;
            let groups = chaos_groups(pool).await?;
            let alerts = Alerts::read(received);
            Ok::<_, sqlx::Error>(left == 0 && groups.iter().all(|g| alerts.new_by_group.contains_key(g)))
        }
        .await;
        // An error here is the database still coming back: poll again.
        if matches!(settled, Ok(true)) {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn drive(args: Args) -> anyhow::Result<ExitCode> {
    if args.kill_max > 0.0 && args.kill_min > args.kill_max {
        bail!("--kill-min must not exceed --kill-max");
    }
    let wall = Instant::now();
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = Plan::draw(&args, &mut rng);
    std::fs::create_dir_all(&args.log_dir)?;
    for old in ["console.log", "pg_ctl.log"].iter().map(|f| args.log_dir.join(f)) {
        let _ = std::fs::remove_file(old);
    }
    for slot in 0..args.workers {
        let _ = std::fs::remove_file(args.log_dir.join(format!("worker-{slot}.log")));
    }

    let backstop_bench::BenchDatabase { admin, url, pool } =
        backstop_bench::fresh_database("chaos", "chaos", 8).await?;
    sqlx::raw_sql(
        "create table chaos_batches (batch int primary key, jobs int not null);
         -- No unique constraint on the key: a second effect must show, not fail.
         create table chaos_effects (id bigserial primary key, job_key text not null,
             job_id bigint not null, attempt int not null, worker text not null,
             at timestamptz not null default now());
         create index on chaos_effects (job_key);
         create table chaos_reruns (like chaos_effects including all);",
    )
    .execute(&pool)
    .await?;

    let (webhook, mut arrivals) = backstop_bench::slack_stand_in().await?;
    let received: Received = Arc::default();
    let recorder = Arc::clone(&received);
    tokio::spawn(async move {
        while let Some((_, body)) = arrivals.recv().await {
            recorder.lock().expect("received lock").push(body);
        }
    });
    let console_log = append(&args.log_dir.join("console.log"))?;
    let console =
        backstop_bench::Console::start(&args.backstop, &url, &webhook, ENVIRONMENT, console_log.into())?;
    backstop_bench::wait_for_webhook(&pool).await?;

    let mut workers = Workers::start(args.workers, &url, args.concurrency, &args.log_dir)?;
    let chaos = Duration::from_secs(args.chaos_seconds);
    let kills = if args.kill_max > 0.0 {
        format!("a kill every {}-{} s", args.kill_min, args.kill_max)
    } else {
        "no kills".to_owned()
    };
    eprintln!(
        "chaos: {} jobs over {} s, {} workers, {kills}, {} database restarts (seed {seed}; logs in {})",
        args.jobs,
        args.chaos_seconds,
        args.workers,
        args.pg_restarts,
        args.log_dir.display()
    );
    let doomed: Vec<&ChaosJob> = plan.jobs.iter().filter(|j| j.doom.is_some()).collect();
    let doomed_count = doomed.len();
    let mut enqueue = tokio::spawn(enqueue_all(pool.clone(), plan.jobs.clone(), chaos));
    let mut restarts = tokio::spawn(restart_database(plan.restarts.clone(), args.log_dir.clone()));

    // The chaos: kill a random worker every few seconds until enqueueing and the restarts are
    // done (and at least the chaos period has passed).
    let chaos_started = Instant::now();
    let mut enqueued = None;
    let mut restart_times = None;
    let mut unexpected_exits = Vec::new();
    let chaos_ends = chaos_started + chaos;
    let mut next_kill = next_kill_at(&args, &mut rng);
    while enqueued.is_none() || restart_times.is_none() || Instant::now() < chaos_ends {
        tokio::select! {
            result = &mut enqueue, if enqueued.is_none() => enqueued = Some(result??),
            result = &mut restarts, if restart_times.is_none() => restart_times = Some(result??),
            _ = tokio::time::sleep_until(chaos_ends.into()), if Instant::now() < chaos_ends => {}
            _ = tokio::time::sleep_until(next_kill.into()), if args.kill_max > 0.0 => {
                let slot = rng.random_range(0..workers.slots.len());
                workers.kill_and_restart(slot)?;
                next_kill = next_kill_at(&args, &mut rng);
            }
        }
        for (slot, status) in workers.exited() {
            unexpected_exits.push(format!("worker {slot} exited by itself ({status})"));
            workers.slots[slot] = workers.spawn(slot)?;
        }
    }
    let enqueued = enqueued.expect("loop ends when enqueueing is done");
    let restart_times = restart_times.expect("loop ends when restarts are done");
    let chaos_took = chaos_started.elapsed();
    eprintln!(
        "chaos over after {:.0} s ({} kills); waiting for the queue to drain",
        chaos_took.as_secs_f64(),
        workers.kills
    );

    let drain_started = Instant::now();
    let drained = drain(&pool, &received, Duration::from_secs(args.drain_seconds)).await?;
    let drain_took = drain_started.elapsed();
    for (slot, status) in workers.exited() {
        unexpected_exits.push(format!("worker {slot} exited by itself ({status})"));
    }
    let kills = workers.kills;
    drop(workers);

    let report = Report::read(&pool, &received).await?;
    drop(console);
    let version: String = sqlx::query_scalar("show server_version").fetch_one(&admin).await?;

    println!();
    println!(
        "Chaos run, seed {seed}, PostgreSQL {version}: {} worker processes × {} jobs at once, {} s of chaos",
        args.workers, args.concurrency, args.chaos_seconds
    );
    println!();
    println!("| | |");
    println!("|---|---:|");
    let row = |what: &str, value: String| println!("| {what} | {value} |");
    row(
        "jobs enqueued (acknowledged)",
        format!(
            "{} in {} batches ({} commits with an unknown outcome, {} of them had committed)",
            enqueued.jobs, enqueued.batches, enqueued.unknown_outcome, enqueued.committed_anyway
        ),
    );
    row("effects applied (distinct jobs)", report.effects_distinct.to_string());
    row("duplicate effects", report.duplicate_effects.to_string());
    row("completed (left the queue with their effect)", report.completed.to_string());
    row(
        "dead",
        format!(
            "{} ({} meant to fail; {} of their own error, {} of a kill on their last attempt)",
            report.dead, doomed_count, report.dead_of_problem, report.dead_of_rescue
        ),
    );
    row("lost (acknowledged, neither effect nor dead)", report.lost.to_string());
    row("still in the queue", report.left_in_queue.to_string());
    row("jobs run more than once", report.rerun_jobs.to_string());
    row("runs that found their effect already applied", report.reruns_after_effect.to_string());
    row("effects applied on a later attempt", report.effects_on_later_attempt.to_string());
    row("worker kills (SIGKILL)", kills.to_string());
    row(
        "PostgreSQL restarts (-m immediate)",
        format!(
            "{} ({})",
            restart_times.len(),
            restart_times.iter().map(|d| format!("{:.1} s", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
        ),
    );
    row(
        "error groups (alerts expected)",
        format!(
            "{} ({})",
            report.groups.len(),
            report
                .groups_by_cause
                .iter()
                .map(|(cause, groups)| format!("{cause}: {}", groups.len()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    row("new-group alerts delivered", report.alerts_delivered.to_string());
    row("alerts missing", report.alerts_missing.len().to_string());
    row("alerts duplicated", report.alerts_duplicated.len().to_string());
    row("alerts for no group of this run", report.alerts_unexpected.len().to_string());
    row("other Slack messages (digests)", report.other_messages.to_string());
    row(
        "wall time",
        format!(
            "{:.0} s (chaos {:.0} s, drain {:.1} s)",
            wall.elapsed().as_secs_f64(),
            chaos_took.as_secs_f64(),
            drain_took.as_secs_f64()
        ),
    );
    println!();
    println!("Error groups (id, dead jobs, template):");
    for (id, total, message) in &report.group_lines {
        println!("  {id:>3} {total:>5}  {message}");
    }
    println!();

    let mut failures = report.failures(args.jobs, doomed_count);
    failures.extend(unexpected_exits);
    if !drained {
        failures.push(format!("not drained within {} s", args.drain_seconds));
    }
    if failures.is_empty() {
        println!(
            "PASS: every acknowledged job has its effect exactly once or is dead; every error group alerted once."
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in &failures {
            println!("FAIL: {failure}");
        }
        if report.left_in_queue > 0 {
            println!();
            println!("Jobs still in the queue (state, holder, count):");
            for (state, holder, count) in &report.left_detail {
                println!("  {state} {holder} {count}");
            }
        }
        println!("Logs: {}", args.log_dir.display());
        Ok(ExitCode::FAILURE)
    }
}

fn next_kill_at(args: &Args, rng: &mut StdRng) -> Instant {
    let seconds = if args.kill_max > 0.0 { rng.random_range(args.kill_min..=args.kill_max) } else { 0.0 };
    Instant::now() + Duration::from_secs_f64(seconds)
}

/// The outcome, read from the database and the Slack stand-in.
#[derive(Debug)]
struct Report {
    effects_distinct: i64,
    duplicate_effects: i64,
    completed: i64,
    dead: i64,
    dead_of_problem: i64,
    dead_of_rescue: i64,
    /// Jobs meant to succeed that died, and jobs with both an effect and a dead letter.
    good_dead: i64,
    effect_and_dead: i64,
    lost: i64,
    left_in_queue: i64,
    left_detail: Vec<(String, String, i64)>,
    rerun_jobs: i64,
    reruns_after_effect: i64,
    effects_on_later_attempt: i64,
    groups: Vec<i64>,
    /// The groups the dead jobs joined, by what killed them.
    groups_by_cause: BTreeMap<String, BTreeSet<Option<i64>>>,
    /// Each group's id, dead jobs and template.
    group_lines: Vec<(i64, i64, String)>,
    alerts_delivered: usize,
    alerts_missing: Vec<i64>,
    alerts_duplicated: Vec<(i64, usize)>,
    alerts_unexpected: Vec<i64>,
    other_messages: usize,
}

impl Report {
    async fn read(pool: &PgPool, received: &Received) -> anyhow::Result<Report> {
        let (effects, effects_distinct, effects_on_later_attempt): (i64, i64, i64) = sqlx::query_as(
            "select count(*), count(distinct job_key), count(*) filter (where attempt > 1) from chaos_effects",
        )
        .fetch_one(pool)
        .await?;
        let reruns_after_effect: i64 =
            sqlx::query_scalar("select count(*) from chaos_reruns").fetch_one(pool).await?;
        let rerun_jobs: i64 = sqlx::query_scalar(
            "select count(distinct job_key) from (
                 select job_key from chaos_reruns
                 union all select job_key from chaos_effects where attempt > 1) r",
        )
        .fetch_one(pool)
        .await?;
        let (dead, dead_of_rescue, good_dead): (i64, i64, i64) = sqlx::query_as(
            "select count(*),
                    count(*) filter (where last_error like '%stopped heartbeating%'),
                    count(*) filter (where payload->'doom' is null)
             from backstop.dead_jobs where kind = $1",
        )
        .bind(ChaosJob::KIND)
        .fetch_one(pool)
        .await?;
        // Every acknowledged job (every key of a committed batch) is done or dead; a job that
        // is neither is lost.
        let (completed, lost, effect_and_dead): (i64, i64, i64) = sqlx::query_as(
            "with acknowledged as (
                 select 'chaos:' || n as key
                 from chaos_batches b, generate_series(b.batch * $2, b.batch * $2 + b.jobs - 1) n
             ),
             outcome as (
                 select a.key,
                        exists (select 1 from chaos_effects e where e.job_key = a.key) as effect,
                        exists (select 1 from backstop.dead_jobs d where d.kind = $1 and d.unique_key = a.key) as dead,
                        exists (select 1 from backstop.jobs j where j.unique_key = a.key) as live
                 from acknowledged a
             )
             select count(*) filter (where effect and not live),
                    count(*) filter (where not effect and not dead),
                    count(*) filter (where effect and dead)
             from outcome",
        )
        .bind(ChaosJob::KIND)
        .bind(i64::from(BATCH))
        .fetch_one(pool)
        .await?;
        let left_detail: Vec<(String, String, i64)> = sqlx::query_as(
            "select case when locked_by is null then 'waiting' else 'locked by' end,
                    coalesce(locked_by, ''), count(*)
             from backstop.jobs where queue = $1 or kind = 'backstop.slack_alert'
             group by 1, 2 order by 1, 2",
        )
        .bind(QUEUE)
        .fetch_all(pool)
        .await?;
        let left_in_queue = left_detail.iter().map(|(_, _, n)| n).sum();

        let groups = chaos_groups(pool).await?;
        let group_lines = sqlx::query_as(
            "select id, total, message from backstop.error_groups
             where kind = $1 and merged_into is null order by id",
        )
        .bind(ChaosJob::KIND)
        .fetch_all(pool)
        .await?;
        // Which groups the dead jobs joined, by what killed them: each problem should be one
        // group, the rescues' message one more.
        let deaths: Vec<(String, Option<i64>)> = sqlx::query_as(
            "select d.last_error, coalesce(g.merged_into, g.id)
             from backstop.dead_jobs d left join backstop.error_groups g on g.id = d.group_id
             where d.kind = $1",
        )
        .bind(ChaosJob::KIND)
        .fetch_all(pool)
        .await?;
        let mut groups_by_cause: BTreeMap<String, BTreeSet<Option<i64>>> = BTreeMap::new();
        for (error, group) in deaths {
            let cause = problem_of(&error).map_or("a kill on the last attempt", |p| PROBLEMS[p]);
            groups_by_cause.entry(cause.to_owned()).or_default().insert(group);
        }
        let alerts = Alerts::read(received);
        let alerts_missing =
            groups.iter().copied().filter(|g| !alerts.new_by_group.contains_key(g)).collect();
        let alerts_duplicated =
            alerts.new_by_group.iter().filter(|(_, n)| **n > 1).map(|(g, n)| (*g, *n)).collect();
        let alerts_unexpected = alerts.new_by_group.keys().copied().filter(|g| !groups.contains(g)).collect();
        Ok(Report {
            effects_distinct,
            duplicate_effects: effects - effects_distinct,
            completed,
            dead,
            dead_of_problem: dead - dead_of_rescue,
            dead_of_rescue,
            good_dead,
            effect_and_dead,
            lost,
            left_in_queue,
            left_detail,
            rerun_jobs,
            reruns_after_effect,
            effects_on_later_attempt,
            groups,
            groups_by_cause,
            group_lines,
            alerts_delivered: alerts.new_by_group.values().sum(),
            alerts_missing,
            alerts_duplicated,
            alerts_unexpected,
            other_messages: alerts.other,
        })
    }

    fn failures(&self, jobs: u32, doomed: usize) -> Vec<String> {
        let mut failures = Vec::new();
        let mut check = |bad: bool, what: String| {
            if bad {
                failures.push(what);
            }
        };
        check(self.lost > 0, format!("{} acknowledged jobs lost", self.lost));
        check(self.duplicate_effects > 0, format!("{} duplicate effects", self.duplicate_effects));
        check(
            self.effect_and_dead > 0,
            format!("{} jobs have an effect and a dead letter", self.effect_and_dead),
        );
        check(self.good_dead > 0, format!("{} jobs meant to succeed died", self.good_dead));
        check(
            self.completed + self.dead != i64::from(jobs),
            format!("completed {} + dead {} != {jobs} jobs", self.completed, self.dead),
        );
        check(self.dead != doomed as i64, format!("{} dead, {doomed} meant to fail", self.dead));
        check(!self.alerts_missing.is_empty(), format!("no alert for groups {:?}", self.alerts_missing));
        check(
            !self.alerts_duplicated.is_empty(),
            format!("alerted more than once (group, times): {:?}", self.alerts_duplicated),
        );
        check(
            !self.alerts_unexpected.is_empty(),
            format!("alerts for groups that are not the run's: {:?}", self.alerts_unexpected),
        );
        failures
    }
}

/// Which of the [`PROBLEMS`] an error message is.
fn problem_of(message: &str) -> Option<usize> {
    PROBLEMS.iter().position(|p| message.starts_with(p))
}
