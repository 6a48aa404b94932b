//! The console's HTTP surface against a real PostgreSQL: pages rendered on the server, server
//! functions, sign-in and roles, cross-site refusal, escaping. Each test gets a fresh database
//! (`#[sqlx::test]`).

use app::api::{ActOnJobs, ActOnMatching, EditAndRetry};
use app::model::{ActionReport, BulkProgress, JobAction, JobFilter, State};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use sqlx::PgPool;
use tower::ServiceExt as _;

use super::*;

/// A router over `pool` with these `--user` specs (none: the loopback default, all operators).
fn console(pool: PgPool, users: &[&str]) -> Router {
    console_with(pool, users, 3)
}

/// The same, with the console's own pool and its statement timeout, as `serve` builds it.
fn console_with(pool: PgPool, users: &[&str], query_timeout: u64) -> Router {
    console_built(pool, users, query_timeout, &[])
}

/// The loopback default's router that also answers to these `--allowed-host` names.
fn console_allowing(pool: PgPool, users: &[&str], allowed_hosts: &[&str]) -> Router {
    console_built(pool, users, 3, allowed_hosts)
}

fn console_built(pool: PgPool, users: &[&str], query_timeout: u64, allowed_hosts: &[&str]) -> Router {
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse().unwrap(),
        site_root: "does-not-exist".into(),
        users: users.iter().map(|spec| spec.parse().unwrap()).collect(),
        query_timeout,
        redact_keys: vec!["password".into()],
        allowed_hosts: allowed_hosts.iter().map(|host| host.parse().unwrap()).collect(),
        graphile_alert_history: false,
        metrics_token: None,
        proxy: ProxyArgs::none(),
        alerts: crate::alerts::AlertArgs::none(),
    };
    let console =
        Console { pool: console_pool(&pool, query_timeout), redact: RedactKeys::new(&args.redact_keys) };
    let access = Access::new(Users::new(args.users.clone()), None);
    let hosts = security::ServedHosts::new(host_rule(&access), &args.allowed_hosts);
    let monitoring = monitoring::Monitoring::new(console.pool.clone(), chrono::Utc::now());
    let readers = MetricsReaders::new(access.clone(), Some(METRICS_TOKEN.into()));
    router(leptos_options(&args).unwrap(), console, access, hosts, monitoring, readers)
}

/// The `--metrics-token` of the test consoles.
const METRICS_TOKEN: &str = "scrape-me";

/// Sends `request` as a browser on the console's own page would: to the loopback address it
/// serves, unless the request names another host.
async fn send(router: &Router, mut request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    request.headers_mut().entry(header::HOST).or_insert(header::HeaderValue::from_static("127.0.0.1:8080"));
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

/// A server-function call of `endpoint` with `args`, as the browser makes it: a same-origin form
/// POST.
fn call(endpoint: &str, args: &impl serde::Serialize) -> Request<Body> {
    form_post(endpoint, args, "sec-fetch-site", "same-origin")
}

/// The same call, signed in with HTTP Basic `credentials`.
fn call_as(credentials: &str, endpoint: &str, args: &impl serde::Serialize) -> Request<Body> {
    let mut request = call(endpoint, args);
    request.headers_mut().insert(header::AUTHORIZATION, basic(credentials).parse().unwrap());
    request
}

/// A form POST of `args` to `endpoint` with one more header (where the browser says it came from).
fn form_post(endpoint: &str, args: &impl serde::Serialize, name: &'static str, value: &str) -> Request<Body> {
    Request::post(format!("/api/{endpoint}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(name, value)
        .body(Body::from(serde_qs::to_string(args).unwrap()))
        .unwrap()
}

/// A dead job, as the runtime leaves it after the last failed attempt.
async fn dead_job(pool: &PgPool, kind: &str, payload: serde_json::Value, error: &str) -> i64 {
    backstop::testing::dead_job(pool, backstop::NewJob::from_json(kind, &payload), error).await.unwrap()
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_overview_shows_the_queue_rendered_on_the_server(pool: PgPool) {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Email;
    impl backstop::Job for Email {
        const KIND: &'static str = "email";
        const QUEUE: &'static str = "mail";
    }
    for _ in 0..3 {
        backstop::enqueue(&pool, &Email).await.unwrap();
    }
    dead_job(&pool, "email", serde_json::json!({}), "smtp down").await;
    let (status, headers, html) = send(&console(pool, &[]), get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<title>Overview · Backstop</title>"), "{html}");
    assert!(html.contains("/pkg/backstop.js"), "hydration script missing");
    assert!(html.contains(r#"data-testid="queue-mail""#), "queue row missing: {html}");
    assert!(html.contains(r#"data-testid="total-queued""#), "{html}");
    let queued = html.split(r#"data-testid="total-queued""#).nth(1).unwrap();
    assert!(queued.contains(">3<"), "three queued jobs expected: {queued:.300}");
    let dead = html.split(r#"data-testid="total-dead""#).nth(1).unwrap();
    assert!(dead.contains(">1<"), "one dead job expected: {dead:.300}");
    assert!(!html.contains(r#"data-testid="queue-problem""#), "a healthy queue shows no problem");
    // Security headers, with this page's nonce in the policy.
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).unwrap();
    assert!(html.contains(&format!(r#"nonce="{nonce}""#)), "inline scripts lack the policy's nonce");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn unknown_pages_are_404(pool: PgPool) {
    let (status, _, html) = send(&console(pool, &[]), get("/no/such/page")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Page not found"), "{html}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn hostile_payloads_and_errors_render_as_text(pool: PgPool) {
    let payload = serde_json::json!({ "note": "<script>alert('payload')</script>", "password": "hunter2" });
    let error = r#"<img src=x onerror="alert('error')"> '; drop table backstop.jobs; --"#;
    let id = dead_job(&pool, "hostile", payload, error).await;
    let router = console(pool.clone(), &[]);
    for page in ["/dead-letters".to_owned(), format!("/jobs/{id}")] {
        let (status, _, html) = send(&router, get(&page)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(!html.contains("<script>alert"), "{page}: raw script tag in {html}");
        assert!(!html.contains("<img src=x"), "{page}: raw img tag in {html}");
        assert!(
            html.contains("&lt;script&gt;alert") || html.contains(r"\u003cscript"),
            "{page}: payload not shown: {html}"
        );
        assert!(html.contains("&lt;img src=x"), "{page}: error not shown as text");
        assert!(!html.contains("hunter2"), "{page}: a redacted key's value reached the page");
    }
    assert_eq!(
        count(&pool, "select count(*) from backstop.jobs").await,
        0,
        "the SQL in the error did nothing"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_page_says_which_attempts_its_history_left_out(pool: PgPool) {
    let id = dead_job(&pool, "stubborn", serde_json::json!({}), "attempt 73 failed").await;
    // What the history holds after 73 failed attempts with a cap of 3: the first, the newest.
    sqlx::query(
        "update backstop.dead_jobs set errors = (select jsonb_agg(jsonb_build_object('at', now(), \
         'attempt', n, 'error', 'attempt ' || n || ' failed', 'worker', 'w')) from unnest(array[1, 72, 73]) n) \
         where id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let (status, _, html) = send(&console(pool, &[]), get(&format!("/jobs/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches(r#"data-testid="attempts-not-kept""#).count(), 1, "{html}");
    // (Leptos marks where one text node ends and the next begins with `<!>`.)
    assert!(html.replace("<!>", "").contains("Attempts 2–71: errors not kept"), "{html}");
    let (newest, gap, first) = (
        html.find("attempt 72 failed").unwrap(),
        html.find("Attempts 2–71").unwrap(),
        html.find("attempt 1 failed").unwrap(),
    );
    assert!(newest < gap && gap < first, "newest first, the gap where it is");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_payload_serde_json_cannot_read_shows_as_a_marker_not_an_error_page(pool: PgPool) {
    // Stored by another producer: nested 1,000 deep. serde_json reads 127 levels.
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    let id: i64 = sqlx::query_scalar(
        "insert into backstop.jobs (kind, payload) values ('deep', $1::jsonb) returning id",
    )
    .bind(&deep)
    .fetch_one(&pool)
    .await
    .unwrap();
    let router = console(pool, &[]);
    for page in ["/jobs".to_owned(), format!("/jobs/{id}")] {
        let (status, _, html) = send(&router, get(&page)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.contains(backstop::admin::UNREADABLE_PAYLOAD_KEY), "{page}: {html}");
        assert!(html.contains("not shown: recursion limit exceeded"), "{page}: {html}");
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn viewers_read_but_cannot_act(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let retry = ActOnJobs { action: JobAction::Retry, state: State::Dead, ids: vec![id], source: None };

    let (status, headers, _) = send(&router, get("/dead-letters")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic"));

    let request = get("/dead-letters");
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(header::AUTHORIZATION, basic("vera:v-pass").parse().unwrap());
    let (status, _, html) = send(&router, Request::from_parts(parts, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("declined"), "the viewer sees the dead job");
    assert!(html.contains(r#"data-testid="read-only""#), "the viewer is told the list is read-only");

    let (status, _, text) = send(&router, call_as("vera:v-pass", "act_on_jobs", &retry)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 1, "a viewer changed a job");

    let (status, _, text) = send(&router, call_as("otto:o-pass", "act_on_jobs", &retry)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let report: ActionReport = serde_json::from_str(&text).unwrap();
    assert_eq!(report, ActionReport { matched: 1, changed: 1 });
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1, "the job is back in the queue");
    let audit: (String, String, i64) =
        sqlx::query_as("select actor, action, changed from backstop.audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audit, ("otto".into(), "retry".into(), 1));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn cross_site_writes_are_refused_even_with_credentials(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let router = console(pool.clone(), &["otto:o-pass:operator"]);
    let delete = ActOnJobs { action: JobAction::Delete, state: State::Dead, ids: vec![id], source: None };
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let mut request = form_post("act_on_jobs", &delete, name, value);
        request.headers_mut().insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        request.headers_mut().insert(header::AUTHORIZATION, basic("otto:o-pass").parse().unwrap());
        let (status, _, text) = send(&router, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {text}");
    }
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs").await,
        1,
        "a forged request deleted a job"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn bulk_retry_by_filter_re_runs_the_filter_and_reports_the_count(pool: PgPool) {
    for n in 0..3 {
        dead_job(&pool, "sync_crm", serde_json::json!({ "account": n }), "crm timeout").await;
    }
    dead_job(&pool, "sync_crm", serde_json::json!({ "account": 99 }), "invalid token").await;
    dead_job(&pool, "send_sms", serde_json::json!({}), "crm timeout").await;
    let router = console(pool.clone(), &[]);
    let filter = JobFilter {
        state: Some(State::Dead),
        kind: Some("sync_crm".into()),
        error: Some("timeout".into()),
        ..JobFilter::default()
    };
    let retry =
        ActOnMatching { action: JobAction::Retry, filter: filter.clone(), after: None, audit_id: None };
    let (status, _, text) = send(&router, call("act_on_matching", &retry)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let step: BulkProgress = serde_json::from_str(&text).unwrap();
    assert_eq!((step.matched, step.changed, step.next), (3, 3, None), "one step covers all three");
    assert_eq!(count(&pool, "select count(*) from backstop.jobs where kind = 'sync_crm'").await, 3);
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 2, "others untouched");
    let target: serde_json::Value =
        sqlx::query_scalar("select target from backstop.audit_log").fetch_one(&pool).await.unwrap();
    assert_eq!(target["filter"]["kind"], "sync_crm", "the audit log names the filter: {target}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn filters_that_do_not_parse_are_a_clear_error(pool: PgPool) {
    dead_job(&pool, "x", serde_json::json!({}), "e").await;
    let (status, _, html) = send(&console(pool.clone(), &[]), get("/dead-letters?payload=%7Buser_id")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The payload filter is not valid JSON"), "{html}");
    let (_, _, html) = send(&console(pool, &[]), get("/dead-letters?from=last%20tuesday")).await;
    assert!(html.contains("is not one the filter understands"), "{html}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn editing_a_dead_job_s_payload_checks_the_json_and_keeps_masked_secrets(pool: PgPool) {
    let payload = serde_json::json!({ "user_id": 7, "password": "hunter2" });
    let id = dead_job(&pool, "login", payload, "bad user id").await;
    let router = console(pool.clone(), &[]);

    let broken = EditAndRetry { id, payload: "{\"user_id\": ".into() };
    let (status, _, text) = send(&router, call("edit_and_retry", &broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("not valid JSON"), "{text}");
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs").await,
        1,
        "a bad edit changed the job"
    );

    // As the page shows it: the password masked. Only user_id is changed.
    let fixed = EditAndRetry { id, payload: r#"{"user_id": 8, "password": "[redacted]"}"#.into() };
    let (status, _, text) = send(&router, call("edit_and_retry", &fixed)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let report: ActionReport = serde_json::from_str(&text).unwrap();
    assert_eq!(report, ActionReport { matched: 1, changed: 1 });
    let saved: serde_json::Value = sqlx::query_scalar("select payload from backstop.jobs where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(saved, serde_json::json!({ "user_id": 8, "password": "hunter2" }));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_query_over_the_time_limit_is_stopped_with_a_clear_message(pool: PgPool) {
    // Another session holds the live table: the console's query waits, and its one-second
    // statement timeout stops it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("lock table backstop.jobs in access exclusive mode").execute(&mut *blocker).await.unwrap();
    let started = std::time::Instant::now();
    let (status, _, html) = send(&console_with(pool.clone(), &[], 1), get("/jobs?kind=anything")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("took too long and was stopped"), "{html}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the timeout did not stop the query");
    blocker.rollback().await.unwrap();
}

/// A dead job recorded in its error group, as the runner does it. Returns (job id, group id).
async fn grouped_dead_job(pool: &PgPool, kind: &str, error: &str) -> (i64, i64) {
    let id = dead_job(pool, kind, serde_json::json!({}), error).await;
    let group: i64 = sqlx::query_scalar("select group_id from backstop.dead_jobs where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    (id, group)
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn triage_lists_groups_and_a_group_page_its_jobs_all_escaped(pool: PgPool) {
    let hostile = r#"<script>alert("x")</script> for order 123456; drop table users; --"#;
    let (job, group) = grouped_dead_job(&pool, "charge", hostile).await;
    grouped_dead_job(&pool, "charge", &hostile.replace("123456", "654321")).await;
    grouped_dead_job(&pool, "email", "smtp 421").await;
    let router = console(pool.clone(), &[]);

    let (status, _, html) = send(&router, get("/triage")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches(r#"data-testid="group-row""#).count(), 2, "two errors, two groups");
    assert!(!html.contains("<script>alert"), "a hostile error was rendered as markup");
    assert!(html.contains("&lt;script&gt;alert"), "{html}");
    assert!(html.contains("order &lt;n&gt;"), "the normalised message is shown: {html}");
    assert!(html.contains(r#"data-testid="sparkline""#));

    let (status, _, html) = send(&router, get(&format!("/triage/{group}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert"));
    assert_eq!(html.matches(r#"data-testid="job-row""#).count(), 2, "the group's two dead jobs: {html}");
    assert!(html.contains(&format!(r#"data-job-id="{job}""#)));
    let dead_now =
        html.split(r#"data-testid="group-dead-now""#).nth(1).unwrap().split("</dd>").next().unwrap();
    // Leptos' hydration markers (`<!>`) may follow the text (erase_components adds them).
    assert!(dead_now.trim_end_matches("<!>").ends_with(">2"), "two of its jobs are dead now: {dead_now}");

    // The dead-letter list keeps the group as a filter.
    let (_, _, html) = send(&router, get(&format!("/dead-letters?group={group}"))).await;
    assert_eq!(html.matches(r#"data-testid="job-row""#).count(), 2);
    assert!(html.contains(r#"data-testid="group-chip""#));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn changing_a_group_needs_an_operator_and_is_audited(pool: PgPool) {
    use app::api::ChangeGroup;
    use app::model::GroupChange;
    let (_, group) = grouped_dead_job(&pool, "charge", "declined").await;
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let resolve = ChangeGroup { id: group, change: GroupChange::Resolve };

    let (status, _, text) = send(&router, call_as("vera:v-pass", "change_group", &resolve)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, _, text) = send(&router, call_as("otto:o-pass", "change_group", &resolve)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.error_groups where status = 'resolved'").await, 1);

    let ignore = ChangeGroup { id: group, change: GroupChange::IgnoreArrivals(5) };
    let (status, _, text) = send(&router, call_as("otto:o-pass", "change_group", &ignore)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        count(&pool, "select ignored_until_total from backstop.error_groups where status = 'ignored'").await,
        6,
        "ignored until 5 more than its 1"
    );
    let actions: Vec<String> =
        sqlx::query_scalar("select action from backstop.audit_log where actor = 'otto' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actions, ["resolve_group", "ignore_group"]);

    let missing = ChangeGroup { id: group + 1000, change: GroupChange::Resolve };
    let (status, _, _) = send(&router, call_as("otto:o-pass", "change_group", &missing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn merging_groups_needs_an_operator_keeps_the_older_and_redirects_the_other(pool: PgPool) {
    use app::api::MergeGroup;
    // One problem worded two ways: the grouper keeps them apart, the operator knows better.
    let (_, older) = grouped_dead_job(&pool, "mail", "550 user unknown").await;
    let (_, newer) = grouped_dead_job(&pool, "mail", "550 no such user <b>here</b>").await;
    assert_ne!(older, newer);
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let merge = MergeGroup { id: newer, into: older };

    let (status, _, text) = send(&router, call_as("vera:v-pass", "merge_group", &merge)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let itself = MergeGroup { id: newer, into: newer };
    let (status, _, text) = send(&router, call_as("otto:o-pass", "merge_group", &itself)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("cannot merge with itself"), "{text}");

    let (status, _, text) = send(&router, call_as("otto:o-pass", "merge_group", &merge)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text.trim(), older.to_string(), "the older group survives");
    let in_older: i64 = sqlx::query_scalar("select count(*) from backstop.dead_jobs where group_id = $1")
        .bind(older)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(in_older, 2);
    let audit: (String, i64) = sqlx::query_as(
        "select action, (target->>'survivor')::bigint from backstop.audit_log where actor = 'otto'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audit, ("merge_groups".to_owned(), older));

    // The merged group's old link goes on to the survivor, whose page shows its template.
    let router = console(pool.clone(), &[]);
    let (status, headers, _) = send(&router, get(&format!("/triage/{newer}"))).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers.get("location").unwrap(), &format!("/triage/{older}"));
    let (_, _, html) = send(&router, get(&format!("/triage/{older}"))).await;
    assert!(html.contains("550 user unknown"), "{html}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn splitting_a_group_needs_an_operator_and_is_audited_with_the_groups_it_made(pool: PgPool) {
    use app::api::SplitGroup;
    let mut group = 0;
    for tenant in ["acme", "acme", "globex", "initech", "umbrella"] {
        group = grouped_dead_job(&pool, "export", &format!("export for tenant {tenant} refused")).await.1;
    }
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let before = backstop::triage::error_group(&pool, group).await.unwrap().unwrap();
    assert_eq!(before.message, "export for tenant <*> refused", "one group");

    let split = SplitGroup { id: group, wildcard: 0 };
    let (status, _, text) = send(&router, call_as("vera:v-pass", "split_group", &split)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let nowhere = SplitGroup { id: group, wildcard: 3 };
    let (status, _, text) = send(&router, call_as("otto:o-pass", "split_group", &nowhere)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("no wildcard number 4"), "{text}");

    let (status, _, text) = send(&router, call_as("otto:o-pass", "split_group", &split)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let parts: Vec<app::model::SplitPart> = serde_json::from_str(&text).unwrap();
    let values: Vec<(&str, u64)> = parts.iter().map(|p| (p.value.as_str(), p.jobs)).collect();
    assert_eq!(values, [("acme", 2), ("globex", 1), ("initech", 1), ("umbrella", 1)]);
    assert_eq!(parts[0].id, group, "the most common value keeps the group");
    let audit: (String, serde_json::Value, i64) = sqlx::query_as(
        "select action, target->'groups', changed from backstop.audit_log where actor = 'otto'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let made: Vec<i64> = parts.iter().map(|p| p.id).collect();
    assert_eq!(audit, ("split_group".to_owned(), serde_json::json!(made), 5));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_overview_marks_a_queue_with_an_announced_health_problem(pool: PgPool) {
    backstop::enqueue(&pool, backstop::NewJob::from_json("email", &serde_json::json!({})).queue("mail"))
        .await
        .unwrap();
    sqlx::query(
        "insert into backstop.queue_health_alerts (queue, problem, alerted_at) values
             ('mail', 'no_workers', now()), ('mail', 'falling_behind', null)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, _, html) = send(&console(pool, &[]), get("/")).await;
    assert_eq!(status, StatusCode::OK);
    let row = html.split(r#"data-testid="queue-mail""#).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains(r#"data-testid="queue-problem""#) && row.contains("No worker"), "{row}");
    assert!(!row.contains("Falling behind"), "seen but not yet announced: not shown: {row}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_overview_shows_a_broken_webhook_and_never_its_url(pool: PgPool) {
    use app::api::SendTestAlert;
    let router = console(pool.clone(), &[]);
    // No webhooks: alerts are off, and a test alert says what to configure.
    let (_, _, html) = send(&router, get("/")).await;
    assert!(html.contains("--slack-webhook"), "{html}");
    let (status, _, text) = send(&router, call("send_test_alert", &SendTestAlert {})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("--slack-webhook"), "{text}");

    let spec: crate::alerts::WebhookSpec =
        "https://hooks.slack.com/services/T0/B0/very-secret-token".parse().unwrap();
    crate::alerts::register(&pool, &[spec]).await.unwrap();
    sqlx::query(
        "update backstop.alert_webhooks set broken_at = now(), broken_reason = '410 Gone no_service'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (_, _, html) = send(&router, get("/")).await;
    assert!(html.contains(r#"data-testid="webhook-broken""#), "{html}");
    assert!(html.contains("410 Gone no_service"));
    assert!(html.contains("hooks.slack.com …oken"), "the label identifies it");
    assert!(!html.contains("very-secret-token"), "the URL is a secret");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_role_that_cannot_read_graphile_worker_s_rows_gets_a_notice_not_a_crash(pool: PgPool) {
    let _worker = crate::test_support::GraphileWorker::start(&pool).await;
    let id: i64 =
        sqlx::query_scalar("select id from graphile_worker.add_job('slow', '{\"card\": \"4242\"}')")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Granted everything but ownership: row-level security shows it no private rows.
    for statement in [
        // Roles belong to the cluster, not the test's database: made once, granted per database.
        "do $$ begin create role web_console_reader login; exception when duplicate_object then null; end $$",
        "grant usage on schema graphile_worker, backstop to web_console_reader",
        "grant select on all tables in schema graphile_worker to web_console_reader",
        "grant select, insert, update, delete on all tables in schema backstop to web_console_reader",
        "grant execute on all functions in schema graphile_worker to web_console_reader",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
    }
    let options = (*pool.connect_options()).clone().username("web_console_reader");
    let reader = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect_with(options).await.unwrap();
    let router = console(reader, &[]);

    let (status, _, html) = send(&router, get("/jobs?source=graphile_worker")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-testid="source-notice""#), "{html}");
    assert!(html.contains("row-level security"));
    assert!(html.contains(&format!(r#"data-job-id="{id}""#)), "the job is listed from the public view");
    assert!(html.contains("payload not readable"), "said, rather than an empty payload");

    // Acting is refused with the reason, not done as a silent no-op.
    let retry = ActOnJobs {
        action: JobAction::Retry,
        state: State::Queued,
        ids: vec![id],
        source: Some("graphile_worker".into()),
    };
    let (status, _, text) = send(&router, call("act_on_jobs", &retry)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("cannot change them"), "{text}");

    // The overview shows graphile-worker beside Backstop, with the same notice.
    let (_, _, html) = send(&router, get("/")).await;
    assert!(html.contains(r#"data-testid="graphile""#), "{html}");
    assert!(html.contains("0.18 (migration 20)"));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn retry_all_on_a_graphile_worker_group_goes_through_graphile_worker(pool: PgPool) {
    let _worker = crate::test_support::GraphileWorker::start(&pool).await;
    // Two jobs that fail for good with one error (ids differ: one group), one with another.
    for message in ["ledger 4411 unreachable", "ledger 5522 unreachable", "bad signature"] {
        sqlx::query("select graphile_worker.add_job('always_fails', json_build_object('message', $1::text), max_attempts := 1)")
            .bind(message)
            .execute(&pool)
            .await
            .unwrap();
    }
    let schema = backstop::graphile::detect(&pool).await.unwrap().unwrap();
    let failed = backstop::graphile::GraphileSearch {
        state: Some(backstop::graphile::GraphileState::Dead),
        ..backstop::graphile::GraphileSearch::default()
    };
    crate::test_support::eventually(
        "three jobs to fail for good",
        std::time::Duration::from_secs(30),
        || async {
            (backstop::graphile::count(&pool, &schema, &failed, 10).await.unwrap() == 3).then_some(())
        },
    )
    .await;
    let poll = backstop::graphile::record_failures(&pool, &schema, backstop::graphile::History::Quiet);
    assert_eq!(poll.await.unwrap().recorded, 3);
    let group: i64 =
        sqlx::query_scalar("select id from backstop.error_groups where message = 'ledger <*> unreachable'")
            .fetch_one(&pool)
            .await
            .unwrap();

    // The group page's "Retry all matching…": the filter names only the group; the server knows
    // its jobs are graphile-worker's.
    let router = console(pool.clone(), &[]);
    let (_, _, html) = send(&router, get(&format!("/triage/{group}"))).await;
    assert_eq!(html.matches(r#"data-testid="job-row""#).count(), 2, "{html}");
    assert!(html.contains("?source=graphile_worker"), "rows link to graphile-worker's job page");
    let filter = JobFilter { state: Some(State::Dead), group: Some(group), ..JobFilter::default() };
    let retry = ActOnMatching { action: JobAction::Retry, filter, after: None, audit_id: None };
    let (status, _, text) = send(&router, call("act_on_matching", &retry)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let step: BulkProgress = serde_json::from_str(&text).unwrap();
    assert_eq!((step.matched, step.changed), (2, 2));
    assert_eq!(
        count(&pool, "select count(*) from graphile_worker._private_jobs where last_error like 'bad signature%' and attempts = 1").await,
        1,
        "the other group's job is untouched"
    );
}

/// Every way into the console, listed from what the router is built from: each page the app
/// routes (path parameters filled in), each registered server function, each file embedded in
/// the binary, the site's files (`public/` and the built `pkg/`), and a path nothing serves
/// (the fallback). A page, server function or file added later is in these lists without
/// touching this test.
fn every_route() -> Vec<(axum::http::Method, String)> {
    use axum::http::Method;
    let fill = |path: &str| -> String {
        let segments = path.split('/').map(|s| if s.starts_with([':', '{', '*']) { "1" } else { s });
        segments.collect::<Vec<_>>().join("/")
    };
    let mut routes: Vec<(Method, String)> =
        ROUTES.iter().map(|route| (Method::GET, fill(route.path()))).collect();
    routes.extend(leptos::server_fn::axum::server_fn_paths().map(|(path, method)| (method, path.to_owned())));
    routes.extend(crate::assets::names().map(|name| (Method::GET, format!("/{name}"))));
    for file in ["backstop.js", "backstop_bg.wasm", "backstop.css"] {
        routes.push((Method::GET, format!("/{PKG_DIR}/{file}")));
    }
    let public = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../public")).unwrap();
    for file in public {
        routes.push((Method::GET, format!("/{}", file.unwrap().file_name().to_str().unwrap())));
    }
    routes.push((Method::GET, "/no/such/page".to_owned()));
    routes
}

/// A request for `route` as a browser on a page at `host` makes it.
fn from_host(method: &axum::http::Method, path: &str, host: &str) -> Request<Body> {
    Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, host)
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn without_users_only_loopback_host_names_are_served_on_every_route(pool: PgPool) {
    let router = console_allowing(pool.clone(), &[], &["backstop.internal"]);
    let routes = every_route();
    assert!(routes.iter().any(|(_, path)| path == "/api/whoami"), "server functions listed: {routes:?}");
    assert!(routes.iter().any(|(_, path)| path == "/dead-letters"), "pages listed: {routes:?}");
    // A page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding).
    for (method, path) in &routes {
        for host in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"]
        {
            let (status, _, text) = send(&router, from_host(method, path, host)).await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{method} {path} with Host {host}: {text}");
            assert!(
                text.contains(host.split(':').next().unwrap()) && text.contains("--allowed-host"),
                "{text}"
            );
        }
    }
    for host in [
        "localhost",
        "localhost:8080",
        "console.localhost:8080",
        "LOCALHOST",
        "127.0.0.1:8080",
        "127.3.4.5",
        "[::1]:8080",
        "[::1]",
        "backstop.internal",
        "backstop.internal:443",
    ] {
        for (method, path) in &routes {
            let (status, _, text) = send(&router, from_host(method, path, host)).await;
            assert_ne!(status, StatusCode::MISDIRECTED_REQUEST, "{method} {path} with Host {host}: {text}");
        }
    }
    let (status, _, text) =
        send(&router, from_host(&axum::http::Method::POST, "/api/whoami", "localhost:8080")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("operator"), "{text}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn with_users_any_host_name_may_sign_in(pool: PgPool) {
    let router = console(pool, &["otto:o-pass:operator"]);
    let mut request = from_host(&axum::http::Method::POST, "/api/whoami", "backstop.example.com");
    request.headers_mut().insert(header::AUTHORIZATION, basic("otto:o-pass").parse().unwrap());
    let (status, _, text) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}
mod health_metrics;
mod mounted;
mod proxy_sign_in;
mod redaction_audit;

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn pages_go_out_compressed_and_server_function_answers_do_not(pool: PgPool) {
    use app::api::Whoami;
    let router = console(pool, &[]);
    let fetch = |mut request: Request<Body>, encoding: &'static str| {
        let router = router.clone();
        async move {
            let headers = request.headers_mut();
            headers.insert(header::HOST, header::HeaderValue::from_static("127.0.0.1:8080"));
            headers.insert(header::ACCEPT_ENCODING, header::HeaderValue::from_static(encoding));
            let response = router.oneshot(request).await.unwrap();
            let encoding = response.headers().get(header::CONTENT_ENCODING).cloned();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (encoding, body.len())
        }
    };
    let (plain, plain_size) = fetch(get("/"), "identity").await;
    assert_eq!(plain, None);
    for encoding in ["br", "gzip"] {
        let (used, size) = fetch(get("/"), encoding).await;
        assert_eq!(used.as_ref().map(|v| v.to_str().unwrap()), Some(encoding));
        assert!(size * 3 < plain_size, "{encoding}: {size} of {plain_size} bytes");
    }
    let (used, _) = fetch(call("whoami", &Whoami {}), "br, gzip").await;
    assert_eq!(used, None, "server function answers are not compressed");
}
