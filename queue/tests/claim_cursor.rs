//! A fetcher partway through a backlog claims after the last job it claimed instead of from the
//! head of the queue (see `runtime::claim_cursor`). These tests put a job behind that cursor in
//! each way one can get there and check that it is still found, long before the backlog ends.

mod common;

use std::time::Duration;

use backstop::NewJob;
use common::{Action, RunningRunner, Scripted, ScriptedWorker, pool, test_runner, wait_for};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const BACKLOG: usize = 2_000;
const DEADLINE: Duration = Duration::from_secs(60);

/// Enqueues `n` jobs that each take 2 ms, so one executor needs at least `n` × 2 ms for them.
async fn enqueue_backlog(pool: &PgPool, n: usize) {
    let jobs = (0..n).map(|i| NewJob::new(&Scripted::new(format!("backlog{i}"), Action::SleepMillis(2))));
    backstop::enqueue_many(pool, jobs).await.unwrap();
}

/// Where `label` ran among all runs, once it has.
async fn position_of(worker: &ScriptedWorker, label: &str) -> usize {
    wait_for(&format!("{label} to run"), DEADLINE, || async {
        worker.runs().iter().position(|(l, _)| l == label)
    })
    .await
}

/// One executor taking claims of 10, so the drain is many claims, each moving the cursor.
fn one_executor(pool: &PgPool, worker: &ScriptedWorker, poll: Duration) -> RunningRunner {
    RunningRunner::start(
        test_runner(pool)
            .queue("default", 1)
            .prefetch(10)
            .claim_batch(10)
            .poll_interval(poll)
            .register(worker.clone()),
    )
}

async fn first_run(worker: &ScriptedWorker) {
    wait_for("the backlog to start", DEADLINE, || async { (!worker.runs().is_empty()).then_some(()) }).await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_more_urgent_job_enqueued_mid_backlog_runs_next(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    enqueue_backlog(&pool, BACKLOG).await;
    let worker = ScriptedWorker::default();
    // An hour's poll: only the notification's priority can send a claim back to the head.
    let runner = one_executor(&pool, &worker, Duration::from_secs(3600));
    first_run(&worker).await;
    let urgent = NewJob::new(&Scripted::new("urgent", Action::Succeed)).priority(-5);
    backstop::enqueue(&pool, urgent).await.unwrap();
    let position = position_of(&worker, "urgent").await;
    runner.stop().await;
    // Before the fix for a cursor that ignored it, it ran after the whole backlog.
    assert!(position < 100, "the urgent job ran at position {position} of {}", BACKLOG + 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_that_lands_behind_the_cursor_is_found_by_the_next_claim_from_the_head(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    enqueue_backlog(&pool, BACKLOG).await;
    let worker = ScriptedWorker::default();
    let runner = one_executor(&pool, &worker, Duration::from_millis(200));
    first_run(&worker).await;
    // The same priority, due a day ago: what a late-committing enqueue, a rescued job or a
    // handed-back one looks like. Its notification is no more urgent than the cursor.
    let old = chrono::Utc::now() - chrono::Duration::days(1);
    let behind = NewJob::new(&Scripted::new("behind", Action::Succeed)).run_at(old);
    backstop::enqueue(&pool, behind).await.unwrap();
    let position = position_of(&worker, "behind").await;
    runner.stop().await;
    // 200 ms is at most 100 backlog jobs of 2 ms; a cursor alone would reach it after all 2,000.
    assert!(position < BACKLOG / 2, "the job behind the cursor ran at position {position}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_handed_back_behind_the_cursor_runs_before_the_backlog_ends(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // The oldest job of all, claimed by another process before the backlog arrived.
    let held = NewJob::new(&Scripted::new("handed back", Action::Succeed));
    let id = backstop::enqueue(&pool, held).await.unwrap().created().unwrap();
    let claim = "update backstop.jobs set locked_by = 'other', locked_at = now(), attempts = 1 where id = $1";
    sqlx::query(claim).bind(id).execute(&pool).await.unwrap();
    enqueue_backlog(&pool, BACKLOG).await;
    let worker = ScriptedWorker::default();
    let runner = one_executor(&pool, &worker, Duration::from_millis(200));
    first_run(&worker).await;
    // That process stops gracefully and hands the job back unstarted, as its runner does
    // (`job_release_unstarted`): unlocked, its `run_at` unchanged, so behind the cursor. (A job
    // rescued from a dead process is a failed attempt instead, due now: ahead of the cursor.)
    let hand_back = "update backstop.jobs set locked_by = null, locked_at = null, attempts = 0 where id = $1";
    sqlx::query(hand_back).bind(id).execute(&pool).await.unwrap();
    let position = position_of(&worker, "handed back").await;
    runner.stop().await;
    assert!(position < BACKLOG / 2, "the handed-back job ran at position {position} of {}", BACKLOG + 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_more_urgent_job_overtakes_the_jobs_already_buffered(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    enqueue_backlog(&pool, BACKLOG).await;
    let worker = ScriptedWorker::default();
    // 200 jobs buffered locally ahead of one executor: first in, first out would start the
    // urgent job only after about 100 to 200 of them.
    let runner = RunningRunner::start(
        test_runner(&pool).queue("default", 1).prefetch(200).claim_batch(200).register(worker.clone()),
    );
    wait_for("a full buffer", DEADLINE, || async { (worker.runs().len() >= 10).then_some(()) }).await;
    let ran_before = worker.runs().len();
    let urgent = NewJob::new(&Scripted::new("urgent", Action::Succeed)).priority(-1);
    backstop::enqueue(&pool, urgent).await.unwrap();
    let position = position_of(&worker, "urgent").await;
    runner.stop().await;
    assert!(
        position - ran_before < 20,
        "{} backlog jobs started between the urgent job's enqueue and its start",
        position - ran_before
    );
}
