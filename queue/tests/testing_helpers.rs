//! The `testing` helpers as an application's tests use them, against a real PostgreSQL.

mod common;

use std::time::Duration;

use backstop::testing::{self, Failed, Ran};
use backstop::{Job, JobContext, JobError, NewJob, Runner, Worker};
use common::{count, pool};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SendWelcomeEmail {
    user_id: i64,
}

impl Job for SendWelcomeEmail {
    const KIND: &'static str = "send_welcome_email";
    const QUEUE: &'static str = "mail";
}

/// Succeeds for even users, fails for odd ones.
struct Mailer;

impl Worker for Mailer {
    type Job = SendWelcomeEmail;

    async fn work(&self, job: SendWelcomeEmail, _: JobContext) -> Result<(), JobError> {
        if job.user_id % 2 == 0 {
            Ok(())
        } else {
            Err(JobError::retry(format!("mailbox {} full", job.user_id)))
        }
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn what_a_transaction_enqueued_is_seen_inside_it_and_gone_with_a_rollback(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let mut tx = pool.begin().await.unwrap();
    backstop::enqueue(&mut *tx, &SendWelcomeEmail { user_id: 42 }).await.unwrap();
    let inside: Vec<SendWelcomeEmail> = testing::enqueued_jobs(&mut *tx).await.unwrap();
    assert_eq!(inside, [SendWelcomeEmail { user_id: 42 }]);
    let outside: Vec<SendWelcomeEmail> = testing::enqueued_jobs(&pool).await.unwrap();
    assert!(outside.is_empty(), "not committed: nobody else sees it");
    tx.rollback().await.unwrap();
    assert!(testing::enqueued(&pool, SendWelcomeEmail::KIND).await.unwrap().is_empty());

    backstop::enqueue(
        &pool,
        NewJob::new(&SendWelcomeEmail { user_id: 7 }).priority(-3).unique_key("welcome:7"),
    )
    .await
    .unwrap();
    let jobs = testing::enqueued(&pool, SendWelcomeEmail::KIND).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].queue.as_str(), jobs[0].priority), ("mail", -3));
    assert_eq!(jobs[0].unique_key.as_deref(), Some("welcome:7"));
    assert_eq!(jobs[0].payload.0, serde_json::json!({"user_id": 7}));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn run_one_runs_a_job_with_its_worker_and_records_the_outcome(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    assert_eq!(testing::run_one(&pool, &Mailer).await.unwrap(), None, "nothing to run");
    let even = backstop::enqueue(&pool, &SendWelcomeEmail { user_id: 2 }).await.unwrap().created().unwrap();
    let odd = backstop::enqueue(&pool, &SendWelcomeEmail { user_id: 3 }).await.unwrap().created().unwrap();
    // Another kind in the same queue is left alone.
    backstop::enqueue(&pool, NewJob::from_json("other", &serde_json::json!({})).queue("mail")).await.unwrap();

    assert_eq!(testing::run_one(&pool, &Mailer).await.unwrap(), Some(Ran::Completed(even)));
    assert_eq!(testing::run_one(&pool, &Mailer).await.unwrap(), Some(Ran::Failed(odd, Failed::Retrying)));
    let error: String = sqlx::query_scalar("select last_error from backstop.jobs where id = $1")
        .bind(odd)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(error, "mailbox 3 full");
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 2, "the retry and the other kind");

    // A payload that does not read as the job type fails for good, as in a runner.
    let bad = backstop::enqueue(
        &pool,
        NewJob::from_json(SendWelcomeEmail::KIND, &serde_json::json!({"user": "x"})),
    )
    .await
    .unwrap()
    .created()
    .unwrap();
    sqlx::query("delete from backstop.jobs where id = $1").bind(odd).execute(&pool).await.unwrap();
    assert_eq!(
        testing::run_one(&pool, &Mailer).await.unwrap(),
        Some(Ran::Failed(bad, Failed::Dead("failed_now".into())))
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_dead_job_is_made_as_the_runtime_makes_one_grouped(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let id = testing::dead_job(&pool, &SendWelcomeEmail { user_id: 9 }, "smtp 550: <b>no such user</b>")
        .await
        .unwrap();
    let (error, grouped): (String, bool) =
        sqlx::query_as("select last_error, group_id is not null from backstop.dead_jobs where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(error, "smtp 550: <b>no such user</b>");
    assert!(grouped, "in its error group, as every dead job");
    assert_eq!(count(&pool, "select count(*) from backstop.jobs where kind = 'send_welcome_email'").await, 0);
    // A job scheduled for later is not runnable: said, not hidden.
    let later = NewJob::new(&SendWelcomeEmail { user_id: 10 }).delay(Duration::from_secs(3600));
    let error = testing::dead_job(&pool, later, "x").await.unwrap_err();
    assert!(error.to_string().contains("not runnable"), "{error}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn wait_until_drained_says_whether_the_queue_emptied_in_time(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let jobs = (0..50).map(|i| NewJob::new(&SendWelcomeEmail { user_id: i * 2 }));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runner = Runner::builder(pool.clone()).queue("mail", 4).register(Mailer).build().unwrap();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    assert!(testing::wait_until_drained(&pool, "mail", Duration::from_secs(30)).await.unwrap());

    backstop::enqueue(&pool, NewJob::new(&SendWelcomeEmail { user_id: 2 }).delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(!testing::wait_until_drained(&pool, "mail", Duration::from_millis(200)).await.unwrap());
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
