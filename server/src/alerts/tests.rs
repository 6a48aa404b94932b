//! Slack alerts end to end against a real PostgreSQL and a real HTTP server that records every
//! request it receives and answers as each test scripts it. Jobs die through a real runner;
//! alerts are delivered by the console's real alert runner.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use backstop::triage;
use backstop::{Job, JobContext, JobError, NewJob, Runner, Worker};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::deliver::SlackAlert;
use super::digest::enqueue_digests;
use super::*;
use crate::test_support::eventually;

mod health;

/// What the recording server answers, in order; after the script runs out, it answers as a
/// working Slack webhook does: 200 "ok" to a message, 400 `invalid_payload` to a body that is
/// not one (such as an empty one).
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// A status with Slack's error code as the body (`invalid_blocks`, `no_service`, ...).
    Slack(u16, &'static str),
    TooManyRequests {
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    body: Value,
    answered: u16,
}

#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

async fn record(State(recorder): State<Recorder>, body: String) -> axum::response::Response {
    let reply = recorder.script.lock().unwrap().pop_front();
    let is_message = serde_json::from_str::<Value>(&body).is_ok_and(|m| m.get("text").is_some());
    let response = match reply {
        None if is_message => (StatusCode::OK, "ok").into_response(),
        None => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
        Some(Reply::Status(code)) => {
            (StatusCode::from_u16(code).unwrap(), "scripted failure").into_response()
        }
        Some(Reply::Slack(code, error)) => (StatusCode::from_u16(code).unwrap(), error).into_response(),
        Some(Reply::TooManyRequests { retry_after_secs }) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], "rate_limited")
                .into_response()
        }
    };
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    recorder.received.lock().unwrap().push(Received {
        at: Instant::now(),
        body,
        answered: response.status().as_u16(),
    });
    response
}

impl Recorder {
    /// Starts the server on a free loopback port; returns its webhook URL.
    async fn start(script: Vec<Reply>) -> (Self, String) {
        let recorder = Recorder { received: Arc::default(), script: Arc::new(Mutex::new(script.into())) };
        let app = axum::Router::new()
            .route("/services/T0/B0/secret-token", axum::routing::post(record))
            .with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/services/T0/B0/secret-token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (recorder, url)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        eventually(&format!("{n} requests"), deadline, || async {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
        .await
    }
}

/// A job that always dies at once with the error in its payload.
#[derive(Debug, Serialize, Deserialize)]
struct ChargeCard {
    error: String,
    password: String,
}

impl Job for ChargeCard {
    const KIND: &'static str = "charge_card";
    const QUEUE: &'static str = "billing";
}

#[derive(Debug)]
struct Declines;

impl Worker for Declines {
    type Job = ChargeCard;

    async fn work(&self, job: ChargeCard, _: JobContext) -> Result<(), JobError> {
        Err(JobError::fail_now(job.error))
    }
}

/// Everything one test runs: the recording server, the app's runner (where jobs die) and
/// one or more console alert runners.
struct Harness {
    pool: PgPool,
    recorder: Recorder,
    /// Webhook id to URL, as the console holds them.
    webhooks: Arc<HashMap<String, reqwest::Url>>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<backstop::Result<()>>>,
}

const PUBLIC_URL: &str = "http://console.test";

impl Harness {
    async fn start(opts: PgConnectOptions, script: Vec<Reply>, alert_runners: usize) -> Self {
        Self::start_with(opts, script, alert_runners, None).await
    }

    /// As [`start`](Self::start), with the queue-health check on the clock (every minute) in
    /// each alert runner when `queue_health` is given.
    async fn start_with(
        opts: PgConnectOptions,
        script: Vec<Reply>,
        alert_runners: usize,
        queue_health: Option<Arc<QueueAlertRules>>,
    ) -> Self {
        let pool = PgPoolOptions::new().max_connections(20).connect_with(opts).await.unwrap();
        let (recorder, url) = Recorder::start(script).await;
        let spec: WebhookSpec = url.parse().unwrap();
        let ids = register(&pool, std::slice::from_ref(&spec)).await.unwrap();
        let webhooks = Arc::new(HashMap::from([(ids[0].clone(), spec.url.clone())]));
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let app = Runner::builder(pool.clone())
            .queue("billing", 10)
            .poll_interval(Duration::from_millis(100))
            .register(Declines)
            .build()
            .unwrap();
        tasks.push(tokio::spawn(app.run(shutdown.clone())));
        for _ in 0..alert_runners {
            let messages = MessageContext {
                environment: "test".into(),
                public_url: PUBLIC_URL.into(),
                redact: RedactKeys::new(&["password".to_owned()]),
            };
            // Fast pacing: these tests count messages; the 429 test measures the wait Slack asks.
            let pace = Pace { per_second: 200.0, burst: 200.0 };
            // No digest on the clock: a test that crossed a ten-minute mark got one more message
            // than it counted. The tests that want a digest ask for it (`enqueue_digests`).
            let runner =
                alert_runner(&pool, Arc::clone(&webhooks), messages, pace, None, queue_health.clone())
                    .unwrap();
            tasks.push(tokio::spawn(runner.run(shutdown.clone())));
        }
        Self { pool, recorder, webhooks, shutdown, tasks }
    }

    async fn kill_card(&self, error: &str) {
        let job = ChargeCard { error: error.into(), password: "hunter2".into() };
        backstop::enqueue(&self.pool, &job).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until `sql` counts `expected`.
    async fn wait_count(&self, sql: &str, expected: i64, deadline: Duration) {
        eventually(&format!("`{sql}` = {expected}"), deadline, || async {
            (self.count(sql).await == expected).then_some(())
        })
        .await;
    }

    /// Waits until no alert job is left (delivered, or dead).
    async fn wait_alerts_settled(&self, deadline: Duration) {
        self.wait_count("select count(*) from backstop.jobs where queue = 'backstop'", 0, deadline).await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
    }
}

fn text(received: &Received) -> String {
    received.body["text"].as_str().unwrap_or_default().to_owned()
}

fn button_url(received: &Received) -> String {
    let blocks = received.body["blocks"].as_array().unwrap();
    blocks.last().unwrap()["elements"][0]["url"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_dead_job_alerts_slack_once_with_the_facts_and_a_link(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    h.kill_card("card 4242 declined: <script>alert('x')</script> & \"quotes\"").await;
    let received = h.recorder.wait_for(1, Duration::from_secs(30)).await;
    h.wait_alerts_settled(Duration::from_secs(10)).await;

    let group = triage::error_groups(&h.pool, &triage::GroupFilter::default()).await.unwrap().remove(0);
    let message = &received[0];
    assert!(text(message).starts_with("[test] New failure: charge_card (billing)"), "{}", text(message));
    assert_eq!(button_url(message), format!("{PUBLIC_URL}/triage/{}", group.id));
    let all = message.body.to_string();
    assert!(all.contains("&lt;script&gt;") && !all.contains("<script>"), "escaped for Slack");
    assert!(!all.contains("hunter2"), "redacted payload keys never reach Slack");
    assert!(!all.contains("secret-token"), "the webhook URL is not in the message");
    assert!(all.contains("1/5"), "attempts made of allowed (it failed now, on the first)");

    // The delivery is counted and audited.
    assert_eq!(h.count("select sent from backstop.alert_webhooks").await, 1);
    assert_eq!(
        h.count("select count(*) from backstop.audit_log where actor = 'slack' and action = 'alert_sent'")
            .await,
        1
    );

    // A second death in the same group is left for the digest: no alert job at all.
    h.kill_card("card 9999 declined: <script>alert('x')</script> & \"quotes\"").await;
    h.wait_count("select total from backstop.error_groups", 2, Duration::from_secs(30)).await;
    assert_eq!(h.count("select count(*) from backstop.jobs where queue = 'backstop'").await, 0);
    assert_eq!(h.recorder.received().len(), 1);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_storm_of_ten_thousand_deaths_is_a_handful_of_messages(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    let errors = ["card {n} declined", "gateway timeout after {n}ms", "fraud check failed for user {n}"];
    let jobs = (0..10_000).map(|i| {
        let error = errors[i % 3].replace("{n}", &(100_000 + i).to_string());
        NewJob::new(&ChargeCard { error, password: "x".into() })
    });
    let jobs: Vec<NewJob> = jobs.collect();
    for chunk in jobs.chunks(2_000) {
        backstop::enqueue_many(&h.pool, chunk.to_vec()).await.unwrap();
    }
    h.wait_count("select count(*) from backstop.dead_jobs", 10_000, Duration::from_secs(180)).await;
    h.wait_alerts_settled(Duration::from_secs(30)).await;
    let texts: Vec<String> = h.recorder.received().iter().map(text).collect();
    assert_eq!(texts.len(), 3, "one message per new group: {texts:#?}");

    let digests = enqueue_digests(&h.pool, chrono::Utc::now()).await.unwrap();
    assert_eq!(digests, 1, "one digest per webhook");
    let received = h.recorder.wait_for(4, Duration::from_secs(30)).await;
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    assert_eq!(received.len(), 4);
    assert_eq!(received.iter().filter(|r| text(r).contains("New failure")).count(), 3);
    assert!(
        text(&received[3]).starts_with("[test] 9997 more dead jobs in 3 known groups"),
        "{}",
        text(&received[3])
    );
    // Everything reported: the next digest has nothing to say.
    assert_eq!(enqueue_digests(&h.pool, chrono::Utc::now()).await.unwrap(), 0);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn slack_failing_then_recovering_gets_each_alert_exactly_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let h = Harness::start(opts, vec![Reply::Status(500), Reply::Status(502), Reply::Status(503)], 1).await;
    h.kill_card("processor unavailable").await;
    h.kill_card("card rejected by issuer").await;
    // Two alerts, each refused until the script runs out, then each delivered once.
    eventually("both alerts delivered", Duration::from_secs(60), || async {
        let delivered = h.recorder.received().iter().filter(|r| r.answered == 200).count();
        (delivered == 2).then_some(())
    })
    .await;
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    let received = h.recorder.received();
    assert_eq!(received.len(), 5, "3 failures + 2 deliveries, nothing after");
    let mut delivered: Vec<String> = received.iter().filter(|r| r.answered == 200).map(text).collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 2, "two different alerts, each once");
    assert_eq!(
        h.count("select count(*) from backstop.dead_jobs where kind = 'backstop.slack_alert'").await,
        0
    );
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_429_retry_after_is_honoured(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![Reply::TooManyRequests { retry_after_secs: 2 }], 1).await;
    h.kill_card("declined").await;
    let received = h.recorder.wait_for(2, Duration::from_secs(30)).await;
    let gap = received[1].at - received[0].at;
    println!("429 Retry-After: 2 s; next request {:.2} s later", gap.as_secs_f64());
    assert_eq!((received[0].answered, received[1].answered), (429, 200));
    assert!(gap >= Duration::from_secs(2), "waited {gap:?}, Slack asked for 2 s");
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_gone_webhook_is_marked_broken_and_left_alone(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![Reply::Status(410)], 1).await;
    h.kill_card("declined").await;
    h.wait_count(
        "select count(*) from backstop.dead_jobs where kind = 'backstop.slack_alert' and last_error like '%410 Gone%'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let webhooks = triage::alert_webhooks(&h.pool).await.unwrap();
    assert!(webhooks[0].broken_at.is_some());
    assert_eq!(webhooks[0].broken_reason.as_deref(), Some("410 Gone scripted failure"));
    // A new group now: no alert job for a broken webhook, and no alert about the dead alert.
    h.kill_card("a different failure").await;
    h.wait_count(
        "select count(*) from backstop.error_groups where kind = 'charge_card'",
        2,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(h.count("select count(*) from backstop.jobs where queue = 'backstop'").await, 0);
    assert_eq!(h.recorder.received().len(), 1);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn two_consoles_never_send_the_same_alert_twice(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 2).await;
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
    for word in words {
        for other in ["x", "y"] {
            // Two words that change together: twenty different problems, never one learned
            // template (a single word with three values would be).
            h.kill_card(&format!("{word} {word}{other} failed")).await;
        }
    }
    let received = h.recorder.wait_for(20, Duration::from_secs(60)).await;
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    let received_now = h.recorder.received();
    assert_eq!(received_now.len(), 20, "{} messages for 20 new groups", received_now.len());
    let mut links: Vec<String> = received.iter().map(button_url).collect();
    links.sort();
    links.dedup();
    assert_eq!(links.len(), 20, "every group alerted once");
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_resolved_group_that_returns_alerts_again(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    h.kill_card("insufficient funds").await;
    h.recorder.wait_for(1, Duration::from_secs(30)).await;
    let group = triage::error_groups(&h.pool, &triage::GroupFilter::default()).await.unwrap().remove(0);
    assert!(triage::resolve_group(&h.pool, group.id).await.unwrap());

    h.kill_card("insufficient funds").await;
    let received = h.recorder.wait_for(2, Duration::from_secs(30)).await;
    assert!(
        text(&received[1]).starts_with("[test] Resolved failure is back: charge_card"),
        "{}",
        text(&received[1])
    );
    assert_eq!(button_url(&received[1]), format!("{PUBLIC_URL}/triage/{}", group.id));
    let group = triage::error_group(&h.pool, group.id).await.unwrap().unwrap();
    assert_eq!((group.status.as_str(), group.total), ("open", 2));
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_test_alert_reaches_every_working_webhook(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    assert_eq!(triage::enqueue_test_alerts(&h.pool, "otto").await.unwrap(), 1);
    let received = h.recorder.wait_for(1, Duration::from_secs(30)).await;
    assert!(text(&received[0]).contains("Test alert from Backstop, sent by otto"));
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_graphile_worker_job_that_fails_for_good_alerts_slack_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let h = Harness::start(opts, vec![], 1).await;
    let _worker = crate::test_support::GraphileWorker::start(&h.pool).await;
    let history = backstop::graphile::History::Quiet;
    tokio::spawn(crate::sources::poll_graphile(h.pool.clone(), history, h.shutdown.clone()));
    // Failures from before the console's first look are history (not alerted): wait for it.
    h.wait_count(
        "select count(*) from backstop.source_watermarks where history_done",
        1,
        Duration::from_secs(30),
    )
    .await;
    sqlx::query("select graphile_worker.add_job('always_fails', '{\"message\": \"ledger <4411> unreachable\"}', max_attempts := 1)")
        .execute(&h.pool)
        .await
        .unwrap();

    let received = h.recorder.wait_for(1, Duration::from_secs(60)).await;
    assert!(text(&received[0]).starts_with("[test] New failure: always_fails"), "{}", text(&received[0]));
    let all = received[0].body.to_string();
    assert!(all.contains("graphile_worker"), "the source is named: {all}");
    assert!(all.contains("ledger &lt;4411&gt; unreachable"), "the group's template, escaped: {all}");
    assert!(all.contains("?source=graphile_worker"), "the job link opens graphile-worker's job: {all}");
    // Polled again and again: still one group, one arrival, one message.
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    assert_eq!(h.count("select total from backstop.error_groups where source = 'graphile_worker'").await, 1);
    assert_eq!(h.recorder.received().len(), 1);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_message_slack_refuses_is_resent_as_plain_text_and_the_webhook_kept(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let h = Harness::start(opts, vec![Reply::Slack(400, "invalid_blocks")], 1).await;
    h.kill_card("card 4242 declined").await;
    let received = h.recorder.wait_for(2, Duration::from_secs(30)).await;
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    assert_eq!((received[0].answered, received[1].answered), (400, 200));
    assert!(received[0].body.get("blocks").is_some(), "first as Block Kit");
    assert!(received[1].body.get("blocks").is_none(), "then without blocks: {}", received[1].body);
    assert_eq!(text(&received[1]), text(&received[0]), "the same words, as plain text");
    let webhooks = triage::alert_webhooks(&h.pool).await.unwrap();
    assert_eq!(webhooks[0].broken_at, None, "a refused message is not a broken webhook");
    assert_eq!(
        h.count("select count(*) from backstop.audit_log where action = 'alert_sent'").await,
        1,
        "delivered once"
    );
    // The next new group alerts as usual, blocks and all.
    h.kill_card("gateway timeout").await;
    let received = h.recorder.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(received[2].answered, 200);
    assert!(received[2].body.get("blocks").is_some());
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_broken_webhook_is_checked_and_used_again_once_it_works(_: PgPoolOptions, opts: PgConnectOptions) {
    // Gone for the alert and for the first check; then it works again.
    let gone = Reply::Slack(404, "no_service");
    let h = Harness::start(opts, vec![gone, gone], 1).await;
    h.kill_card("declined").await;
    h.wait_count(
        "select count(*) from backstop.alert_webhooks where broken_at is not null",
        1,
        Duration::from_secs(30),
    )
    .await;
    // Checked every 50 ms here (every five minutes by default).
    let upkeep =
        Upkeep { confirm_every: Duration::from_secs(3600), check_broken_every: Duration::from_millis(50) };
    let checks =
        keep_up(h.pool.clone(), http_client().unwrap(), Arc::clone(&h.webhooks), upkeep, h.shutdown.clone());
    let checks = tokio::spawn(checks);
    h.wait_count(
        "select count(*) from backstop.alert_webhooks where broken_at is null",
        1,
        Duration::from_secs(30),
    )
    .await;
    let received = h.recorder.received();
    let answers: Vec<u16> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [404, 404, 400], "the alert, a check while still gone, a check that finds it back");
    assert_eq!(received[1].body, Value::String(String::new()), "a check posts nothing to the channel");
    assert_eq!(triage::alert_webhooks(&h.pool).await.unwrap()[0].broken_reason, None);

    // Alerts go to it again, without a restart.
    h.kill_card("a different failure").await;
    let received = h.recorder.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(received[3].answered, 200);
    assert!(text(&received[3]).contains("New failure"), "{}", text(&received[3]));
    h.stop().await;
    checks.await.unwrap();
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_digest_of_thousands_of_groups_is_one_small_message(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    // 8,000 open groups with deaths not yet reported: more than fit a job's payload by id.
    sqlx::query(
        "insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error, sample_job_id,
                                            total, digested_total)
         select 'digest-' || i, 'backstop', 'k' || i, 'billing', 'problem ' || i, 'problem ' || i, i,
                1 + i % 7, 0
         from generate_series(1, 8000) i",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    let deaths: i64 = h.count("select sum(total)::bigint from backstop.error_groups").await;

    // Held while it is measured, then let go.
    backstop::admin::pause_queue(&h.pool, triage::ALERT_QUEUE).await.unwrap();
    assert_eq!(enqueue_digests(&h.pool, chrono::Utc::now()).await.unwrap(), 1);
    let size = h
        .count("select length(payload::text)::bigint from backstop.jobs where kind = 'backstop.slack_alert'")
        .await;
    assert!(size < 8 * 1024, "the digest job is small: {size} bytes");
    backstop::admin::resume_queue(&h.pool, triage::ALERT_QUEUE).await.unwrap();
    let received = h.recorder.wait_for(1, Duration::from_secs(30)).await;
    let message = text(&received[0]);
    assert!(message.contains(&format!("{deaths} more dead jobs in 8000 known groups")), "{message}");
    let all = received[0].body.to_string();
    assert!(all.contains("other groups"), "the unlisted groups are counted: {all}");
    h.stop().await;
}

/// An alert job that runs again after Slack had its message (its completion lost in a database
/// crash, which the runner answers by running the job again) sends nothing the second time.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_alert_job_that_runs_again_after_its_delivery_sends_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // No console runner: the test runs the alert job itself, twice, as the crash would.
    let h = Harness::start(opts, vec![], 0).await;
    h.kill_card("card 4242 declined").await;
    h.wait_count("select count(*) from backstop.jobs where queue = 'backstop'", 1, Duration::from_secs(30))
        .await;
    let (id, payload): (i64, Value) =
        sqlx::query_as("select id, payload from backstop.jobs where queue = 'backstop'")
            .fetch_one(&h.pool)
            .await
            .unwrap();
    let alert: SlackAlert = serde_json::from_value(payload).unwrap();
    let worker = SlackAlertWorker {
        pool: h.pool.clone(),
        client: http_client().unwrap(),
        webhooks: Arc::clone(&h.webhooks),
        messages: MessageContext {
            environment: "test".into(),
            public_url: PUBLIC_URL.into(),
            redact: RedactKeys::new(&[] as &[String]),
        },
        pace: Pace { per_second: 200.0, burst: 200.0 },
    };
    let attempt = |attempt| JobContext {
        id,
        kind: triage::ALERT_KIND.into(),
        queue: triage::ALERT_QUEUE.into(),
        attempt,
        max_attempts: 12,
        worker_id: "console".into(),
        pool: h.pool.clone(),
        shutdown: CancellationToken::new(),
    };
    worker.work(alert.clone(), attempt(1)).await.unwrap();
    worker.work(alert, attempt(2)).await.unwrap();
    assert_eq!(h.recorder.received().len(), 1, "delivered once");
    assert_eq!(h.count("select sent from backstop.alert_webhooks").await, 1);
    h.stop().await;
}
