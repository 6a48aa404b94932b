//! Enqueueing: transactions, batches, options, unique keys, and refusals.

mod common;

use std::time::Duration;

use backstop::{Client, Enqueued, Error, NewJob};
use common::{Action, Scripted, count, pool};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_rolled_back_transaction_leaves_no_job(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    sqlx::query("create table signups (email text)").execute(&pool).await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("insert into signups values ('a@example.com')").execute(&mut *tx).await.unwrap();
    backstop::enqueue(&mut *tx, &Scripted::new("welcome", Action::Succeed)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 0);
    assert_eq!(count(&pool, "select count(*) from signups").await, 0);

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("insert into signups values ('b@example.com')").execute(&mut *tx).await.unwrap();
    let id = backstop::enqueue(&mut *tx, &Scripted::new("welcome", Action::Succeed)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(id, Enqueued::Created(_)));
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1);
    assert_eq!(count(&pool, "select count(*) from signups").await, 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn options_are_stored(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let job = NewJob::new(&Scripted::new("x", Action::Succeed))
        .queue("emails")
        .priority(-5)
        .delay(Duration::from_secs(3600))
        .max_attempts(9);
    let id = backstop::enqueue(&pool, job).await.unwrap().created().unwrap();
    let row = backstop::admin::job(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (row.queue.as_str(), row.kind.as_str(), row.priority, row.max_attempts),
        ("emails", "scripted", -5, 9)
    );
    assert_eq!(row.payload, json!({"label": "x", "action": "succeed"}));
    let in_an_hour = row.run_at - chrono::Utc::now();
    assert!(
        in_an_hour > chrono::Duration::minutes(59) && in_an_hour <= chrono::Duration::minutes(60),
        "{in_an_hour}"
    );
    assert_eq!(row.state(chrono::Utc::now()), backstop::admin::JobState::Scheduled);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_live_unique_key_makes_the_second_enqueue_a_reported_no_op(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let job = || NewJob::new(&Scripted::new("once", Action::Succeed)).unique_key("welcome:42");
    let first = backstop::enqueue(&pool, job()).await.unwrap();
    let second = backstop::enqueue(&pool, job()).await.unwrap();
    let Enqueued::Created(id) = first else { panic!("first should create: {first:?}") };
    assert_eq!(second, Enqueued::Duplicate(Some(id)));
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1);

    // Once the job is gone (completed), the key is free again.
    backstop::admin::delete_jobs(&pool, &[id]).await.unwrap();
    assert!(matches!(backstop::enqueue(&pool, job()).await.unwrap(), Enqueued::Created(_)));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn batches_insert_in_one_call_and_report_each_job(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    backstop::enqueue(&pool, NewJob::new(&Scripted::new("taken", Action::Succeed)).unique_key("k1"))
        .await
        .unwrap();
    let jobs = vec![
        NewJob::new(&Scripted::new("a", Action::Succeed)),
        NewJob::new(&Scripted::new("dup", Action::Succeed)).unique_key("k1"),
        NewJob::new(&Scripted::new("b", Action::Succeed)).unique_key("k2"),
        NewJob::new(&Scripted::new("dup-in-batch", Action::Succeed)).unique_key("k2"),
        NewJob::new(&Scripted::new("c", Action::Succeed)),
    ];
    let results = backstop::enqueue_many(&pool, jobs).await.unwrap();
    let created: Vec<bool> = results.iter().map(|r| r.created().is_some()).collect();
    assert_eq!(created, [true, false, true, false, true]);
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 4);
    // Ids of keyless jobs come back in input order.
    let (a, c) = (results[0].created().unwrap(), results[4].created().unwrap());
    let labels: Vec<String> =
        sqlx::query_scalar("select payload->>'label' from backstop.jobs where id = any($1) order by id")
            .bind(vec![a, c])
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(labels, ["a", "c"]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_oversized_payload_is_refused_and_nothing_is_written(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let client = Client::new().max_payload_bytes(1024);
    let big = Scripted::new("x".repeat(2000), Action::Succeed);
    let err = client.enqueue(&pool, &big).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { limit: 1024, .. }), "{err}");
    assert!(err.to_string().contains("over the limit of 1024 bytes"), "{err}");
    // A batch with one oversized job writes none of them.
    let batch = vec![NewJob::new(&Scripted::new("small", Action::Succeed)), NewJob::new(&big)];
    assert!(client.enqueue_many(&pool, batch).await.is_err());
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 0);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn invalid_options_are_clear_errors(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let err = backstop::enqueue(&pool, NewJob::new(&Scripted::new("x", Action::Succeed)).max_attempts(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_attempts must be at least 1"), "{err}");
    // Empty names reach the database's check constraints and come back typed, by name.
    let err = backstop::enqueue(&pool, NewJob::from_json("", &json!({}))).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption(ref m) if m.contains("kind must not be empty")), "{err}");
    let err = backstop::enqueue(&pool, NewJob::from_json("k", &json!({})).queue("")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption(ref m) if m.contains("queue name")), "{err}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn hostile_strings_are_stored_verbatim(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let hostile = "'); drop table backstop.jobs; -- <script>alert(1)</script> \u{0}x";
    // JSON can't hold a raw NUL in Postgres jsonb; serde escapes it as \u0000, which jsonb
    // refuses: that must be a clear error, not a lost job.
    let err = backstop::enqueue(&pool, &Scripted::new(hostile, Action::Succeed)).await;
    assert!(err.is_err());
    let hostile = hostile.replace('\u{0}', "");
    let id = backstop::enqueue(
        &pool,
        NewJob::new(&Scripted::new(hostile.clone(), Action::Succeed)).queue("q'; --"),
    )
    .await
    .unwrap()
    .created()
    .unwrap();
    let row = backstop::admin::job(&pool, id).await.unwrap().unwrap();
    assert_eq!(row.payload["label"], json!(hostile));
    assert_eq!(row.queue, "q'; --");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn names_and_keys_over_their_limit_are_clear_errors_and_nothing_is_written(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // Incompressible, as a hash or a URL is: PostgreSQL compresses long repetitive values, even
    // in index entries, so "x".repeat(n) would hide the index limit.
    let text = |n: usize| {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ n as u64; // xorshift: no pattern to compress
        let mut letter = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        };
        (0..n).map(|_| letter()).collect::<String>()
    };
    let (name, key) = (backstop::MAX_NAME_BYTES, backstop::MAX_KEY_BYTES);
    // At the limit, all at once: stored.
    let at_limit = NewJob::from_json(text(name), &json!({})).queue(text(name)).unique_key(text(key));
    backstop::enqueue(&pool, at_limit).await.unwrap().created().unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(backstop::claim_idempotency_key(&mut *tx, &text(key)).await.unwrap());
    tx.commit().await.unwrap();
    // Over it, up to well past what PostgreSQL's indexes (about 2.7 KB an entry) and
    // notifications (8,000 bytes) take: unchecked, 3,000 bytes failed with "index row size 3032
    // exceeds btree version 4 maximum 2704 for index jobs_kind_waiting".
    for n in [name + 1, 3_000, 10_000] {
        for (what, job) in [
            ("a job kind", NewJob::from_json(text(n), &json!({}))),
            ("a queue name", NewJob::from_json("k", &json!({})).queue(text(n))),
        ] {
            let err = backstop::enqueue(&pool, job).await.unwrap_err();
            assert!(
                matches!(&err, Error::InvalidOption(m) if m.starts_with(&format!("{what} may be at most {name} bytes; this one has {n}"))),
                "{err}"
            );
        }
    }
    for n in [key + 1, 3_000, 10_000] {
        let err = backstop::enqueue(&pool, NewJob::from_json("k", &json!({})).unique_key(text(n)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOption(m) if m.starts_with("a unique key may be at most")),
            "{err}"
        );
        let err = backstop::claim_idempotency_key(&pool, &text(n)).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOption(m) if m.starts_with("an idempotency key may be at most")),
            "{err}"
        );
    }
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1);
}
