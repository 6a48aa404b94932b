//! Running workers: claim, run, complete or fail, heartbeat, shut down gracefully.
//!
//! One [`Runner`] per process. Per queue, one fetcher claims batches of jobs with
//! `FOR UPDATE SKIP LOCKED` into a small local buffer, and `concurrency` executors run them.
//! Completions are batched into one `DELETE` per round; failures are recorded one by one,
//! each in its own transaction (the dead-letter move must be atomic with the failure).

mod buffer;
mod claim_cursor;
mod completer;
mod cron_loop;
mod executor;
mod failure;
mod fetcher;
mod held;
mod index_upkeep;
mod listener;
mod maintenance;
mod registry;
mod urgent_lane;
mod wake;

#[cfg(feature = "testing")]
pub(crate) use index_upkeep::rebuild_outgrown;
#[cfg(feature = "testing")]
pub(crate) use maintenance::{Owners, rescue_stale_jobs};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cron::CronSchedule;
use crate::duration::saturate;
use crate::job::{Job, Worker};
use crate::{Error, Result, sql};

pub(crate) use failure::{Failure, Recorded, record_failure, record_or_hand_back};
pub(crate) use registry::job_context;
#[cfg(feature = "testing")]
pub(crate) use registry::payload_mismatch;
use registry::{Handler, Registry};

/// Builds a [`Runner`]. See [`Runner::builder`].
///
/// Every duration saturates at 100 years: `Duration::MAX` is a fine way to say "never" (keep
/// idempotency keys for ever, never time a job out), not a panic or a database error.
#[derive(Debug)]
pub struct RunnerBuilder {
    pool: PgPool,
    registry: Registry,
    kind_queues: Vec<&'static str>,
    queues: Vec<(String, usize)>,
    config: Config,
    cron: Vec<CronSchedule>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub worker_id: String,
    pub prefetch: Option<usize>,
    pub claim_batch: usize,
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub job_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub maintenance_interval: Duration,
    pub idempotency_key_max_age: Duration,
    pub stats_max_age: Duration,
    pub durable_acks: bool,
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    pub console_url: Option<String>,
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    pub redactor: crate::redact::Redactor,
}

/// The most claimed jobs a queue's buffer grows to when prefetch adapts (no `prefetch` set).
const MAX_ADAPTIVE_PREFETCH: usize = 500;

/// How long shutdown waits for heartbeat, cron and maintenance to finish their current step.
const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrency per queue when none is configured.
pub const DEFAULT_CONCURRENCY: usize = 10;

impl RunnerBuilder {
    /// Runs jobs of `W::Job::KIND` with `worker`.
    pub fn register<W: Worker>(mut self, worker: W) -> Self {
        self.registry.insert(W::Job::KIND, Handler::new(worker));
        self.kind_queues.push(W::Job::QUEUE);
        self
    }

    /// Works queue `name` with `concurrency` jobs at a time in this process. Without any
    /// `queue` call, the runner works the queues of its registered kinds (and `default`) at
    /// [`DEFAULT_CONCURRENCY`] each.
    pub fn queue(mut self, name: impl Into<String>, concurrency: usize) -> Self {
        self.queues.push((name.into(), concurrency.max(1)));
        self
    }

    /// Fixes how many claimed jobs per queue may wait locally for a free executor. By default
    /// this adapts: from the queue's concurrency up to 500 while executors run out of work
    /// (short jobs), back down when they do not (long jobs, which other processes should be
    /// free to take).
    pub fn prefetch(mut self, jobs: usize) -> Self {
        self.config.prefetch = Some(jobs);
        self
    }

    /// The most jobs claimed by one statement (default 200).
    pub fn claim_batch(mut self, jobs: usize) -> Self {
        self.config.claim_batch = jobs.max(1);
        self
    }

    /// How often an idle queue checks for work when no notification arrives: the fallback
    /// for missed notifications and the resolution of scheduled jobs (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = saturate(interval);
        self
    }

    /// How often this process says it is alive, and how long silence means it died and its
    /// jobs are taken back (defaults 5 s and 30 s). The timeout is recorded with the process,
    /// so every other process, whatever its own setting, waits this long before taking back
    /// this one's jobs.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.heartbeat_interval = saturate(interval);
        self.config.heartbeat_timeout = saturate(timeout.max(interval));
        self
    }

    /// How long one attempt may run when its kind sets no [`Job::timeout`] (default 5 min).
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.config.job_timeout = saturate(timeout);
        self
    }

    /// On shutdown, how long running jobs get to finish before they are interrupted and
    /// handed back (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = saturate(timeout);
        self
    }

    /// How old an idempotency key gets before maintenance deletes it (default 30 days).
    pub fn idempotency_key_max_age(mut self, age: Duration) -> Self {
        self.config.idempotency_key_max_age = saturate(age);
        self
    }

    /// How often maintenance (key and counter cleanup, rebuilding search indexes that have
    /// outgrown the jobs table) runs (default 1 min).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.config.maintenance_interval = saturate(interval);
        self
    }

    /// This process's name in locks and error histories (default `host:pid:random`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.config.worker_id = id.into();
        self
    }

    /// Commit claims, completions and heartbeats with `synchronous_commit = on` (default off).
    ///
    /// Off is safe for the promise Backstop makes: enqueues, failures and dead-letter moves
    /// always commit durably. A claim or completion lost to a *database* crash (at most the
    /// last fraction of a second of them) only means a job runs again, which at-least-once
    /// delivery already allows. Not waiting for a WAL flush on every claim and completion is
    /// worth about 4x throughput on the benchmark machine (see the README).
    pub fn durable_acks(mut self, durable: bool) -> Self {
        self.config.durable_acks = durable;
        self
    }

    /// The console's address (`https://backstop.example.com`), for links from telemetry to a
    /// job's page: `{url}/jobs/{id}`, the request URL of a Sentry event and the
    /// `backstop.job.url` attribute of a job's span. Without it, no link is sent.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
    /// let runner = backstop::Runner::builder(pool)
    ///     .console_url("https://backstop.example.com")
    ///     .redact_keys(["iban", "ssn"])
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    pub fn console_url(mut self, url: impl Into<String>) -> Self {
        self.config.console_url = Some(url.into());
        self
    }

    /// More key names whose values are masked before a payload or message leaves the process
    /// for an error tracker or a tracing backend, on top of the built-in rules (see
    /// [`redact`](crate::redact): `token`, `secret`, `password`, `api_key`, `authorization`
    /// and the like, at any depth, and secret-shaped strings anywhere). Use the same names as
    /// the console's `--redact-keys`.
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    pub fn redact_keys(mut self, keys: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.config.redactor = crate::redact::Redactor::new(keys);
        self
    }

    /// Adds a recurring schedule. See [`CronSchedule`].
    pub fn cron(mut self, schedule: CronSchedule) -> Self {
        self.cron.push(schedule);
        self
    }

    /// Checks the configuration.
    pub fn build(mut self) -> Result<Runner> {
        if self.queues.is_empty() {
            let mut names: Vec<&str> = self.kind_queues.clone();
            names.push("default");
            names.sort_unstable();
            names.dedup();
            self.queues = names.into_iter().map(|n| (n.to_owned(), DEFAULT_CONCURRENCY)).collect();
        }
        let mut seen = std::collections::HashSet::new();
        for (name, _) in &self.queues {
            if name.is_empty() || !seen.insert(name.clone()) {
                return Err(Error::InvalidOption(format!("queue {name:?} is empty or listed twice")));
            }
            // PostgreSQL refuses NUL in text: registration would fail for ever, looking like an
            // unreachable database.
            if name.contains('\0') {
                return Err(Error::InvalidOption(format!("queue {name:?} contains the NUL character")));
            }
            crate::text::check_length("a queue name", name, crate::MAX_NAME_BYTES)?;
        }
        if self.config.worker_id.contains('\0') {
            return Err(Error::InvalidOption(format!(
                "worker id {:?} contains the NUL character",
                self.config.worker_id
            )));
        }
        for schedule in &self.cron {
            schedule.validate()?;
        }
        let ack_pool = ack_pool(&self.pool, self.queues.len(), self.config.durable_acks);
        Ok(Runner {
            shared: Arc::new(Shared {
                #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
                telemetry: crate::telemetry::Telemetry::new(
                    self.config.console_url.clone(),
                    self.config.redactor.clone(),
                ),
                ack_pool,
                pool: self.pool,
                registry: self.registry,
                config: self.config,
                in_flight: Mutex::new(HashMap::new()),
                unrecorded: Mutex::new(Vec::new()),
                held: held::Held::default(),
            }),
            queues: self.queues,
            cron: self.cron,
        })
    }
}

/// A worker process's runtime: works its queues until told to stop.
///
/// ```no_run
/// # use backstop::{Job, JobContext, JobError, Runner, Worker};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendWelcomeEmail { user_id: i64 }
/// # impl Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
/// # struct Mailer;
/// # impl Worker for Mailer { type Job = SendWelcomeEmail;
/// #   async fn work(&self, _: SendWelcomeEmail, _: JobContext) -> Result<(), JobError> { Ok(()) } }
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// backstop::MIGRATOR.run(&pool).await?;
/// let runner = Runner::builder(pool)
///     .register(Mailer)
///     .queue("default", 24)
///     .build()?;
/// // Runs until SIGINT or SIGTERM, then finishes or hands back its in-flight jobs.
/// runner.run_until_signal().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Runner {
    shared: Arc<Shared>,
    queues: Vec<(String, usize)>,
    cron: Vec<CronSchedule>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// The caller's pool: job code, failure and dead-letter recording, rescue, cron.
    pub pool: PgPool,
    /// Claims, completions and heartbeats. See [`RunnerBuilder::durable_acks`].
    pub ack_pool: PgPool,
    pub registry: Registry,
    pub config: Config,
    /// Jobs an executor has started and not yet finished recording: what a forced shutdown
    /// must hand back. Value: (attempt, max_attempts).
    pub in_flight: Mutex<HashMap<i64, (i32, i32)>>,
    /// Failures that could not be recorded because the database was unreachable: their jobs
    /// are still locked by this process, so the heartbeat keeps trying to record them.
    pub unrecorded: Mutex<Vec<Failure>>,
    /// Jobs claimed and their outcome not yet written: what the fetchers compare the
    /// database's locks with, to find locks a database crash brought back (see `held`).
    pub held: held::Held,
    /// Error tracker and tracing backend hooks (features `sentry`, `opentelemetry`).
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    pub telemetry: crate::telemetry::Telemetry,
}

impl Runner {
    /// Starts building a runner on `pool` (give the pool at least as many connections as
    /// queues + 4).
    pub fn builder(pool: PgPool) -> RunnerBuilder {
        RunnerBuilder {
            pool,
            registry: Registry::new(),
            kind_queues: Vec::new(),
            queues: Vec::new(),
            config: Config {
                worker_id: default_worker_id(),
                prefetch: None,
                claim_batch: 200,
                poll_interval: Duration::from_secs(1),
                heartbeat_interval: Duration::from_secs(5),
                heartbeat_timeout: Duration::from_secs(30),
                job_timeout: Duration::from_secs(300),
                shutdown_timeout: Duration::from_secs(30),
                maintenance_interval: Duration::from_secs(60),
                idempotency_key_max_age: Duration::from_secs(30 * 24 * 3600),
                stats_max_age: Duration::from_secs(30 * 24 * 3600),
                durable_acks: false,
                #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
                console_url: None,
                #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
                redactor: crate::redact::Redactor::default(),
            },
            cron: Vec::new(),
        }
    }

    /// This process's worker id.
    pub fn worker_id(&self) -> &str {
        &self.shared.config.worker_id
    }

    /// Runs until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: finishing in-flight jobs");
            trigger.cancel();
        });
        self.run(shutdown).await
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, lets running jobs finish (up
    /// to the shutdown timeout), hands back the rest, and returns. It keeps heartbeating until
    /// then, so no other process takes back a job that is still running here.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let shared = self.shared;
        let queue_names: Vec<String> = self.queues.iter().map(|(n, _)| n.clone()).collect();
        // A database that is briefly unreachable at start-up (a restart, a deploy that starts
        // workers first) is waited for, as it is later on; only shutdown ends the wait.
        let mut backoff = ErrorBackoff::default();
        loop {
            match register(&shared, &self.queues, &self.cron).await {
                Ok(()) => break,
                Err(Error::Database(e)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot reach the database to start; retrying");
                    if !sleep_or_shutdown(delay, &shutdown).await {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(worker_id = %shared.config.worker_id, queues = ?queue_names, "backstop runner started");

        let (completions, completions_rx) = mpsc::unbounded_channel();
        let mut background = JoinSet::new();
        let mut fetchers = JoinSet::new();
        let mut executors = JoinSet::new();
        let mut buffers = Vec::new();
        let mut wakers = HashMap::new();
        for (queue, concurrency) in &self.queues {
            let wake = Arc::new(wake::Wake::new());
            wakers.insert(queue.clone(), Arc::clone(&wake));
            let claiming = Arc::new(tokio::sync::Mutex::new(()));
            let buffer =
                Arc::new(buffer::Buffer::new(*concurrency, shared.config.prefetch, MAX_ADAPTIVE_PREFETCH));
            fetchers.spawn(fetcher::run(
                Arc::clone(&shared),
                queue.clone(),
                Arc::clone(&wake),
                Arc::clone(&buffer),
                Arc::clone(&claiming),
                shutdown.clone(),
            ));
            fetchers.spawn(urgent_lane::run(
                Arc::clone(&shared),
                queue.clone(),
                wake,
                Arc::clone(&buffer),
                claiming,
                shutdown.clone(),
            ));
            for _ in 0..*concurrency {
                executors.spawn(executor::run(
                    Arc::clone(&shared),
                    Arc::clone(&buffer),
                    completions.clone(),
                    shutdown.clone(),
                ));
            }
            buffers.push(buffer);
        }
        drop(completions);
        let completer = tokio::spawn(completer::run(Arc::clone(&shared), completions_rx));
        background.spawn(listener::run(Arc::clone(&shared), wakers, shutdown.clone()));
        // The heartbeat outlives the shutdown signal: while jobs run to the shutdown timeout,
        // this process must still look alive, or another one takes them back and runs them
        // twice. It stops once every job is finished or handed back.
        let stop_heartbeat = CancellationToken::new();
        background.spawn(maintenance::heartbeat(
            Arc::clone(&shared),
            self.queues.clone(),
            stop_heartbeat.clone(),
        ));
        background.spawn(maintenance::cleanup(Arc::clone(&shared), shutdown.clone()));
        background.spawn(cron_loop::run(Arc::clone(&shared), self.cron, shutdown.clone()));

        shutdown.cancelled().await;
        tracing::info!("backstop runner stopping");
        let graceful = tokio::time::timeout(shared.config.shutdown_timeout, async {
            while executors.join_next().await.is_some() {}
        })
        .await;
        tracing::debug!(graceful = graceful.is_ok(), "executors stopped");
        if graceful.is_err() {
            executors.abort_all();
            while executors.join_next().await.is_some() {}
            maintenance::hand_back_interrupted(&shared).await;
        }
        // Fetchers stop at once on shutdown, but one may be finishing a claim: wait for it so
        // its jobs land in the buffer and are handed back rather than dropped.
        while fetchers.join_next().await.is_some() {}
        tracing::debug!("fetchers stopped");
        maintenance::release_buffered(&shared, buffers).await;
        // Executors are gone, so the completion channel is closed: the completer flushes what
        // it has and ends.
        let _ = completer.await;
        tracing::debug!("completions flushed");
        // A last try at failures the database was unreachable for; what still fails is
        // rescued by other processes once this one stops heartbeating.
        maintenance::record_unrecorded(&shared).await;
        stop_heartbeat.cancel();
        // Background tasks see the token between iterations. Let them finish the one they are
        // in: aborting one mid-transaction would return its connection to the pool with the
        // transaction (and its row locks) still open.
        let joined = tokio::time::timeout(BACKGROUND_STOP_TIMEOUT, async {
            while background.join_next().await.is_some() {}
        })
        .await;
        if joined.is_err() {
            tracing::warn!("background tasks did not stop in time; aborting them");
            background.abort_all();
            while background.join_next().await.is_some() {}
        }
        tracing::debug!("background tasks stopped");
        if let Ok(mut conn) = shared.ack_pool.acquire().await {
            let _ = sql::worker_delete(&mut conn, &shared.config.worker_id).await;
        }
        shared.ack_pool.close().await;
        tracing::info!("backstop runner stopped");
        Ok(())
    }
}

async fn register(shared: &Shared, queues: &[(String, usize)], cron: &[CronSchedule]) -> Result<()> {
    let mut conn = shared.ack_pool.acquire().await?;
    let timeout = shared.config.heartbeat_timeout.as_secs_f64();
    sql::worker_heartbeat(&mut conn, &shared.config.worker_id, queues, timeout).await?;
    cron_loop::register(&mut conn, cron).await
}

/// A small pool of the runner's own for claims, completions and heartbeats, with the same
/// connection settings as the caller's pool (plus `synchronous_commit = off` unless durable
/// acks were asked for). Kept apart so the caller's transactions keep their durability.
fn ack_pool(pool: &PgPool, queues: usize, durable_acks: bool) -> PgPool {
    let mut options = (*pool.connect_options()).clone();
    if !durable_acks {
        options = options.options([("synchronous_commit", "off")]);
    }
    // A fetcher and an urgent lane per queue, and the completer's and maintenance's.
    let connections = u32::try_from(2 * queues + 3).unwrap_or(u32::MAX);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        // No ping before each claim: a dead connection fails the claim itself, which backs
        // off and retries on a fresh one. The ping was a round trip on every wake-up.
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}:{}:{:04x}", std::process::id(), rand::random::<u16>())
}

/// Waits for `delay`, or less if `shutdown` is cancelled. Returns `false` on shutdown.
pub(crate) async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// Exponential backoff for retrying our own database calls after errors (100 ms .. 5 s).
#[derive(Debug, Default)]
pub(crate) struct ErrorBackoff {
    failures: u32,
}

impl ErrorBackoff {
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ms = 100u64.saturating_mul(1 << self.failures.min(6));
        Duration::from_millis(ms.min(5_000))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
