//! Beside graphile-worker: the real graphile-worker 0.18 from npm works jobs on the test
//! database (queue/tests/graphile-worker.mjs), and Backstop reads, groups and acts on them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backstop::graphile::{self, GraphileAction, GraphileSchema, GraphileSearch, GraphileState, History};
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
    assert_eq!(graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap().recorded, 1);
    assert_eq!(graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap().recorded, 0);
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
        // Roles belong to the cluster, not the test's database: made once, granted per database.
        "do $$ begin create role queue_console_reader login; exception when duplicate_object then null; end $$",
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
    assert_eq!(graphile::record_failures(&reader, &schema, History::Quiet).await.unwrap().recorded, 0);
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

/// Polls until `done` holds (each poll records what it finds), failing after `deadline`.
async fn poll_until(pool: &PgPool, schema: &GraphileSchema, what: &str, done: &str) {
    wait_for(what, Duration::from_secs(20), || async {
        graphile::record_failures(pool, schema, History::Quiet).await.unwrap();
        (count(pool, done).await > 0).then_some(())
    })
    .await;
}

/// Fails job `id` for good as graphile-worker's `failJobs` does (attempts used up, unlocked, a
/// later `run_at`), but in the caller's transaction, with `updated_at` from when that
/// transaction began (`seconds_ago`).
async fn fail_in(tx: &mut sqlx::PgConnection, id: i64, error: &str, seconds_ago: f64) {
    sqlx::query(
        "update graphile_worker._private_jobs
         set attempts = max_attempts, last_error = $2, locked_at = null, locked_by = null,
             run_at = greatest(now(), run_at) + interval '1 second',
             updated_at = now() - make_interval(secs => $3)
         where id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(seconds_ago)
    .execute(tx)
    .await
    .unwrap();
}

const ALERT_JOBS: &str = "select count(*) from backstop.jobs where kind = 'backstop.slack_alert'";

/// A webhook some console has (alerts are enqueued for it).
async fn webhook(pool: &PgPool) {
    sqlx::query("insert into backstop.alert_webhooks (id, label) values ('hook', 'test hook')")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn discarding_or_cancelling_from_the_console_is_not_a_new_failure(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    webhook(&pool).await;
    graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap();
    // Two jobs due tomorrow: one discarded, one cancelled (the console discards both ways).
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        ids.push(
            sqlx::query_scalar::<_, i64>(
                "select id from graphile_worker.add_job('always_fails', json_build_object('name', $1::text),
                     run_at := now() + interval '1 day')",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap(),
        );
    }
    for id in &ids {
        let mut tx = pool.begin().await.unwrap();
        let changed =
            graphile::act_on_graphile_jobs(&mut tx, &schema, GraphileAction::Discard, &[*id], "otto")
                .await
                .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(changed, 1);
    }
    // A real failure after them: once it is recorded, the poller has read past the discards.
    add_job(&pool, "always_fails", serde_json::json!({"message": "ledger down"}), 1).await;
    poll_until(
        &pool,
        &schema,
        "the real failure",
        "select count(*) from backstop.error_groups where message = 'ledger down'",
    )
    .await;
    assert_eq!(count(&pool, "select count(*) from backstop.error_groups").await, 1, "only the real failure");
    assert_eq!(count(&pool, ALERT_JOBS).await, 1, "one alert, for the real failure");
    assert_eq!(count(&pool, "select count(*) from backstop.source_job_groups").await, 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn on_first_start_the_failure_history_is_grouped_but_not_alerted(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    webhook(&pool).await;
    let old = [
        add_job(&pool, "always_fails", serde_json::json!({"message": "smtp 4411 refused"}), 1).await,
        add_job(&pool, "always_fails", serde_json::json!({"message": "smtp 5522 refused"}), 1).await,
        add_job(&pool, "always_fails", serde_json::json!({"message": "bad template"}), 1).await,
    ];
    wait_for("the old failures", Duration::from_secs(60), || async {
        let mut dead = 0;
        for id in old {
            dead += usize::from(job_state(&pool, &schema, id).await == Some(GraphileState::Dead));
        }
        (dead == old.len()).then_some(())
    })
    .await;
    // The console starts for the first time.
    poll_until(
        &pool,
        &schema,
        "the history",
        "select (count(*) = 3)::int::int8 from backstop.source_job_groups",
    )
    .await;
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 2, "the history is in triage");
    assert_eq!(count(&pool, ALERT_JOBS).await, 0, "history is not alerted");
    assert_eq!(
        count(&pool, "select count(*) from backstop.error_groups where total > digested_total").await,
        0,
        "nor left for the next digest"
    );
    // From now on, failures alert.
    add_job(&pool, "always_fails", serde_json::json!({"message": "ledger down"}), 1).await;
    poll_until(
        &pool,
        &schema,
        "a new failure",
        "select count(*) from backstop.error_groups where message = 'ledger down'",
    )
    .await;
    assert_eq!(count(&pool, ALERT_JOBS).await, 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_failure_committed_late_behind_the_watermark_is_still_recorded(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    // A task no worker runs: the test fails these jobs itself.
    let late = add_job(&pool, "by_hand", serde_json::json!({}), 1).await;
    let early = add_job(&pool, "by_hand", serde_json::json!({}), 1).await;
    graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap();

    // A transaction that began a minute ago fails `late`, and is still open while another
    // failure, from thirty seconds ago, commits and is recorded.
    let mut slow = pool.begin().await.unwrap();
    fail_in(&mut slow, late, "late failure", 60.0).await;
    let mut quick = pool.begin().await.unwrap();
    fail_in(&mut quick, early, "early failure", 30.0).await;
    quick.commit().await.unwrap();
    poll_until(
        &pool,
        &schema,
        "the early failure",
        "select count(*) from backstop.error_groups where message = 'early failure'",
    )
    .await;
    slow.commit().await.unwrap();
    poll_until(
        &pool,
        &schema,
        "the late failure",
        "select count(*) from backstop.error_groups where message = 'late failure'",
    )
    .await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn asked_to_the_console_alerts_the_history_too(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    webhook(&pool).await;
    let id = add_job(&pool, "always_fails", serde_json::json!({"message": "smtp refused"}), 1).await;
    wait_for("the old failure", Duration::from_secs(60), || async {
        (job_state(&pool, &schema, id).await == Some(GraphileState::Dead)).then_some(())
    })
    .await;
    let poll = graphile::record_failures(&pool, &schema, History::Alert).await.unwrap();
    assert_eq!((poll.recorded, poll.history_pending), (1, false));
    assert_eq!(count(&pool, ALERT_JOBS).await, 1, "--graphile-alert-history: the history alerts");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn each_poll_reads_one_slice_and_the_slices_go_round_the_table(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    // Two slices and one job of jobs due tomorrow, of a task no worker runs.
    let (first, last): (i64, i64) = sqlx::query_as(
        "with t as (insert into graphile_worker._private_tasks (identifier) values ('by_hand') returning id),
              j as (insert into graphile_worker._private_jobs (task_id, run_at, max_attempts)
                    select t.id, now() + interval '1 day', 1 from t, generate_series(1, $1) returning id)
         select min(id), max(id) from j",
    )
    .bind(graphile::SLICE * 2 + 1)
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    fail_in(&mut conn, first, "first job failed", 0.0).await;
    fail_in(&mut conn, last, "last job failed", 0.0).await;
    let mut polls = Vec::new();
    for _ in 0..4 {
        let poll = graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap();
        polls.push((poll.recorded, poll.history_pending));
    }
    // The first round is the history: the poller goes on at once until it ends.
    assert_eq!(polls, [(1, true), (0, true), (1, false), (0, false)], "one slice per poll, round the table");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_retried_and_failing_again_is_a_new_arrival(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap();
    let id = add_job(&pool, "always_fails", serde_json::json!({"message": "ledger down"}), 1).await;
    let dead = || async { (job_state(&pool, &schema, id).await == Some(GraphileState::Dead)).then_some(()) };
    wait_for("the job to fail", Duration::from_secs(30), dead).await;
    poll_until(&pool, &schema, "the failure", "select count(*) from backstop.error_groups where total = 1")
        .await;
    assert_eq!(graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap().recorded, 0, "seen");

    let mut tx = pool.begin().await.unwrap();
    graphile::act_on_graphile_jobs(&mut tx, &schema, GraphileAction::Retry, &[id], "otto").await.unwrap();
    tx.commit().await.unwrap();
    wait_for("the retried job to fail again", Duration::from_secs(30), dead).await;
    poll_until(
        &pool,
        &schema,
        "the second failure",
        "select count(*) from backstop.error_groups where total = 2",
    )
    .await;
}

/// The numbers in `queue/src/graphile/poll.rs`: polls of graphile-worker's table with
/// 1,000,000 jobs, 10,000 of them failed. Run with
/// `cargo test -p backstop --test graphile -- --ignored --nocapture bench_`.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
#[ignore = "a benchmark: seeds 1,000,000 jobs (about a minute)"]
async fn bench_polls_on_a_million_jobs(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts.clone()).await;
    let (worker, schema) = NodeWorker::start(&opts, &pool).await;
    drop(worker); // only its schema is needed
    sqlx::query(
        "with t as (insert into graphile_worker._private_tasks (identifier) values ('send_email') returning id)
         insert into graphile_worker._private_jobs (task_id, run_at, attempts, max_attempts, last_error)
         select t.id, now() + (i % 100000) * interval '1 second',
                case when i % 100 = 0 then 25 else 0 end, 25,
                case when i % 100 = 0 then 'smtp failed ' || (i % 7) end
         from t, generate_series(1, 1000000) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("vacuum analyze graphile_worker._private_jobs").execute(&pool).await.unwrap();

    let started = std::time::Instant::now();
    let mut polls = 0;
    while graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap().history_pending {
        polls += 1;
    }
    println!("first round (history, 10,000 failures grouped): {polls} polls, {:.2?}", started.elapsed());

    let mut times = Vec::new();
    for _ in 0..1_000_000 / graphile::SLICE {
        let started = std::time::Instant::now();
        graphile::record_failures(&pool, &schema, History::Quiet).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!("a poll, nothing new: p50 {:.2?}, p95 {:.2?}, max {:.2?}", at(0.5), at(0.95), at(1.0));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_operator_split_moves_graphile_worker_jobs_by_their_value(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    let (_worker, schema) = NodeWorker::start(&opts, &pool).await;
    let tenants = ["acme", "acme", "globex", "initech", "umbrella"];
    for tenant in tenants {
        let message = format!("sync for tenant {tenant} refused");
        add_job(&pool, "always_fails", serde_json::json!({ "message": message }), 1).await;
    }
    poll_until(
        &pool,
        &schema,
        "the failures",
        "select (count(*) = 5)::int::int8 from backstop.source_job_groups",
    )
    .await;
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].message, "sync for tenant <*> refused");

    let mut tx = pool.begin().await.unwrap();
    let split = triage::split_group(&mut tx, groups[0].id, 0).await.unwrap();
    tx.commit().await.unwrap();
    let values: Vec<(&str, usize)> =
        std::iter::once(&split.kept).chain(&split.others).map(|g| (g.value.as_str(), g.jobs)).collect();
    assert_eq!(values, [("acme", 2), ("globex", 1), ("initech", 1), ("umbrella", 1)]);
    for group in std::iter::once(&split.kept).chain(&split.others) {
        let search =
            graphile::GraphileSearch { group: Some(group.id), ..graphile::GraphileSearch::default() };
        let jobs = graphile::search(&pool, &schema, &search, None, 50).await.unwrap();
        assert_eq!(jobs.len(), group.jobs, "group {}", group.value);
        assert!(jobs.iter().all(|j| j.last_error.as_deref().unwrap().contains(group.value.as_str())));
    }
}
