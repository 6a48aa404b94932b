//! Beside the Rust port of graphile-worker (crate `graphile_worker`): its schema, created by
//! its own migrations (crate `graphile_worker_migrations`), is recognised, read and acted on.
//! No Rust-port worker runs here (building its runtime would double CI's build); jobs are
//! added and failed through its own SQL functions.

mod common;

use backstop::graphile::{self, Flavour, GraphileAction, GraphileSearch, GraphileState};
use backstop::triage::{self, GroupFilter};
use common::pool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_rust_port_s_schema_is_read_grouped_and_acted_on(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    graphile_worker_migrations::migrate(&pool, "graphile_worker").await.expect("the Rust port migrates");

    let schema = graphile::detect(&pool).await.unwrap().expect("schema found");
    assert_eq!(schema.flavour, Flavour::RustPort, "its _private_workers table marks it");
    assert!(schema.supported && schema.payloads_readable, "{schema:?}");
    assert!(schema.version_label().starts_with("Rust port (migration "), "{}", schema.version_label());

    let id: i64 = sqlx::query_scalar(
        "select id from graphile_worker.add_job('sync_ledger', '{\"account\": 7}'::json, max_attempts := 3)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let queued = graphile::graphile_job(&pool, &schema, id).await.unwrap().unwrap();
    assert_eq!(queued.state(chrono::Utc::now()), GraphileState::Queued);
    assert_eq!(queued.payload, Some(serde_json::json!({"account": 7})));

    // Failed for good, as its worker would leave it after the last attempt.
    sqlx::query(
        "select graphile_worker.permanently_fail_jobs(array[$1]::bigint[], 'ledger 5021 unreachable')",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let failed = GraphileSearch { state: Some(GraphileState::Dead), ..GraphileSearch::default() };
    let dead = graphile::search(&pool, &schema, &failed, None, 10).await.unwrap();
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    assert_eq!(dead[0].last_error.as_deref(), Some("ledger 5021 unreachable"));

    // Grouped by the poller.
    let poll = graphile::record_failures(&pool, &schema, graphile::History::Quiet).await.unwrap();
    assert_eq!(poll.recorded, 1);
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(
        (groups[0].source.as_str(), groups[0].message.as_str()),
        ("graphile_worker", "ledger 5021 unreachable")
    );

    let mut tx = pool.begin().await.unwrap();
    let changed =
        graphile::act_on_graphile_jobs(&mut tx, &schema, GraphileAction::Retry, &[id], "otto").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed, 1);
    let retried = graphile::graphile_job(&pool, &schema, id).await.unwrap().unwrap();
    assert_eq!((retried.state(chrono::Utc::now()), retried.attempts), (GraphileState::Queued, 0));
}

/// The state rule is written twice for graphile-worker's jobs, in SQL (the search's filter) and
/// in Rust (`GraphileJob::state`): on jobs in every state, each state's search finds exactly
/// the jobs Rust puts in it, and counts them the same.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn graphile_state_rule_agrees_with_rust(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    graphile_worker_migrations::migrate(&pool, "graphile_worker").await.expect("the Rust port migrates");
    let schema = graphile::detect(&pool).await.unwrap().expect("schema found");
    // (run in, attempts, max attempts, locked): times an hour away, so the database's clock
    // and this process's agree on which side of now they are.
    let jobs = [
        ("1 hour", 0, 3, false),  // scheduled
        ("-1 hour", 0, 3, false), // queued
        ("-1 hour", 0, 3, true),  // running
        ("-1 hour", 3, 3, true),  // running, on its last attempt
        ("1 hour", 1, 3, false),  // retrying, backing off
        ("-1 hour", 2, 3, false), // retrying, due
        ("-1 hour", 3, 3, false), // dead
        ("1 hour", 5, 3, false),  // dead (max attempts lowered since)
    ];
    for (run_in, attempts, max_attempts, locked) in jobs {
        let id: i64 = sqlx::query_scalar(
            "select id from graphile_worker.add_job('sync_ledger', '{}'::json,
                                                     run_at := now() + $1::interval, max_attempts := $2)",
        )
        .bind(run_in)
        .bind(max_attempts)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "update graphile_worker._private_jobs
             set attempts = $2, locked_at = case when $3 then now() end,
                 locked_by = case when $3 then 'worker-1' end
             where id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(locked)
        .execute(&pool)
        .await
        .unwrap();
    }
    let now = chrono::Utc::now();
    let all = graphile::search(&pool, &schema, &GraphileSearch::default(), None, 100).await.unwrap();
    assert_eq!(all.len(), jobs.len());
    for state in backstop::JobState::ALL {
        let expected: Vec<i64> = all.iter().filter(|job| job.state(now) == state).map(|job| job.id).collect();
        let search = GraphileSearch { state: Some(state), ..GraphileSearch::default() };
        let found: Vec<i64> = graphile::search(&pool, &schema, &search, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|job| job.id)
            .collect();
        assert!(!expected.is_empty(), "a job in every state: none {state}");
        assert_eq!(found, expected, "{state}: SQL and Rust agree");
        assert_eq!(
            graphile::count(&pool, &schema, &search, 100).await.unwrap(),
            expected.len() as i64,
            "{state}"
        );
    }
}
