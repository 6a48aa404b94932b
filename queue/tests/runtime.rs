//! The worker runtime against a real PostgreSQL: wake-ups, ordering, concurrency, pausing,
//! retries, dead letters, faults and shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use backstop::admin::{self, DeadJobFilter};
use backstop::{Job, JobContext, JobError, NewJob, Runner, Worker};
use common::{
    Action, RunningRunner, Scripted, ScriptedWorker, count, pool, test_runner, wait_for, wait_for_count,
};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DEADLINE: Duration = Duration::from_secs(15);

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn runs_jobs_deletes_them_and_counts_them(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let worker = ScriptedWorker::default();
    let jobs = (0..50).map(|i| NewJob::new(&Scripted::new(format!("job{i}"), Action::Succeed)));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    let mut labels: Vec<String> = worker.runs().into_iter().map(|(l, _)| l).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 50, "every job ran");
    let stats = admin::stats_since(&pool, chrono::Utc::now() - chrono::Duration::minutes(5)).await.unwrap();
    assert_eq!(stats.iter().map(|s| s.completed).sum::<i64>(), 50, "{stats:?}");
    assert_eq!(
        count(&pool, "select count(*) from backstop.workers").await,
        0,
        "a stopped runner deregisters"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn notify_wakes_an_idle_worker_without_waiting_for_the_poll(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let worker = ScriptedWorker::default();
    // A one-minute poll: if the job runs within the deadline, NOTIFY woke the worker.
    let runner = RunningRunner::start(
        test_runner(&pool).poll_interval(Duration::from_secs(60)).register(worker.clone()),
    );
    wait_for_count(&pool, "select count(*) from backstop.workers", 1, DEADLINE).await;
    // Give the fetcher time to finish its first (empty) claim and go to sleep, so the job
    // below can only be found through NOTIFY (this sleep is not a wait for the outcome).
    tokio::time::sleep(Duration::from_millis(300)).await;
    backstop::enqueue(&pool, &Scripted::new("woken", Action::Succeed)).await.unwrap();
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(10)).await;
    runner.stop().await;
    assert_eq!(worker.runs(), [("woken".to_owned(), 1)]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn scheduled_jobs_are_found_by_polling_when_due(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    let id = backstop::enqueue(
        &pool,
        NewJob::new(&Scripted::new("later", Action::Succeed)).delay(Duration::from_millis(700)),
    )
    .await
    .unwrap()
    .created()
    .unwrap();
    let enqueued_at = std::time::Instant::now();
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    assert!(enqueued_at.elapsed() >= Duration::from_millis(600), "ran before its run_at");
    runner.stop().await;
    assert_eq!(worker.runs().len(), 1, "job {id} ran once");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn lower_priority_numbers_run_first(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let jobs = [("low", 5), ("high", -5), ("normal", 0)]
        .map(|(label, p)| NewJob::new(&Scripted::new(label, Action::Succeed)).priority(p));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let worker = ScriptedWorker::default();
    let runner =
        RunningRunner::start(test_runner(&pool).queue("default", 1).prefetch(1).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    let order: Vec<String> = worker.runs().into_iter().map(|(l, _)| l).collect();
    assert_eq!(order, ["high", "normal", "low"]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn concurrency_is_limited_per_queue(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let jobs = (0..12).map(|i| NewJob::new(&Scripted::new(format!("s{i}"), Action::SleepMillis(150))));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).queue("default", 3).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    assert_eq!(worker.max_running.load(Ordering::SeqCst), 3);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_paused_queue_is_not_worked_until_resumed(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    admin::pause_queue(&pool, "default").await.unwrap();
    assert_eq!(admin::paused_queues(&pool).await.unwrap(), ["default"]);
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(
        test_runner(&pool).poll_interval(Duration::from_secs(60)).register(worker.clone()),
    );
    backstop::enqueue(&pool, &Scripted::new("held", Action::Succeed)).await.unwrap();
    // The runner is up and has been notified of the job; it must still not run it. Wait for
    // its heartbeat twice to be sure it has had the chance.
    wait_for_count(&pool, "select count(*) from backstop.workers", 1, DEADLINE).await;
    let first_seen: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select last_seen from backstop.workers").fetch_one(&pool).await.unwrap();
    wait_for("two heartbeats", DEADLINE, || {
        let pool = pool.clone();
        async move {
            let seen: chrono::DateTime<chrono::Utc> =
                sqlx::query_scalar("select last_seen from backstop.workers").fetch_one(&pool).await.ok()?;
            (seen > first_seen + chrono::Duration::milliseconds(300)).then_some(())
        }
    })
    .await;
    assert!(worker.runs().is_empty(), "a paused queue ran a job");
    // Resuming notifies, so the job runs without waiting for the one-minute poll.
    admin::resume_queue(&pool, "default").await.unwrap();
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(10)).await;
    runner.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn failures_retry_with_history_then_dead_letter(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let id = backstop::enqueue(&pool, &Scripted::new("doomed", Action::FailAlways))
        .await
        .unwrap()
        .created()
        .unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 0);
    let dead = admin::dead_job(&pool, id).await.unwrap().expect("same id in the dead-letter table");
    assert_eq!((dead.reason.as_str(), dead.attempts, dead.max_attempts), ("exhausted", 3, 3));
    let history: Vec<(i32, String)> = dead.errors.0.iter().map(|e| (e.attempt, e.error.clone())).collect();
    assert_eq!(
        history,
        (1..=3).map(|a| (a, format!("doomed failed on attempt {a}"))).collect::<Vec<_>>(),
        "every attempt's error is kept"
    );
    assert!(dead.errors.0.iter().all(|e| e.worker.contains(':')), "worker ids recorded");
    assert_eq!(dead.last_error.as_deref(), Some("doomed failed on attempt 3"));
    let stats = admin::stats_since(&pool, chrono::Utc::now() - chrono::Duration::minutes(5)).await.unwrap();
    assert_eq!(
        (stats.iter().map(|s| s.failed).sum::<i64>(), stats.iter().map(|s| s.dead).sum::<i64>()),
        (3, 1)
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_that_recovers_is_not_dead_lettered(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    backstop::enqueue(&pool, &Scripted::new("flaky", Action::FailUntilAttempt(3))).await.unwrap();
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    assert_eq!(worker.runs().iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn worker_decisions_fail_now_cancel_and_retry_at(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let fail_now =
        backstop::enqueue(&pool, &Scripted::new("a", Action::FailNow)).await.unwrap().created().unwrap();
    let cancel =
        backstop::enqueue(&pool, &Scripted::new("b", Action::Cancel)).await.unwrap().created().unwrap();
    let retry_at = backstop::enqueue(&pool, &Scripted::new("c", Action::RetryInMillis(60 * 60 * 1000)))
        .await
        .unwrap()
        .created()
        .unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 2, DEADLINE).await;
    wait_for_count(
        &pool,
        "select count(*) from backstop.jobs where attempts = 1 and locked_by is null",
        1,
        DEADLINE,
    )
    .await;
    runner.stop().await;
    let dead = |id| {
        let pool = pool.clone();
        async move { admin::dead_job(&pool, id).await.unwrap().unwrap() }
    };
    let a = dead(fail_now).await;
    assert_eq!((a.reason.as_str(), a.attempts), ("failed_now", 1), "fail now skips the remaining attempts");
    assert_eq!(dead(cancel).await.reason, "cancelled");
    let c = admin::job(&pool, retry_at).await.unwrap().unwrap();
    let wait = c.run_at - chrono::Utc::now();
    assert!(wait > chrono::Duration::minutes(55), "retry_at respected: {wait}");
    assert_eq!(c.state(chrono::Utc::now()), admin::JobState::Retrying);
    let stats = admin::stats_since(&pool, chrono::Utc::now() - chrono::Duration::minutes(5)).await.unwrap();
    assert_eq!(stats.iter().map(|s| s.dead).sum::<i64>(), 1, "cancellations are not counted as dead");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_unknown_kind_fails_clearly_and_is_dead_lettered_not_lost(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let job = NewJob::from_json("invoice.reticulate", &json!({"id": 7})).max_attempts(2);
    let id = backstop::enqueue(&pool, job).await.unwrap().created().unwrap();
    // Unknown kinds use the default policy (30 s backoff): make the retry due at once.
    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(
        &pool,
        "select count(*) from backstop.jobs where attempts = 1 and locked_by is null",
        1,
        DEADLINE,
    )
    .await;
    let first = admin::job(&pool, id).await.unwrap().unwrap();
    assert!(
        first.last_error.as_deref().unwrap().contains("unknown job kind `invoice.reticulate`"),
        "{first:?}"
    );
    admin::run_jobs_now(&pool, &[id]).await.unwrap();
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    let dead = admin::dead_job(&pool, id).await.unwrap().unwrap();
    assert_eq!(dead.payload, json!({"id": 7}), "payload kept");
    assert_eq!(dead.errors.0.len(), 2);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_payload_that_does_not_deserialize_fails_now_with_the_serde_error(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let id = backstop::enqueue(&pool, NewJob::from_json("scripted", &json!({"lable": "typo"})))
        .await
        .unwrap()
        .created()
        .unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    let dead = admin::dead_job(&pool, id).await.unwrap().unwrap();
    assert_eq!((dead.reason.as_str(), dead.attempts), ("failed_now", 1));
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("payload does not match job kind `scripted`")
            && error.contains("missing field `label`"),
        "{error}"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_panicking_worker_is_a_failed_attempt_and_the_runner_survives(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let boom = backstop::enqueue(&pool, NewJob::new(&Scripted::new("boom", Action::Panic)).max_attempts(1))
        .await
        .unwrap()
        .created()
        .unwrap();
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).queue("default", 1).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    // The same (only) executor goes on to run the next job.
    backstop::enqueue(&pool, &Scripted::new("after", Action::Succeed)).await.unwrap();
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    let dead = admin::dead_job(&pool, boom).await.unwrap().unwrap();
    assert!(dead.last_error.unwrap().contains("worker panicked: scripted panic in boom"));
    assert!(worker.runs().iter().any(|(l, _)| l == "after"));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_over_its_timeout_is_a_failed_attempt(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let id = backstop::enqueue(
        &pool,
        NewJob::new(&Scripted::new("slow", Action::SleepMillis(10_000))).max_attempts(1),
    )
    .await
    .unwrap()
    .created()
    .unwrap();
    let runner = RunningRunner::start(
        test_runner(&pool).job_timeout(Duration::from_millis(200)).register(ScriptedWorker::default()),
    );
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    let error = admin::dead_job(&pool, id).await.unwrap().unwrap().last_error.unwrap();
    assert_eq!(error, "timed out after 200ms");
}

/// A worker that waits until released, to hold jobs in flight during shutdown tests.
#[derive(Clone)]
struct Gate {
    started: std::sync::Arc<tokio::sync::Semaphore>,
    release: std::sync::Arc<tokio::sync::Semaphore>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Gated;
impl Job for Gated {
    const KIND: &'static str = "gated";
}

impl Gate {
    fn closed() -> Self {
        let semaphore = || std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        Self { started: semaphore(), release: semaphore() }
    }
}

impl Worker for Gate {
    type Job = Gated;
    async fn work(&self, _: Gated, _: JobContext) -> Result<(), JobError> {
        self.started.add_permits(1);
        let _permit = self.release.acquire().await.expect("gate open");
        Ok(())
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn graceful_shutdown_finishes_running_jobs_and_hands_back_buffered_ones(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    backstop::enqueue_many(&pool, (0..5).map(|_| NewJob::new(&Gated))).await.unwrap();
    let gate = Gate::closed();
    // Concurrency 1, prefetch 4: the first claim takes 4 jobs; one runs, three wait locally,
    // and the fifth stays in the table.
    let runner =
        RunningRunner::start(test_runner(&pool).queue("default", 1).prefetch(4).register(gate.clone()));
    let _started = gate.started.acquire().await.unwrap();
    wait_for_count(&pool, "select count(*) from backstop.jobs where locked_by is not null", 4, DEADLINE)
        .await;
    runner.shutdown.cancel();
    // Shutdown waits for the running job; let it finish.
    gate.release.add_permits(1);
    runner.stop().await;
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 4, "the running job completed");
    assert_eq!(
        count(&pool, "select count(*) from backstop.jobs where locked_by is null and attempts = 0").await,
        4,
        "buffered jobs were handed back with their attempt uncounted"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_still_running_at_the_shutdown_timeout_is_handed_back(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let id = backstop::enqueue(&pool, &Gated).await.unwrap().created().unwrap();
    let gate = Gate::closed();
    let runner = RunningRunner::start(
        test_runner(&pool).shutdown_timeout(Duration::from_millis(300)).register(gate.clone()),
    );
    let _started = gate.started.acquire().await.unwrap();
    runner.stop().await; // never released: interrupted after 300 ms
    let job = admin::job(&pool, id).await.unwrap().expect("the job is still there");
    assert!(job.locked_by.is_none(), "unlocked so another worker can take it");
    assert!(job.run_at <= chrono::Utc::now(), "runs again now");
    assert_eq!(job.errors.0[0].error, "interrupted: the worker shut down before the job finished");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn dead_jobs_can_be_listed_retried_discarded_and_deleted(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let ids: Vec<i64> = backstop::enqueue_many(
        &pool,
        (0..5).map(|i| NewJob::new(&Scripted::new(format!("d{i}"), Action::FailNow))),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|e| e.created().unwrap())
    .collect();
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 5, DEADLINE).await;
    runner.stop().await;

    // Keyset pages, newest first.
    let page1 =
        admin::dead_jobs(&pool, &DeadJobFilter { limit: Some(3), ..Default::default() }).await.unwrap();
    let last = page1.last().unwrap();
    let page2 = admin::dead_jobs(
        &pool,
        &DeadJobFilter { limit: Some(3), before: Some((last.died_at, last.id)), ..Default::default() },
    )
    .await
    .unwrap();
    let mut seen: Vec<i64> = page1.iter().chain(&page2).map(|d| d.id).collect();
    assert_eq!(seen.len(), 5);
    seen.sort();
    assert_eq!(seen, ids);

    assert_eq!(admin::discard_dead_jobs(&pool, &ids[0..2]).await.unwrap(), 2);
    assert_eq!(admin::discard_dead_jobs(&pool, &ids[0..2]).await.unwrap(), 0, "already discarded");
    assert_eq!(
        admin::dead_jobs(&pool, &DeadJobFilter::default()).await.unwrap().len(),
        3,
        "discarded are hidden"
    );
    assert_eq!(admin::delete_dead_jobs(&pool, &ids[4..5]).await.unwrap(), 1);

    // Retry moves the job back under the same id, attempts reset, history kept.
    assert_eq!(admin::retry_dead_jobs(&pool, &[ids[2], ids[3], 999_999]).await.unwrap(), 2);
    let back = admin::job(&pool, ids[2]).await.unwrap().unwrap();
    assert_eq!((back.attempts, back.errors.0.len()), (0, 1));
    // Attempts were reset, so it is a fresh start: queued, with its old history still shown.
    assert_eq!(back.state(chrono::Utc::now()), admin::JobState::Queued);
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 2);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn admin_actions_skip_running_jobs(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let running = backstop::enqueue(&pool, &Gated).await.unwrap().created().unwrap();
    let gate = Gate::closed();
    let runner =
        RunningRunner::start(test_runner(&pool).queue("default", 1).prefetch(1).register(gate.clone()));
    let _started = gate.started.acquire().await.unwrap();
    let waiting = backstop::enqueue(&pool, NewJob::new(&Gated).delay(Duration::from_secs(600)))
        .await
        .unwrap()
        .created()
        .unwrap();
    assert_eq!(admin::cancel_jobs(&pool, &[running, waiting], "operator cancelled").await.unwrap(), 1);
    assert_eq!(admin::delete_jobs(&pool, &[running]).await.unwrap(), 0);
    assert_eq!(admin::dead_job(&pool, waiting).await.unwrap().unwrap().reason, "cancelled");
    gate.release.add_permits(10);
    runner.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_can_read_its_context(_: PgPoolOptions, opts: PgConnectOptions) {
    struct Probe(tokio::sync::mpsc::UnboundedSender<(i64, String, i32, bool)>);
    impl Worker for Probe {
        type Job = Scripted;
        async fn work(&self, _: Scripted, ctx: JobContext) -> Result<(), JobError> {
            let _ = self.0.send((ctx.id, ctx.queue.clone(), ctx.attempt, ctx.is_last_attempt()));
            Ok(())
        }
    }
    let pool = pool(opts).await;
    let id = backstop::enqueue(
        &pool,
        NewJob::new(&Scripted::new("p", Action::Succeed)).queue("q1").max_attempts(1),
    )
    .await
    .unwrap()
    .created()
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = RunningRunner::start(Runner::builder(pool.clone()).queue("q1", 1).register(Probe(tx)));
    let seen = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    runner.stop().await;
    assert_eq!(seen, (id, "q1".to_owned(), 1, true));
}
