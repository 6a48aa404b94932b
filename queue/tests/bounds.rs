//! Bounded work: stored error messages are capped, and so is each job's error history; actions
//! and counts take a bounded request,
//! and `Duration::MAX` anywhere in the configuration means "as good as never", not a panic.

mod common;

use std::time::Duration;

use backstop::admin::{self, DeadAction, JobSearch, LiveAction};
use backstop::{
    Error, Job, JobContext, JobError, MAX_ERROR_MESSAGE_BYTES, MAX_KEPT_ATTEMPT_ERRORS, NewJob, Runner,
    Worker,
};
use common::{RunningRunner, count, pool, wait_for_count};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DEADLINE: Duration = Duration::from_secs(8);

/// Fails with a message of `bytes` bytes, retrying after `retry_secs` (at most 2 attempts).
#[derive(Serialize, Deserialize)]
struct Verbose {
    bytes: usize,
}

impl Job for Verbose {
    const KIND: &'static str = "verbose";
    fn retry_policy() -> backstop::RetryPolicy {
        backstop::RetryPolicy::schedule(vec![Duration::from_millis(10)]).max_attempts(2).jitter(0.0)
    }
}

struct VerboseWorker;

impl Worker for VerboseWorker {
    type Job = Verbose;
    async fn work(&self, job: Verbose, _: JobContext) -> Result<(), JobError> {
        // A 3-byte character, so the cut lands inside one unless it respects char boundaries.
        Err(JobError::retry("€".repeat(job.bytes / 3)))
    }
}

fn assert_cut(message: &str, original: usize) {
    assert!(message.len() <= MAX_ERROR_MESSAGE_BYTES, "{} bytes stored", message.len());
    let (kept, marker) = message.split_once('…').expect("marked as cut");
    assert_eq!(marker, format!(" [cut: {} bytes]", original - kept.len()));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn long_error_messages_are_cut_in_last_error_and_every_history_entry(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let bytes = 300_000;
    let id = backstop::enqueue(&pool, &Verbose { bytes }).await.unwrap().created().unwrap();
    let runner = RunningRunner::start(common::test_runner(&pool).register(VerboseWorker));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    let dead = admin::dead_job(&pool, id).await.unwrap().unwrap();
    assert_cut(dead.last_error.as_deref().unwrap(), bytes);
    assert_eq!(dead.errors.0.len(), 2);
    for entry in &dead.errors.0 {
        assert_cut(&entry.error, bytes);
    }
    // An operator's cancel reason goes the same way.
    let live = backstop::enqueue(&pool, NewJob::from_json("k", &json!({}))).await.unwrap().created().unwrap();
    admin::cancel_jobs(&pool, &[live], &"x".repeat(100_000)).await.unwrap();
    assert_cut(&admin::dead_job(&pool, live).await.unwrap().unwrap().last_error.unwrap(), 100_000);
}

/// Fails every attempt with its own number in the message, to retry at once, `attempts` times.
#[derive(Serialize, Deserialize)]
struct Stubborn;

impl Job for Stubborn {
    const KIND: &'static str = "stubborn";
}

struct StubbornWorker;

impl Worker for StubbornWorker {
    type Job = Stubborn;
    async fn work(&self, _: Stubborn, ctx: JobContext) -> Result<(), JobError> {
        Err(JobError::retry_at(chrono::Utc::now(), format!("attempt {} failed", ctx.attempt)))
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_with_many_attempts_keeps_its_first_and_newest_errors(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let attempts = MAX_KEPT_ATTEMPT_ERRORS as i32 + 70;
    let id = backstop::enqueue(&pool, NewJob::new(&Stubborn).max_attempts(attempts))
        .await
        .unwrap()
        .created()
        .unwrap();
    let runner = RunningRunner::start(
        common::test_runner(&pool).poll_interval(Duration::from_millis(5)).register(StubbornWorker),
    );
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, Duration::from_secs(60)).await;
    runner.stop().await;

    let dead = admin::dead_job(&pool, id).await.unwrap().unwrap();
    assert_eq!(dead.attempts, attempts);
    assert_eq!(dead.last_error.as_deref(), Some(format!("attempt {attempts} failed").as_str()));
    let kept: Vec<i32> = dead.errors.0.iter().map(|e| e.attempt).collect();
    let newest = attempts - MAX_KEPT_ATTEMPT_ERRORS as i32 + 2..=attempts;
    assert_eq!(kept, std::iter::once(1).chain(newest).collect::<Vec<_>>());
    for entry in &dead.errors.0 {
        assert_eq!(entry.error, format!("attempt {} failed", entry.attempt));
    }
}

/// `backstop.append_attempt_error` against what it promises, for every history length up to
/// past the cap and several caps: the first entry, then the newest, then the new one.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_history_cap_keeps_the_first_and_the_newest_entries(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    for keep in [2_usize, 3, 7, MAX_KEPT_ATTEMPT_ERRORS] {
        for len in 0..=keep + 3 {
            let history: Vec<serde_json::Value> = (1..=len).map(|n| json!({ "attempt": n })).collect();
            let entry = json!({ "attempt": len + 1, "error": "<b>it's</b>'); drop table backstop.jobs; --" });
            let appended: serde_json::Value =
                sqlx::query_scalar("select backstop.append_attempt_error($1, $2, $3)")
                    .bind(json!(history))
                    .bind(&entry)
                    .bind(keep as i32)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            let mut expected = history.clone();
            expected.push(entry.clone());
            if expected.len() > keep {
                let newest = expected.split_off(expected.len() - (keep - 1));
                expected.truncate(1);
                expected.extend(newest);
            }
            assert_eq!(appended, json!(expected), "keep {keep}, {len} entries before");
        }
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn actions_and_counts_refuse_requests_over_their_limit(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let too_many: Vec<i64> = (1..=admin::MAX_IDS_PER_ACTION as i64 + 1).collect();
    let just_enough = &too_many[..admin::MAX_IDS_PER_ACTION];
    let over = |result: backstop::Result<u64>| {
        assert!(
            matches!(result, Err(Error::OverLimit { given, limit, .. })
                if given == too_many.len() as u64 && limit == admin::MAX_IDS_PER_ACTION as u64),
            "{result:?}"
        );
    };
    over(admin::retry_dead_jobs(&pool, &too_many).await.map(|r| r.retried));
    over(admin::discard_dead_jobs(&pool, &too_many).await);
    over(admin::delete_dead_jobs(&pool, &too_many).await);
    over(admin::run_jobs_now(&pool, &too_many).await);
    over(admin::delete_jobs(&pool, &too_many).await);
    over(admin::cancel_jobs(&pool, &too_many, "r").await);
    let mut conn = pool.acquire().await.unwrap();
    over(admin::act_on_dead_jobs(&mut conn, DeadAction::Delete, &too_many).await.map(|o| o.changed));
    over(admin::act_on_jobs(&mut conn, LiveAction::Delete, &too_many, "me").await);
    assert_eq!(admin::delete_jobs(&pool, just_enough).await.unwrap(), 0, "the limit itself is fine");

    let search = JobSearch::default();
    let cap = admin::MAX_COUNT + 1;
    assert!(matches!(admin::count_jobs(&pool, None, &search, cap).await, Err(Error::OverLimit { .. })));
    assert!(matches!(admin::count_dead_jobs(&pool, &search, false, cap).await, Err(Error::OverLimit { .. })));
    assert_eq!(admin::count_jobs(&pool, None, &search, admin::MAX_COUNT).await.unwrap(), 0);
}

/// Never retries for real: its backoff is `Duration::MAX`.
#[derive(Serialize, Deserialize)]
struct Patient;

impl Job for Patient {
    const KIND: &'static str = "patient";
    fn retry_policy() -> backstop::RetryPolicy {
        backstop::RetryPolicy::schedule(vec![Duration::MAX])
    }
    fn timeout() -> Option<Duration> {
        Some(Duration::MAX)
    }
}

struct PatientWorker;

impl Worker for PatientWorker {
    type Job = Patient;
    async fn work(&self, _: Patient, _: JobContext) -> Result<(), JobError> {
        Err(JobError::retry("try again in a very long time"))
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn duration_max_configuration_saturates_instead_of_failing(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // Maintenance's last step forgets worker rows silent for over a day: its sign of having
    // run to the end.
    sqlx::query(
        "insert into backstop.workers (id, queues, last_seen) values ('long-gone', '{}', now() - interval '2 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let failing = backstop::enqueue(&pool, &Patient).await.unwrap().created().unwrap();
    let delayed = backstop::enqueue(&pool, NewJob::new(&Patient).delay(Duration::MAX))
        .await
        .unwrap()
        .created()
        .unwrap();
    let runner = RunningRunner::start(
        Runner::builder(pool.clone())
            .register(PatientWorker)
            .poll_interval(Duration::MAX)
            .heartbeat(Duration::MAX, Duration::MAX)
            .job_timeout(Duration::MAX)
            .shutdown_timeout(Duration::MAX)
            .maintenance_interval(Duration::MAX)
            .idempotency_key_max_age(Duration::MAX),
    );
    wait_for_count(&pool, "select count(*) from backstop.workers where id = 'long-gone'", 0, DEADLINE).await;
    // The failed attempt is recorded, to run again in about a century.
    wait_for_count(
        &pool,
        "select count(*) from backstop.jobs where attempts = 1 and locked_by is null",
        1,
        DEADLINE,
    )
    .await;
    runner.stop().await;
    let far = chrono::Utc::now() + chrono::Duration::days(50 * 365);
    for id in [failing, delayed] {
        let job = admin::job(&pool, id).await.unwrap().unwrap();
        assert!(job.run_at > far, "job {id} runs at {}", job.run_at);
    }
    assert_eq!(count(&pool, "select count(*) from backstop.workers").await, 0, "deregistered");
}
