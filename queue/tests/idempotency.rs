//! Idempotency keys: the effect happens once however the claims race.

mod common;

use std::time::Duration;

use backstop::claim_idempotency_key;
use common::{count, pool};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn two_racing_transactions_do_the_effect_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    sqlx::query("create table effects (key text)").execute(&pool).await.unwrap();

    // A claims the key and holds its transaction open; B's claim must wait for A, not race.
    let mut a = pool.begin().await.unwrap();
    assert!(claim_idempotency_key(&mut *a, "charge:inv_1").await.unwrap());
    sqlx::query("insert into effects values ('charge:inv_1')").execute(&mut *a).await.unwrap();
    let b = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut b = pool.begin().await.unwrap();
            let first = claim_idempotency_key(&mut *b, "charge:inv_1").await.unwrap();
            if first {
                sqlx::query("insert into effects values ('charge:inv_1')").execute(&mut *b).await.unwrap();
            }
            b.commit().await.unwrap();
            first
        }
    });
    // B is blocked on A's row lock: it cannot finish before A commits.
    let waiting = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            let blocked =
                count(&pool, "select count(*) from pg_stat_activity where wait_event_type = 'Lock'").await;
            if blocked > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waiting.is_ok(), "the second claim waits on the first");
    a.commit().await.unwrap();
    assert!(!b.await.unwrap(), "the second claim sees the key taken");
    assert_eq!(count(&pool, "select count(*) from effects").await, 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_rolled_back_claim_frees_the_key(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let mut a = pool.begin().await.unwrap();
    assert!(claim_idempotency_key(&mut *a, "k").await.unwrap());
    a.rollback().await.unwrap();
    assert!(claim_idempotency_key(&pool, "k").await.unwrap(), "work not done yet: do it");
    assert!(!claim_idempotency_key(&pool, "k").await.unwrap());
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn many_concurrent_claimers_one_winner(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let claims = (0..12).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { claim_idempotency_key(&pool, "welcome_email:user_42").await.unwrap() })
    });
    let results = futures::future::join_all(claims).await;
    assert_eq!(results.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
}
