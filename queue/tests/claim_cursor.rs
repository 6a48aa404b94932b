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
    // A 100 ms poll: a claim from the head every ten polls, 1 s.
    let runner = one_executor(&pool, &worker, Duration::from_millis(100));
    first_run(&worker).await;
    // The same priority, due a day ago: what a late-committing enqueue looks like. Its
    // notification is no more urgent than the cursor.
    let old = chrono::Utc::now() - chrono::Duration::days(1);
    let behind = NewJob::new(&Scripted::new("behind", Action::Succeed)).run_at(old);
    backstop::enqueue(&pool, behind).await.unwrap();
    let position = position_of(&worker, "behind").await;
    runner.stop().await;
    // 1 s is at most 500 backlog jobs of 2 ms; a cursor alone would reach it after all 2,000.
    assert!(position < BACKLOG / 2, "the job behind the cursor ran at position {position}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_more_urgent_scheduled_job_coming_due_mid_backlog_runs_within_a_poll(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    enqueue_backlog(&pool, 2 * BACKLOG).await;
    let worker = ScriptedWorker::default();
    // A 200 ms poll, so a claim from the head only every 2 s: finding the job sooner is the
    // look for more urgent work at each poll.
    let runner = one_executor(&pool, &worker, Duration::from_millis(200));
    first_run(&worker).await;
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let scheduled = NewJob::new(&Scripted::new("scheduled", Action::Succeed)).priority(-1).run_at(due);
    backstop::enqueue(&pool, scheduled).await.unwrap();
    let ran_when_due = wait_for("the job to come due", DEADLINE, || async {
        (chrono::Utc::now() >= due).then(|| worker.runs().len())
    })
    .await;
    let position = position_of(&worker, "scheduled").await;
    runner.stop().await;
    // Within a poll: at most 100 backlog jobs of 2 ms. The next head claim, up to 2 s later,
    // would let up to 1,000 run first.
    let ran_since_due = position.saturating_sub(ran_when_due);
    assert!(ran_since_due < 250, "{ran_since_due} backlog jobs ran between its run_at and its start");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_handed_back_behind_the_cursor_runs_at_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // The oldest job of all, claimed by another process before the backlog arrived.
    let held = NewJob::new(&Scripted::new("handed back", Action::Succeed));
    let id = backstop::enqueue(&pool, held).await.unwrap().created().unwrap();
    let claim = "update backstop.jobs set locked_by = 'other', locked_at = now(), attempts = 1 where id = $1";
    sqlx::query(claim).bind(id).execute(&pool).await.unwrap();
    enqueue_backlog(&pool, BACKLOG).await;
    let worker = ScriptedWorker::default();
    // An hour's poll: only the hand-back's notification can send a claim to the head.
    let runner = one_executor(&pool, &worker, Duration::from_secs(3600));
    first_run(&worker).await;
    // That process stops and hands the job back unstarted, as `job_release_unstarted` does
    // (`hand_back_notifies_its_queue` checks that it notifies): unlocked, its `run_at`
    // unchanged, so behind the cursor. (A job rescued from a dead process is a failed attempt
    // instead, due now: ahead of the cursor.)
    let hand_back = "with released as (
                         update backstop.jobs set locked_by = null, locked_at = null, attempts = 0
                         where id = $1 returning queue)
                     select pg_notify('backstop_jobs', queue) from released";
    sqlx::query(hand_back).bind(id).execute(&pool).await.unwrap();
    let position = position_of(&worker, "handed back").await;
    runner.stop().await;
    assert!(position < 100, "the handed-back job ran at position {position} of {}", BACKLOG + 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn hand_back_notifies_its_queue(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let jobs = (0..20).map(|i| NewJob::new(&Scripted::new(format!("slow{i}"), Action::SleepMillis(300))));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
    listener.listen("backstop_jobs").await.unwrap();
    let worker = ScriptedWorker::default();
    let runner = one_executor(&pool, &worker, Duration::from_secs(3600));
    first_run(&worker).await;
    // Stopping hands back the jobs buffered behind the one running.
    runner.stop().await;
    let payload = tokio::time::timeout(DEADLINE, async {
        loop {
            let notification = listener.recv().await.unwrap();
            if notification.payload() == "default" {
                return notification.payload().to_owned();
            }
        }
    })
    .await
    .expect("a notification naming the queue without a priority");
    assert_eq!(payload, "default");
    let waiting: i64 = sqlx::query_scalar("select count(*) from backstop.jobs where locked_by is null")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(waiting > 0, "jobs were handed back");
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
