//! `/healthz`, `/readyz` and `/metrics` (issue 13, item 4): who may read them, what readiness
//! checks, and metrics read back with a Prometheus text parser, every value matching the
//! database the test set up.

use std::collections::HashMap;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

use super::*;

/// A queue name with every character the text format must escape.
const ODD_QUEUE: &str = "we\"ird\\queue\nname";

fn with_header(mut request: Request<Body>, name: header::HeaderName, value: &str) -> Request<Body> {
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn health_answers_a_load_balancer_without_sign_in_or_a_loopback_name(pool: PgPool) {
    let router = console(pool.clone(), &["vera:v-pass:viewer"]);
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let request = with_header(get(path), header::HOST, "10.0.0.7:8080");
        let (status, headers, text) = send(&router, request).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, body), "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}: security headers too");
    }
    // Without users the console answers only to loopback names; health still answers any.
    let loopback_only = console(pool, &[]);
    let (status, _, _) =
        send(&loopback_only, with_header(get("/healthz"), header::HOST, "lb.internal")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) =
        send(&loopback_only, with_header(get("/metrics"), header::HOST, "evil.example")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "metrics name queues: the host check applies");
    let (status, _, _) = send(&loopback_only, with_header(get("/"), header::HOST, "lb.internal")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "pages still refuse other names");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn metrics_need_a_console_user_or_the_metrics_token(pool: PgPool) {
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let metrics = |auth: Option<String>| {
        let request = get("/metrics");
        match auth {
            Some(auth) => with_header(request, header::AUTHORIZATION, &auth),
            None => request,
        }
    };
    let (status, headers, _) = send(&router, metrics(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    for refused in [basic("vera:wrong"), "Bearer not-the-token".into(), format!("Basic {METRICS_TOKEN}")] {
        let (status, _, _) = send(&router, metrics(Some(refused.clone()))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    }
    for allowed in [basic("vera:v-pass"), basic("otto:o-pass"), format!("Bearer {METRICS_TOKEN}")] {
        let (status, _, body) = send(&router, metrics(Some(allowed.clone()))).await;
        assert_eq!(status, StatusCode::OK, "{allowed}: {body}");
        assert!(body.contains("# TYPE backstop_jobs gauge"), "{body}");
    }
    // The token reads metrics, nothing else.
    let (status, _, _) =
        send(&router, with_header(get("/"), header::AUTHORIZATION, &format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without users, open on loopback like every page.
    let (status, _, _) = send(&console(pool, &[]), get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn readiness_needs_the_database_and_every_migration(pool: PgPool) {
    let router = console(pool.clone(), &[]);
    let (status, _, _) = send(&router, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);

    let last = backstop::MIGRATOR.iter().rfind(|m| m.migration_type.is_up_migration()).unwrap().version;
    sqlx::query("delete from backstop._sqlx_migrations where version = $1")
        .bind(last)
        .execute(&pool)
        .await
        .unwrap();
    let (status, _, text) = send(&router, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text, "not ready: 1 of Backstop's migrations are not applied\n");
    let (status, _, _) = send(&router, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK, "the process is still alive");

    // A database nobody answers on (a closed port).
    let options = (*pool.connect_options()).clone().port(1);
    let unreachable = console(sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options), &[]);
    let (status, _, text) = send(&unreachable, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.starts_with("not ready: the database did not answer"), "{text}");
    assert!(!text.contains("127.0.0.1") && !text.contains("port"), "no connection details: {text}");
}

/// The parsed exposition, by family name.
struct Scrape(MetricsExposition<PrometheusType, PrometheusValue>);

impl Scrape {
    async fn read(router: &Router) -> (Scrape, String) {
        let (status, headers, body) = send(router, get("/metrics")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
        let parsed = parse_prometheus(&body).unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{body}"));
        (Scrape(parsed), body)
    }

    /// The value of `family`'s sample with exactly these labels; `None` if there is none.
    fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.0.families.get(family).unwrap_or_else(|| panic!("no family {family}"));
        family.iter_samples().find_map(|sample| {
            let set = sample.get_labelset().unwrap();
            let matches = set.iter().count() == labels.len()
                && labels.iter().all(|(name, value)| set.get_label_value(name) == Some(*value));
            matches.then(|| match &sample.value {
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                other => panic!("unexpected value {other:?}"),
            })
        })
    }

    fn kind(&self, family: &str) -> PrometheusType {
        self.0.families[family].family_type.clone()
    }
}

async fn exec(pool: &PgPool, sql: &'static str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn metrics_parse_as_prometheus_text_and_match_the_database(pool: PgPool) {
    // Counters count from the console's start: created before the rows below.
    let router = console(pool.clone(), &[]);
    // Queue `mail`: 3 queued (the oldest ready for 90 s), 1 scheduled, 1 running, 1 retrying,
    // 2 dead (1 more discarded, not counted); one live worker process running 4 at once.
    exec(
        &pool,
        "insert into backstop.jobs (queue, kind, run_at) values
             ('mail', 'email', now() - interval '90 seconds'), ('mail', 'email', now()), ('mail', 'email', now()),
             ('mail', 'email', now() + interval '1 hour');
         insert into backstop.jobs (queue, kind, attempts, locked_by, locked_at) values ('mail', 'email', 1, 'w1', now());
         insert into backstop.jobs (queue, kind, attempts, last_error, run_at)
             values ('mail', 'email', 1, 'smtp down', now() + interval '1 minute');
         insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts, errors,
                                         created_at, reason, discarded_at)
         select 1000 + i, 'mail', 'email', '{}', 0, 1, 1, '[]', now(), 'exhausted',
                case when i = 3 then now() end
         from generate_series(1, 3) i;
         insert into backstop.workers (id, queues, concurrency) values ('w1', '{mail}', '{4}');
         insert into backstop.queues (name, paused) values ('reports', true);",
    )
    .await;
    sqlx::query("insert into backstop.jobs (queue, kind) values ($1, 'odd')")
        .bind(ODD_QUEUE)
        .execute(&pool)
        .await
        .unwrap();
    // Counters: this minute's, and one from before the console started (not counted).
    exec(
        &pool,
        "insert into backstop.job_stats (minute, queue, kind, completed, failed, dead) values
             (date_trunc('minute', now()), 'mail', 'email', 5, 2, 1),
             (date_trunc('minute', now()) - interval '10 minutes', 'mail', 'email', 100, 100, 100);
         insert into backstop.alert_webhooks (id, label, sent, broken_at, broken_reason) values
             ('a1b2c3d4e5f6', 'hooks.slack.com …AAAA', 7, null, null),
             ('f6e5d4c3b2a1', 'hooks.slack.com …BBBB', 2, now(), 'channel_is_archived');
         insert into backstop.jobs (queue, kind, payload) values ('backstop', 'backstop.slack_alert', '{}');
         insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts, errors,
                                         created_at, reason)
         values (2000, 'backstop', 'backstop.slack_alert', '{}', 0, 12, 12, '[]', now(), 'exhausted');
         insert into backstop.queue_health_alerts (queue, problem, alerted_at) values
             ('mail', 'falling_behind', now()), ('reports', 'no_workers', null);",
    )
    .await;

    let (scrape, body) = Scrape::read(&router).await;
    let jobs =
        |queue: &str, state: &str| scrape.value("backstop_jobs", &[("queue", queue), ("state", state)]);
    assert_eq!(scrape.kind("backstop_jobs"), PrometheusType::Gauge);
    for (state, n) in
        [("queued", 3.0), ("scheduled", 1.0), ("running", 1.0), ("retrying", 1.0), ("dead", 2.0)]
    {
        assert_eq!(jobs("mail", state), Some(n), "mail {state}\n{body}");
    }
    assert_eq!(jobs(ODD_QUEUE, "queued"), Some(1.0), "a queue name read back as it is\n{body}");
    assert_eq!(jobs("reports", "queued"), Some(0.0), "a queue with settings and no jobs");
    assert_eq!(scrape.value("backstop_jobs_counts_exact", &[]), Some(1.0));
    let waited = scrape.value("backstop_queue_oldest_waiting_seconds", &[("queue", "mail")]).unwrap();
    assert!((89.0..300.0).contains(&waited), "oldest ready job waited about 90 s: {waited}");
    assert_eq!(scrape.value("backstop_queue_oldest_waiting_seconds", &[("queue", "reports")]), Some(0.0));
    assert_eq!(scrape.value("backstop_queue_workers", &[("queue", "mail")]), Some(1.0));
    assert_eq!(scrape.value("backstop_queue_workers", &[("queue", "reports")]), Some(0.0));
    assert_eq!(scrape.value("backstop_queue_concurrency", &[("queue", "mail")]), Some(4.0));
    assert_eq!(scrape.value("backstop_queue_paused", &[("queue", "reports")]), Some(1.0));
    assert_eq!(scrape.value("backstop_queue_paused", &[("queue", "mail")]), Some(0.0));

    let counter = |scrape: &Scrape, name: &str| {
        assert_eq!(scrape.kind(name), PrometheusType::Counter, "{name}");
        scrape.value(name, &[("queue", "mail"), ("kind", "email")])
    };
    assert_eq!(counter(&scrape, "backstop_jobs_completed_total"), Some(5.0), "{body}");
    assert_eq!(counter(&scrape, "backstop_jobs_failed_total"), Some(2.0));
    assert_eq!(counter(&scrape, "backstop_jobs_dead_total"), Some(1.0));

    let hook = |label: &'static str, id: &'static str| [("webhook", label), ("id", id)];
    assert_eq!(scrape.kind("backstop_alerts_sent_total"), PrometheusType::Counter);
    assert_eq!(
        scrape.value("backstop_alerts_sent_total", &hook("hooks.slack.com …AAAA", "a1b2c3d4")),
        Some(7.0)
    );
    assert_eq!(
        scrape.value("backstop_alerts_sent_total", &hook("hooks.slack.com …BBBB", "f6e5d4c3")),
        Some(2.0)
    );
    assert_eq!(
        scrape.value("backstop_alert_webhook_broken", &hook("hooks.slack.com …AAAA", "a1b2c3d4")),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("backstop_alert_webhook_broken", &hook("hooks.slack.com …BBBB", "f6e5d4c3")),
        Some(1.0)
    );
    assert_eq!(scrape.value("backstop_alert_webhooks_broken", &[]), Some(1.0));
    assert_eq!(scrape.value("backstop_alerts_pending", &[]), Some(1.0));
    assert_eq!(scrape.value("backstop_alerts_dead", &[]), Some(1.0));
    let problem =
        |queue, problem| scrape.value("backstop_queue_problem", &[("queue", queue), ("problem", problem)]);
    assert_eq!(problem("mail", "falling_behind"), Some(1.0));
    assert_eq!(problem("reports", "no_workers"), None, "seen, not yet announced");

    // Every family has help and a type; every line was read: the parse covers the whole text,
    // and one line it cannot read fails it.
    assert!(parse_prometheus("backstop_jobs{queue=\"mail} 1\n").is_err(), "the parser is strict");
    let families: HashMap<_, _> =
        scrape.0.families.iter().map(|(name, f)| (name.clone(), f.help.clone())).collect();
    assert_eq!(families.len(), 16, "{:?}", families.keys().collect::<Vec<_>>());
    assert!(families.values().all(|help| !help.is_empty()));

    // More completions this minute: the counter goes up by as many.
    exec(
        &pool,
        "update backstop.job_stats set completed = completed + 3 where minute = date_trunc('minute', now())",
    )
    .await;
    let (again, _) = Scrape::read(&router).await;
    assert_eq!(counter(&again, "backstop_jobs_completed_total"), Some(8.0));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn metrics_show_how_long_the_oldest_transaction_has_been_open(pool: PgPool) {
    let router = console(pool.clone(), &[]);
    let oldest = |scrape: &Scrape| scrape.value("backstop_oldest_transaction_seconds", &[]).unwrap();
    let (scrape, body) = Scrape::read(&router).await;
    assert_eq!(scrape.kind("backstop_oldest_transaction_seconds"), PrometheusType::Gauge);
    assert!(oldest(&scrape) < 1.0, "nothing left open yet\n{body}");

    // A session that began a transaction and left it open, as a forgotten psql `BEGIN` does.
    let before_begin = std::time::Instant::now();
    let mut forgotten = pool.begin().await.unwrap();
    sqlx::query("select txid_current()").execute(&mut *forgotten).await.unwrap();
    let deadline = before_begin + std::time::Duration::from_secs(30);
    let seen = loop {
        let (scrape, body) = Scrape::read(&router).await;
        let seen = oldest(&scrape);
        if seen >= 1.5 {
            break seen;
        }
        assert!(std::time::Instant::now() < deadline, "the open transaction never showed\n{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(seen <= before_begin.elapsed().as_secs_f64(), "{seen} s: longer than it has been open");

    forgotten.commit().await.unwrap();
    let (scrape, body) = Scrape::read(&router).await;
    assert!(oldest(&scrape) < 1.0, "it ended\n{body}");
}
