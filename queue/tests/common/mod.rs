//! Shared helpers for the integration tests: a pool per test, job factories, and waiting on
//! conditions with a deadline (never a bare sleep).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backstop::{Job, JobContext, JobError, Runner, RunnerBuilder, Worker};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A pool of our own for the test's database: `#[sqlx::test]`'s pool is capped at 5
/// connections shared with every other test, too few for a runner plus the test itself.
pub async fn pool(opts: PgConnectOptions) -> PgPool {
    // Logs go to the test's captured output: shown only when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "backstop=debug".into()))
        .try_init();
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(20))
        .connect_with(opts)
        .await
        .expect("connect to the test database")
}

/// Waits until `check` returns `Some`, failing the test after `deadline` (the shipped helper).
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use backstop::testing::eventually as wait_for;

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await.expect(sql)
}

/// Waits until `sql` (a `select count(*)`) returns `expected`.
pub async fn wait_for_count(pool: &PgPool, sql: &str, expected: i64, deadline: Duration) {
    let start = tokio::time::Instant::now();
    loop {
        let now = count(pool, sql).await;
        if now == expected {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for `{sql}` to be {expected} (it is {now})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `pg_ctl ARGS` on the private test cluster (`BACKSTOP_PG_CTL`, set by `backstop
/// with-postgres`). Only the tests that restart the server use it, each alone in its binary.
pub fn pg_ctl(args: &str) {
    let ctl = std::env::var("BACKSTOP_PG_CTL").expect("set by `backstop with-postgres`");
    let status = std::process::Command::new("sh").arg("-c").arg(format!("{ctl} {args}")).status().unwrap();
    assert!(status.success(), "pg_ctl {args}");
}

/// A runner started in the background; `stop` shuts it down gracefully and waits.
pub struct RunningRunner {
    pub shutdown: CancellationToken,
    handle: JoinHandle<backstop::Result<()>>,
}

impl RunningRunner {
    pub fn start(builder: RunnerBuilder) -> Self {
        let runner = builder.build().expect("valid runner");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(runner.run(shutdown.clone()));
        Self { shutdown, handle }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("runner stops within 30 s")
            .expect("runner task did not panic")
            .expect("runner returned Ok");
    }
}

/// Fast settings for tests: short poll, quick heartbeat.
pub fn test_runner(pool: &PgPool) -> RunnerBuilder {
    Runner::builder(pool.clone())
        .poll_interval(Duration::from_millis(100))
        .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
}

/// A job whose worker does what its payload says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scripted {
    pub label: String,
    #[serde(default)]
    pub action: Action,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Succeed,
    FailAlways,
    FailNow,
    Cancel,
    RetryInMillis(i64),
    Panic,
    SleepMillis(u64),
    FailUntilAttempt(i32),
    /// Runs until the test opens the worker's gate (`ScriptedWorker::open_gate`).
    WaitForGate,
}

impl Job for Scripted {
    const KIND: &'static str = "scripted";

    fn retry_policy() -> backstop::RetryPolicy {
        // Tests want retries now, not in 30 s.
        backstop::RetryPolicy::schedule(vec![Duration::from_millis(10)]).max_attempts(3).jitter(0.0)
    }
}

impl Scripted {
    pub fn new(label: impl Into<String>, action: Action) -> Self {
        Self { label: label.into(), action }
    }
}

/// Records every run (label, attempt) and follows the script.
#[derive(Clone, Default)]
pub struct ScriptedWorker {
    pub runs: Arc<std::sync::Mutex<Vec<(String, i32)>>>,
    pub running: Arc<AtomicUsize>,
    pub max_running: Arc<AtomicUsize>,
    gate: CancellationToken,
}

impl ScriptedWorker {
    pub fn runs(&self) -> Vec<(String, i32)> {
        self.runs.lock().unwrap().clone()
    }

    /// Lets every `WaitForGate` job finish, now and from now on.
    pub fn open_gate(&self) {
        self.gate.cancel();
    }
}

impl Worker for ScriptedWorker {
    type Job = Scripted;

    async fn work(&self, job: Scripted, ctx: JobContext) -> Result<(), JobError> {
        self.runs.lock().unwrap().push((job.label.clone(), ctx.attempt));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let result = match job.action {
            Action::Succeed => Ok(()),
            Action::FailAlways => {
                Err(JobError::retry(format!("{} failed on attempt {}", job.label, ctx.attempt)))
            }
            Action::FailNow => Err(JobError::fail_now("cannot ever work")),
            Action::Cancel => Err(JobError::cancel("no longer wanted")),
            Action::RetryInMillis(ms) => Err(JobError::retry_at(
                chrono::Utc::now() + chrono::Duration::milliseconds(ms),
                "come back later",
            )),
            Action::Panic => panic!("scripted panic in {}", job.label),
            Action::SleepMillis(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Action::FailUntilAttempt(n) if ctx.attempt < n => Err(JobError::retry("not yet")),
            Action::FailUntilAttempt(_) => Ok(()),
            Action::WaitForGate => {
                self.gate.cancelled().await;
                Ok(())
            }
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
}
