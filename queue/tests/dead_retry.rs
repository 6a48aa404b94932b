//! Retrying dead jobs whose unique key is taken: by another dead job retried in the same call,
//! by a live job, or by an enqueue that commits while the retry runs. They stay dead and are
//! reported; the rest are retried; no error escapes.

mod common;

use std::time::Duration;

use backstop::NewJob;
use backstop::admin::{self, BulkOutcome, DeadAction, JobSearch};
use common::{pool, wait_for};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A dead (cancelled) job of kind `k`, with `key` if given.
async fn dead(pool: &PgPool, key: Option<&str>) -> i64 {
    let mut job = NewJob::from_json("k", &json!({}));
    if let Some(key) = key {
        job = job.unique_key(key);
    }
    let id = backstop::enqueue(pool, job).await.unwrap().created().unwrap();
    assert_eq!(admin::cancel_jobs(pool, &[id], "test").await.unwrap(), 1);
    id
}

/// Dead jobs `[a, b, c, d]`: `a` and `b` once held the same key, `c`'s key is held by a live
/// job now, `d` has no key.
async fn scene(pool: &PgPool) -> [i64; 4] {
    let a = dead(pool, Some("order:1")).await;
    let b = dead(pool, Some("order:1")).await;
    let c = dead(pool, Some("order:2")).await;
    backstop::enqueue(pool, NewJob::from_json("k", &json!({})).unique_key("order:2")).await.unwrap();
    let d = dead(pool, None).await;
    [a, b, c, d]
}

async fn is_dead(pool: &PgPool, id: i64) -> bool {
    admin::dead_job(pool, id).await.unwrap().is_some()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn retrying_by_id_skips_and_reports_jobs_whose_key_is_taken(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let [a, b, c, d] = scene(&pool).await;
    let outcome = admin::retry_dead_jobs(&pool, &[d, c, b, a]).await.unwrap();
    // Of two dead jobs with one key, the older (lower id) is retried.
    assert_eq!(outcome.retried, 2, "{outcome:?}");
    assert_eq!(outcome.key_taken, [b, c]);
    assert!(!is_dead(&pool, a).await && !is_dead(&pool, d).await);
    assert!(is_dead(&pool, b).await && is_dead(&pool, c).await, "skipped jobs stay dead");
    // The same through the action the console uses.
    let mut conn = pool.acquire().await.unwrap();
    let outcome = admin::act_on_dead_jobs(&mut conn, DeadAction::Retry, &[b, c]).await.unwrap();
    assert_eq!(outcome, BulkOutcome { matched: 2, changed: 0, key_taken: 2 });
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn retrying_by_filter_gets_past_jobs_whose_key_is_taken(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let [a, b, c, d] = scene(&pool).await;
    let search = JobSearch { kind: Some("k".into()), ..JobSearch::default() };
    let outcome = admin::act_on_dead_matching(&pool, DeadAction::Retry, &search, false).await.unwrap();
    assert_eq!(outcome, BulkOutcome { matched: 4, changed: 2, key_taken: 2 });
    assert_eq!(outcome.skipped(), 2);
    assert!(!is_dead(&pool, d).await && is_dead(&pool, c).await);
    assert_eq!([is_dead(&pool, a).await, is_dead(&pool, b).await].iter().filter(|dead| **dead).count(), 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_enqueue_taking_the_key_during_the_retry_is_reported_not_an_error(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let id = dead(&pool, Some("order:3")).await;
    // An enqueue takes the key and has not committed yet.
    let mut tx = pool.begin().await.unwrap();
    backstop::enqueue(&mut *tx, NewJob::from_json("k", &json!({})).unique_key("order:3")).await.unwrap();
    let retry = tokio::spawn({
        let pool = pool.clone();
        async move { admin::retry_dead_jobs(&pool, &[id]).await }
    });
    // The retry now waits on that enqueue's key.
    wait_for("the retry to wait on the enqueue", Duration::from_secs(5), || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where datname = current_database() \
                 and wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        }
    })
    .await;
    tx.commit().await.unwrap();
    let outcome = retry.await.unwrap().unwrap();
    assert_eq!((outcome.retried, outcome.key_taken), (0, vec![id]));
    assert!(is_dead(&pool, id).await);
}
