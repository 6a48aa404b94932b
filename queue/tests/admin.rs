//! The admin API a console uses: search, counts, bulk actions in steps, and the audit log.

mod common;

use backstop::NewJob;
use backstop::admin::{self, DeadAction, JobSearch, JobState, LiveAction};
use common::{Action, RunningRunner, Scripted, ScriptedWorker, count, pool, test_runner, wait_for_count};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

/// `n` dead jobs of `kind`, each with payload `{"n": i, "group": group}` and error `error`,
/// the way the runtime leaves them (one failed attempt in the history).
async fn dead_jobs(pool: &PgPool, n: i64, kind: &str, group: &str, error: &str) {
    sqlx::query(
        "insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts, errors,
                                         last_error, created_at, reason)
         select nextval(pg_get_serial_sequence('backstop.jobs', 'id')), 'default', $2,
                jsonb_build_object('n', i, 'group', $3::text), 0, 1, 1,
                jsonb_build_array(jsonb_build_object('at', now(), 'attempt', 1, 'error', $4::text, 'worker', 't')),
                $4, now(), 'exhausted'
         from generate_series(1, $1) i",
    )
    .bind(n)
    .bind(kind)
    .bind(group)
    .bind(error)
    .execute(pool)
    .await
    .unwrap();
}

fn search(kind: Option<&str>, payload: Option<serde_json::Value>, error: Option<&str>) -> JobSearch {
    JobSearch {
        queue: None,
        kind: kind.map(Into::into),
        payload_contains: payload,
        error_text: error.map(Into::into),
        ..JobSearch::default()
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn dead_jobs_are_found_by_kind_payload_and_error_words(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    dead_jobs(&pool, 3, "charge", "a", "card_declined: insufficient funds").await;
    dead_jobs(&pool, 2, "charge", "b", "gateway timeout after 10s").await;
    dead_jobs(&pool, 4, "email", "a", "smtp: connection refused").await;
    let find = |s: JobSearch| {
        let pool = pool.clone();
        async move { admin::search_dead_jobs(&pool, &s, false, None, 100).await.unwrap().len() }
    };
    assert_eq!(find(search(Some("charge"), None, None)).await, 5);
    assert_eq!(find(search(None, Some(json!({"group": "a"})), None)).await, 7);
    assert_eq!(find(search(None, Some(json!({"group": "a", "n": 2})), None)).await, 2);
    assert_eq!(find(search(None, None, Some("timeout"))).await, 2);
    assert_eq!(find(search(None, None, Some("\"connection refused\""))).await, 4, "a quoted phrase");
    assert_eq!(find(search(Some("charge"), None, Some("declined -timeout"))).await, 3);
    // Search text is data, never SQL or query syntax that can fail.
    assert_eq!(find(search(None, None, Some("'); drop table backstop.jobs; -- & | !"))).await, 0);
    assert_eq!(
        admin::count_dead_jobs(&pool, &search(Some("email"), None, None), false, 100).await.unwrap(),
        4
    );
    assert_eq!(
        admin::count_dead_jobs(&pool, &search(None, None, None), false, 5).await.unwrap(),
        5,
        "capped"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn keyset_pages_cover_every_dead_job_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    dead_jobs(&pool, 250, "x", "a", "e").await;
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = admin::search_dead_jobs(&pool, &JobSearch::default(), false, before, 60).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.died_at, last.id));
        seen.extend(page.iter().map(|job| job.id));
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (250, 250));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn live_jobs_are_found_by_state_and_counted_per_queue(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let now = NewJob::from_json("sync", &json!({"user": 1}));
    let later = NewJob::from_json("sync", &json!({"user": 2})).delay(Duration::from_secs(3600)).queue("slow");
    backstop::enqueue_many(&pool, vec![now.clone(), now, later]).await.unwrap();
    dead_jobs(&pool, 2, "sync", "a", "boom").await;
    let all = JobSearch::default();
    let found = |state| {
        let (pool, all) = (pool.clone(), all.clone());
        async move { admin::search_jobs(&pool, state, &all, None, 100).await.unwrap().len() }
    };
    assert_eq!(found(None).await, 3);
    assert_eq!(found(Some(JobState::Queued)).await, 2);
    assert_eq!(found(Some(JobState::Scheduled)).await, 1);
    assert_eq!(found(Some(JobState::Running)).await, 0);
    assert_eq!(found(Some(JobState::Dead)).await, 0, "dead jobs are searched separately");
    let payload = search(None, Some(json!({"user": 2})), None);
    assert_eq!(admin::search_jobs(&pool, None, &payload, None, 100).await.unwrap().len(), 1);

    let counts = admin::queue_counts(&pool).await.unwrap();
    let default = counts.iter().find(|c| c.queue == "default").unwrap();
    assert_eq!((default.queued, default.scheduled, default.dead, default.exact), (2, 0, 2, true));
    let slow = counts.iter().find(|c| c.queue == "slow").unwrap();
    assert_eq!((slow.queued, slow.scheduled), (0, 1));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_bulk_action_in_steps_covers_everything_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    dead_jobs(&pool, 2500, "import", "a", "bad row").await;
    dead_jobs(&pool, 10, "other", "a", "bad row").await;
    let only_import = search(Some("import"), None, None);
    let mut after = None;
    let mut steps = Vec::new();
    loop {
        let step = admin::act_on_dead_matching_step(
            &pool,
            DeadAction::Discard,
            &only_import,
            false,
            after,
            1000,
            None,
        )
        .await
        .unwrap();
        steps.push((step.outcome.matched, step.outcome.changed));
        match step.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(steps, vec![(1000, 1000), (1000, 1000), (500, 500)]);
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs where discarded_at is not null").await,
        2500
    );
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs where kind = 'other' and discarded_at is null")
            .await,
        10
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn bulk_actions_on_live_jobs_skip_running_ones(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let worker = ScriptedWorker::default();
    // One job sleeps long enough to be running while the bulk delete happens.
    backstop::enqueue(&pool, &Scripted::new("busy", Action::SleepMillis(3000))).await.unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()).queue("default", 1));
    wait_for_count(
        &pool,
        "select count(*) from backstop.jobs where locked_by is not null",
        1,
        Duration::from_secs(10),
    )
    .await;
    // Waiting jobs on a queue no runner serves, so nothing can claim them meanwhile.
    let waiting = (0..3).map(|i| NewJob::new(&Scripted::new(format!("w{i}"), Action::Succeed)).queue("idle"));
    backstop::enqueue_many(&pool, waiting).await.unwrap();

    let outcome =
        admin::act_on_jobs_matching(&pool, LiveAction::Delete, None, &JobSearch::default(), "tester")
            .await
            .unwrap();
    assert_eq!((outcome.matched, outcome.changed, outcome.skipped()), (4, 3, 1));
    runner.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_audit_log_records_and_filters(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let target = json!({ "filter": { "kind": "import" } });
    admin::record_action(&pool, "alice", "retry", &target, 1000, 990).await.unwrap();
    admin::record_action(&pool, "slack", "alert_sent", &json!({}), 1, 1).await.unwrap();
    let everything = admin::audit_log(&pool, &admin::AuditFilter::default(), None, 10).await.unwrap();
    assert_eq!(everything.len(), 2);
    assert_eq!(everything[0].actor, "slack", "newest first");
    let alice = admin::AuditFilter { actor: Some("alice".into()), action: None };
    let log = admin::audit_log(&pool, &alice, None, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    let alerts = admin::AuditFilter { actor: None, action: Some("alert_sent".into()) };
    assert_eq!(admin::audit_log(&pool, &alerts, None, 10).await.unwrap().len(), 1);
    assert_eq!(
        (log[0].actor.as_str(), log[0].action.as_str(), log[0].requested, log[0].changed),
        ("alice", "retry", 1000, 990)
    );
    assert_eq!(log[0].target, target);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_bulk_audit_entry_continues_only_for_its_actor_action_and_filter(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    dead_jobs(&pool, 1500, "import", "a", "bad row").await;
    let filter = json!({ "filter": { "kind": "import" } });
    let pause =
        admin::record_action(&pool, "alice", "pause", &json!({"queue": "default"}), 1, 1).await.unwrap();
    let audit = admin::BulkAudit::start(&pool, "alice", "delete", &filter).await.unwrap();
    let resume = |id, actor: &'static str, action: &'static str, target: serde_json::Value| {
        let pool = pool.clone();
        async move { admin::BulkAudit::resume(&pool, id, actor, action, &target).await.unwrap() }
    };
    assert_eq!(resume(audit.id, "alice", "delete", filter.clone()).await, Some(audit.clone()));
    assert_eq!(resume(audit.id, "mallory", "delete", filter.clone()).await, None, "another actor");
    assert_eq!(resume(audit.id, "alice", "retry", filter.clone()).await, None, "another action");
    assert_eq!(resume(audit.id, "alice", "delete", json!({"filter": {}})).await, None, "another filter");
    assert_eq!(resume(pause, "alice", "pause", json!({"queue": "default"})).await, None, "not a bulk entry");

    let import = search(Some("import"), None, None);
    let first =
        admin::act_on_dead_matching_step(&pool, DeadAction::Delete, &import, false, None, 1000, Some(&audit))
            .await
            .unwrap();
    let last = admin::act_on_dead_matching_step(
        &pool,
        DeadAction::Delete,
        &import,
        false,
        first.next,
        1000,
        Some(&audit),
    )
    .await
    .unwrap();
    assert_eq!(last.next, None);
    let row = audit_counts(&pool, audit.id).await;
    assert_eq!(row, (1500, 1500, false), "every page counted, and the last one closed the entry");
    assert_eq!(resume(audit.id, "alice", "delete", filter).await, None, "a finished entry cannot grow");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_page_that_fails_leaves_the_pages_before_it_done_and_audited(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    dead_jobs(&pool, 1500, "import", "a", "bad row").await;
    // The oldest job (newest first: on the second page of 1,000) cannot be deleted.
    sqlx::raw_sql(
        "create function fail_delete() returns trigger language plpgsql as
         $$ begin raise exception 'refusing to delete job %', old.id; end $$;
         create trigger fail_delete before delete on backstop.dead_jobs
         for each row when (old.payload->>'n' = '1') execute function fail_delete();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let filter = json!({ "filter": { "kind": "import" } });
    let audit = admin::BulkAudit::start(&pool, "alice", "delete", &filter).await.unwrap();
    let import = search(Some("import"), None, None);
    let failed = admin::act_on_dead_matching_step(
        &pool,
        DeadAction::Delete,
        &import,
        false,
        None,
        10_000,
        Some(&audit),
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 500, "the first page is done");
    let row = audit_counts(&pool, audit.id).await;
    assert_eq!(row, (1000, 1000, true), "and audited; the entry stays open");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn cancel_and_edit_and_retry_join_the_caller_s_transaction(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let live = backstop::enqueue(&pool, NewJob::new(&Scripted::new("c", Action::Succeed)).queue("idle"))
        .await
        .unwrap()
        .created()
        .unwrap();
    dead_jobs(&pool, 1, "import", "a", "bad row").await;
    let dead: i64 = sqlx::query_scalar("select id from backstop.dead_jobs").fetch_one(&pool).await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    assert_eq!(admin::cancel_jobs(&mut tx, &[live], "by test").await.unwrap(), 1);
    assert!(admin::retry_dead_job_with_payload(&mut tx, dead, &json!({"n": 2}), 1024).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(admin::job(&pool, live).await.unwrap().is_some(), "the cancel rolled back with the caller");
    let still = admin::dead_job(&pool, dead).await.unwrap().expect("the retry rolled back with the caller");
    assert_eq!(still.payload, json!({"n": 1, "group": "a"}));

    let mut tx = pool.begin().await.unwrap();
    assert!(admin::retry_dead_job_with_payload(&mut tx, dead, &json!({"n": 2}), 1024).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(admin::job(&pool, dead).await.unwrap().unwrap().payload, json!({"n": 2}));
}

/// An audit entry's (requested, changed, in progress).
async fn audit_counts(pool: &sqlx::PgPool, id: i64) -> (i64, i64, bool) {
    sqlx::query_as("select requested, changed, in_progress from backstop.audit_log where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}
