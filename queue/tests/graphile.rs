//! Beside graphile-worker: the real graphile-worker 0.18 from npm works jobs on the test
//! database (queue/tests/graphile-worker.mjs), and Backstop reads, groups and acts on them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backstop::graphile::{self, GraphileAction, GraphileSchema, GraphileSearch, GraphileState};
use backstop::triage::{self, GroupFilter};
use common::{count, pool, wait_for};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// graphile-worker running in Node against the test's database; killed when dropped.
struct NodeWorker(Child);

impl NodeWorker {
    async fn start(opts: &PgConnectOptions, pool: &PgPool) -> (Self, GraphileSchema) {
        let url = database_url(opts);
        let child = Command::new("node")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graphile-worker.mjs"))
            .env("DATABASE_URL", url)
            .stdout(Stdio::null())
            .spawn()
            .expect("node runs (./dev test installs graphile-worker with npm)");
        let worker = NodeWorker(child);
        // It migrates its schema first (to migration 20, graphile-worker 0.18.0's last); then
        // Backstop finds it.
        let schema = wait_for("graphile-worker's schema", Duration::from_secs(60), || async {
            graphile::detect(pool)
                .await
                .ok()
                .flatten()
                .filter(|s| s.supported && s.migration.as_deref() == Some("20"))
        })
        .await;
        (worker, schema)
    }
}

impl Drop for NodeWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test database's URL (the private cluster trusts local connections: no password).
fn database_url(opts: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("postgres")
    )
}

async fn add_job(pool: &PgPool, task: &str, payload: serde_json::Value, max_attempts: i32) -> i64 {
    sqlx::query_scalar("select id from graphile_worker.add_job($1, $2::json, max_attempts := $3)")
        .bind(task)
        .bind(payload)
        .bind(max_attempts)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn job_state(pool: &PgPool, schema: &GraphileSchema, id: i64) -> Option<GraphileState> {
    graphile::graphile_job(pool, schema, id).await.unwrap().map(|job| job.state(chrono::Utc::now()))
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_failing_task_is_dead_grouped_once_and_retried_through_graphile_worker(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    sqlx::query("create table public.gw_fixed (name text primary key)").execute(&pool).await.unwrap();
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    assert_eq!(schema.flavour, graphile::Flavour::Node);
    assert_eq!(schema.migration.as_deref(), Some("20"), "graphile-worker 0.18.0's last migration");
    assert_eq!(schema.version_label(), "0.18 (migration 20)");
    assert!(schema.payloads_readable);

    let id = add_job(&pool, "until_fixed", serde_json::json!({"name": "invoice-7"}), 2).await;
    wait_for("the job to fail for good", Duration::from_secs(60), || async {
        (job_state(&pool, &schema, id).await == Some(GraphileState::Dead)).then_some(())
    })
    .await;
    let failed = GraphileSearch { state: Some(GraphileState::Dead), ..GraphileSearch::default() };
    let dead = graphile::search(&pool, &schema, &failed, None, 50).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts, dead[0].max_attempts), (id, 2, 2));
    assert_eq!(dead[0].task_identifier, "until_fixed");
    assert_eq!(dead[0].payload, Some(serde_json::json!({"name": "invoice-7"})));
    assert!(dead[0].last_error.as_deref().unwrap().contains("not fixed yet: invoice-7"));

    // The failure joins an error group once, however often the poller looks.
    wait_for("the failure to be recorded", Duration::from_secs(30), || async {
        (graphile::record_failures(&pool, &schema).await.unwrap() == 1).then_some(())
    })
    .await;
    assert_eq!(graphile::record_failures(&pool, &schema).await.unwrap(), 0);
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].source.as_str(), groups[0].kind.as_str(), groups[0].total),
        ("graphile_worker", "until_fixed", 1)
    );
    assert_eq!(
        count(&pool, "select count(*) from backstop.source_job_groups where source = 'graphile_worker'")
            .await,
        1
    );

    // Fixed; retry through graphile-worker's own function: its worker runs it again, the task
    // succeeds and graphile-worker deletes the row.
    sqlx::query("insert into public.gw_fixed values ('invoice-7')").execute(&pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let changed =
        graphile::act_on_graphile_jobs(&mut tx, &schema, GraphileAction::Retry, &[id], "otto").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed, 1);
    wait_for("graphile-worker to complete the retried job", Duration::from_secs(30), || async {
        job_state(&pool, &schema, id).await.is_none().then_some(())
    })
    .await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn bulk_retry_by_filter_skips_jobs_a_worker_holds_and_graphile_worker_runs_the_rest(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    let mut failing = Vec::new();
    for n in 0..3 {
        failing.push(
            add_job(&pool, "always_fails", serde_json::json!({ "message": format!("boom {n}") }), 1).await,
        );
    }
    let slow = add_job(&pool, "slow", serde_json::json!({"ms": 60_000}), 1).await;
    wait_for("three dead jobs and one running", Duration::from_secs(60), || async {
        let mut states = Vec::new();
        for id in failing.iter().chain([&slow]) {
            states.push(job_state(&pool, &schema, *id).await);
        }
        let dead = states.iter().filter(|s| **s == Some(GraphileState::Dead)).count();
        (dead == 3 && states[3] == Some(GraphileState::Running)).then_some(())
    })
    .await;

    let retried_at = chrono::Utc::now();
    let step = graphile::act_on_graphile_matching_step(
        &pool,
        &schema,
        GraphileAction::Retry,
        &GraphileSearch::default(),
        "otto",
        None,
        10_000,
        None,
    )
    .await
    .unwrap();
    assert_eq!((step.outcome.matched, step.outcome.changed, step.outcome.skipped()), (4, 3, 1));
    assert_eq!(step.next, None);
    assert_eq!(
        job_state(&pool, &schema, slow).await,
        Some(GraphileState::Running),
        "the running job is untouched"
    );
    // graphile-worker ran the three again (retry reset their attempts to 0): each failed once
    // more, after the retry.
    wait_for("the retried jobs to run and fail again", Duration::from_secs(30), || async {
        let mut all = true;
        for id in &failing {
            let job = graphile::graphile_job(&pool, &schema, *id).await.unwrap().unwrap();
            all &= job.state(chrono::Utc::now()) == GraphileState::Dead
                && job.attempts == 1
                && job.updated_at > retried_at;
        }
        all.then_some(())
    })
    .await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_role_without_access_to_private_rows_reads_the_view_and_is_told(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, _) = NodeWorker::start(&opts, &pool).await;
    let id = add_job(&pool, "slow", serde_json::json!({"secret": "payload"}), 1).await;
    // A console role granted the tables but not their owner: row-level security on the private
    // tables shows it zero rows, without an error.
    for statement in [
        "create role queue_console_reader login",
        "grant usage on schema graphile_worker to queue_console_reader",
        "grant select on all tables in schema graphile_worker to queue_console_reader",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
    }
    let reader = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.username("queue_console_reader"))
        .await
        .unwrap();
    let schema = graphile::detect(&reader).await.unwrap().expect("schema found");
    assert!(schema.supported);
    assert!(!schema.payloads_readable, "row-level security detected");
    let jobs = graphile::search(&reader, &schema, &GraphileSearch::default(), None, 50).await.unwrap();
    assert_eq!(jobs.len(), 1, "the job is listed from the public view");
    assert_eq!((jobs[0].id, jobs[0].payload.clone()), (id, None), "no payload rather than an empty one");
    assert_eq!(graphile::record_failures(&reader, &schema).await.unwrap(), 0);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_database_without_graphile_worker_has_no_schema_and_an_unknown_one_is_read_only(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    assert_eq!(graphile::detect(&pool).await.unwrap(), None);
    // A schema from a version Backstop does not know (an old one without the private tables).
    for statement in [
        "create schema graphile_worker",
        "create table graphile_worker.migrations (id int primary key, ts timestamptz default now())",
        "insert into graphile_worker.migrations (id) values (1), (2), (9)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
    }
    let schema = graphile::detect(&pool).await.unwrap().unwrap();
    assert!(!schema.supported);
    assert_eq!(schema.version_label(), "unknown version (migration 9)");
    let mut conn = pool.acquire().await.unwrap();
    let refused =
        graphile::act_on_graphile_jobs(&mut conn, &schema, GraphileAction::Retry, &[1], "otto").await;
    assert!(refused.unwrap_err().to_string().contains("can only read it"));
}
