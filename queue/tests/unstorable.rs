//! Text PostgreSQL cannot store: NUL characters in failure messages, panics and payloads, and
//! failures the database refuses to record at all.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backstop::{Error, Job, JobContext, JobError, NewJob, Worker, admin};
use common::{RunningRunner, count, pool, test_runner, wait_for_count};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DEADLINE: Duration = Duration::from_secs(8);

/// Fails the way its payload says, with a NUL the worker adds (a payload cannot hold one).
#[derive(Serialize, Deserialize)]
struct Upstream {
    how: String,
}

impl Job for Upstream {
    const KIND: &'static str = "upstream";
    fn retry_policy() -> backstop::RetryPolicy {
        backstop::RetryPolicy::schedule(vec![Duration::from_millis(10)]).max_attempts(2).jitter(0.0)
    }
}

struct UpstreamWorker;

impl Worker for UpstreamWorker {
    type Job = Upstream;
    async fn work(&self, job: Upstream, _: JobContext) -> Result<(), JobError> {
        match job.how.as_str() {
            "fail_now" => Err(JobError::fail_now("upstream said \u{0}oops")),
            "retry" => Err(JobError::retry("C string \u{0} in a retry")),
            _ => panic!("panic with \u{0} inside"),
        }
    }
}

async fn enqueue(pool: &sqlx::PgPool, how: &str) -> i64 {
    backstop::enqueue(pool, &Upstream { how: how.into() }).await.unwrap().created().unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_nul_in_a_failure_message_is_stored_as_the_replacement_character(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let fail_now = enqueue(&pool, "fail_now").await;
    let retry = enqueue(&pool, "retry").await;
    let panic = enqueue(&pool, "panic").await;
    let runner = RunningRunner::start(test_runner(&pool).register(UpstreamWorker));
    // fail_now dies at once; the others after their second attempt.
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 3, DEADLINE).await;
    runner.stop().await;
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 0, "nothing left held");
    let dead = |id| {
        let pool = pool.clone();
        async move { admin::dead_job(&pool, id).await.unwrap().unwrap() }
    };
    let job = dead(fail_now).await;
    assert_eq!(
        (job.reason.as_str(), job.last_error.as_deref()),
        ("failed_now", Some("upstream said \u{FFFD}oops"))
    );
    assert_eq!(job.errors.0[0].error, "upstream said \u{FFFD}oops", "the history entry too");
    let job = dead(retry).await;
    assert_eq!(job.errors.0.len(), 2, "the retried attempt was recorded, not lost");
    assert!(job.errors.0.iter().all(|e| e.error == "C string \u{FFFD} in a retry"), "{:?}", job.errors);
    let job = dead(panic).await;
    assert_eq!(job.last_error.as_deref(), Some("worker panicked: panic with \u{FFFD} inside"));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_payload_with_nul_is_refused_with_where_it_is(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let nested = json!({"user": {"names": ["ada", "lo\u{0}ve"]}});
    let err = backstop::enqueue(&pool, NewJob::from_json("k", &nested)).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnstorablePayload { kind, location } if kind == "k" && location == "$.user.names[1]"),
        "{err:?}"
    );
    let in_key = json!({"user": {"na\u{0}me": 1}});
    let err = backstop::enqueue(&pool, NewJob::from_json("k", &in_key)).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnstorablePayload { location, .. } if location == "a key of $.user"),
        "{err:?}"
    );
    // A batch with one such job writes none of them.
    let batch = [NewJob::from_json("k", &json!({"fine": true})), NewJob::from_json("k", &nested)];
    assert!(matches!(backstop::enqueue_many(&pool, batch).await, Err(Error::UnstorablePayload { .. })));
    // NUL in the job's names: a clear error naming the option.
    let err =
        backstop::enqueue(&pool, NewJob::from_json("k", &json!({})).unique_key("a\u{0}b")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidOption(m) if m.contains("unique key")), "{err:?}");
    // A backslash followed by "u0000" is ordinary text.
    backstop::enqueue(&pool, NewJob::from_json("k", &json!({"path": "C:\\u0000"}))).await.unwrap();
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_edited_payload_with_nul_is_refused_and_the_job_stays_dead(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let id = enqueue(&pool, "fail_now").await;
    let runner = RunningRunner::start(test_runner(&pool).register(UpstreamWorker));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, DEADLINE).await;
    runner.stop().await;
    let edited = json!({"how": "retry\u{0}"});
    let err = admin::retry_dead_job_with_payload(&pool, id, &edited, 1024).await.unwrap_err();
    assert!(matches!(&err, Error::UnstorablePayload { location, .. } if location == "$.how"), "{err:?}");
    assert!(admin::dead_job(&pool, id).await.unwrap().is_some());
}

/// Fails its first run, succeeds after.
#[derive(Clone, Default)]
struct FailsOnce {
    runs: Arc<AtomicUsize>,
    attempts: Arc<std::sync::Mutex<Vec<i32>>>,
}

#[derive(Serialize, Deserialize)]
struct Refused;

impl Job for Refused {
    const KIND: &'static str = "refused";
    fn retry_policy() -> backstop::RetryPolicy {
        backstop::RetryPolicy::schedule(vec![Duration::from_millis(10)]).jitter(0.0)
    }
}

impl Worker for FailsOnce {
    type Job = Refused;
    async fn work(&self, _: Refused, ctx: JobContext) -> Result<(), JobError> {
        self.attempts.lock().unwrap().push(ctx.attempt);
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(JobError::fail_now("this failure cannot be recorded"))
        } else {
            Ok(())
        }
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_whose_failure_the_database_refuses_is_handed_back_not_held(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // Whatever makes PostgreSQL refuse to record failures (here a trigger; in the wild a
    // constraint or a value it cannot hold), recording must not leave the job locked by a
    // worker that keeps heartbeating.
    for statement in [
        "create function refuse() returns trigger language plpgsql as $$ begin raise exception 'refused'; end $$",
        "create trigger refuse_dead before insert on backstop.dead_jobs for each row execute function refuse()",
        "create trigger refuse_failed before update of last_error on backstop.jobs for each row execute function refuse()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    backstop::enqueue(&pool, &Refused).await.unwrap();
    let worker = FailsOnce::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    // Handed back, the job runs again and succeeds.
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
    assert_eq!(worker.runs.load(Ordering::SeqCst), 2);
    // The attempt whose outcome was lost is given back, so attempts never pass max_attempts.
    assert_eq!(*worker.attempts.lock().unwrap(), [1, 1]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_runner_refuses_names_and_cron_payloads_postgres_cannot_store(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // Each of these would otherwise fail at the first statement, over and over: a runner
    // whose registration never succeeds retries it as if the database were down.
    let pool = pool(opts).await;
    let refused = |builder: backstop::RunnerBuilder| match builder.build() {
        Ok(_) => panic!("built a runner PostgreSQL cannot register"),
        Err(e) => e,
    };
    let err = refused(test_runner(&pool).worker_id("host\u{0}1"));
    assert!(matches!(&err, Error::InvalidOption(m) if m.contains("worker id")), "{err:?}");
    let err = refused(test_runner(&pool).queue("q\u{0}", 1));
    assert!(matches!(&err, Error::InvalidOption(m) if m.contains("queue")), "{err:?}");
    let nightly = NewJob::from_json("report", &json!({"title": "a\u{0}b"}));
    let err = refused(test_runner(&pool).cron(backstop::CronSchedule::new("nightly", "0 3 * * *", nightly)));
    assert!(matches!(&err, Error::UnstorablePayload { location, .. } if location == "$.title"), "{err:?}");
    // Names longer than PostgreSQL's indexes and notifications take.
    let long = "q".repeat(backstop::MAX_NAME_BYTES + 1);
    let err = refused(test_runner(&pool).queue(&long, 1));
    assert!(
        matches!(&err, Error::InvalidOption(m) if m.starts_with("a queue name may be at most")),
        "{err:?}"
    );
    let report = NewJob::from_json("report", &json!({}));
    let err = refused(test_runner(&pool).cron(backstop::CronSchedule::new(&long, "0 3 * * *", report)));
    assert!(
        matches!(&err, Error::InvalidOption(m) if m.starts_with("a cron schedule name may be")),
        "{err:?}"
    );
    let deep = (0..=backstop::MAX_PAYLOAD_DEPTH).fold(json!(1), |inner, _| json!([inner]));
    let err = refused(test_runner(&pool).cron(backstop::CronSchedule::new(
        "deep",
        "0 3 * * *",
        NewJob::from_json("k", &deep),
    )));
    assert!(matches!(&err, Error::PayloadTooDeep { .. }), "{err:?}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_search_with_nul_is_a_clear_error_not_a_database_one(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let searches = [
        admin::JobSearch { kind: Some("k\u{0}".into()), ..Default::default() },
        admin::JobSearch { error_text: Some("oops\u{0}".into()), ..Default::default() },
        admin::JobSearch { payload_contains: Some(json!({"a": "\u{0}"})), ..Default::default() },
    ];
    for search in &searches {
        let err = admin::search_jobs(&pool, None, search, None, 10).await.unwrap_err();
        assert!(matches!(&err, Error::InvalidOption(m) if m.contains("NUL")), "{search:?}: {err:?}");
        let err = admin::count_dead_jobs(&pool, search, false, 10).await.unwrap_err();
        assert!(matches!(&err, Error::InvalidOption(m) if m.contains("NUL")), "{search:?}: {err:?}");
    }
}

/// JSON nested `depth` arrays deep, as text (serde_json would refuse to read it back).
fn nested_text(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_payload_nested_deeper_than_workers_read_is_refused_at_enqueue(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let nested = |depth| serde_json::from_str::<serde_json::Value>(&nested_text(depth)).unwrap();
    let limit = backstop::MAX_PAYLOAD_DEPTH;
    backstop::enqueue(&pool, NewJob::from_json("k", &nested(limit))).await.unwrap();
    // Built in Rust rather than parsed, since serde_json would not read it.
    let too_deep = (0..=limit).fold(json!(1), |inner, _| json!([inner]));
    let err = backstop::enqueue(&pool, NewJob::from_json("k", &too_deep)).await.unwrap_err();
    assert!(
        matches!(&err, Error::PayloadTooDeep { kind, depth, limit: l } if kind == "k" && *depth == limit + 1 && *l == limit),
        "{err:?}"
    );
    assert!(err.to_string().contains("could never run"), "{err}");
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1, "nothing written");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_payload_another_producer_stored_unreadable_fails_its_job_into_the_dead_letters(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // Stored by something other than Backstop's enqueue: PostgreSQL takes both.
    let unreadable = [nested_text(1000), r#"{"how": 1e400}"#.to_owned()];
    let mut ids = Vec::new();
    for payload in &unreadable {
        let id: i64 = sqlx::query_scalar(
            "insert into backstop.jobs (queue, kind, payload, max_attempts) values ('default', $1, $2::jsonb, 1) returning id",
        )
        .bind(Upstream::KIND)
        .bind(payload)
        .fetch_one(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    // The console reads them before they run.
    let live = admin::search_jobs(&pool, None, &admin::JobSearch::default(), None, 10).await.unwrap();
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|job| job.payload.get(admin::UNREADABLE_PAYLOAD_KEY).is_some()));
    let runner = RunningRunner::start(test_runner(&pool).register(UpstreamWorker));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 2, DEADLINE).await;
    runner.stop().await;
    let dead = admin::search_dead_jobs(&pool, &admin::JobSearch::default(), false, None, 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    for (id, stored) in ids.into_iter().zip(&unreadable) {
        let dead = admin::dead_job(&pool, id).await.unwrap().unwrap();
        let marker = dead.payload[admin::UNREADABLE_PAYLOAD_KEY].as_str().expect("the marker");
        assert!(marker.starts_with("not shown: "), "{marker}");
        let error = dead.last_error.unwrap();
        assert!(error.starts_with("payload does not match job kind `upstream`"), "{error}");
        // The stored payload is as it was.
        let kept: String = sqlx::query_scalar("select payload::text from backstop.dead_jobs where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        let as_stored: String =
            sqlx::query_scalar("select $1::jsonb::text").bind(stored).fetch_one(&pool).await.unwrap();
        assert_eq!(kept, as_stored);
        // Saved back unchanged from the console's form, the marker would overwrite the payload.
        let err = admin::retry_dead_job_with_payload(&pool, id, &dead.payload, 1 << 20).await.unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    }
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 2, "both still dead");
}
