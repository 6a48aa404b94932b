//! Secrets never reach a page, an edited payload gets its masked values back by path, a reveal
//! is audited, and every action commits with its audit entry (issue 10, items 7 and 8).

use app::api::{JobDetailFor, RevealMasked, SetQueuePaused};
use app::model::JobDetail;
use backstop::admin;
use serde_json::{Value, json};

use super::*;

/// A dead job with secrets in its payload (nested, in an array, in a URL), its unique key and
/// its error history.
async fn job_with_secrets(pool: &PgPool) -> i64 {
    let payload = json!({
        "user": {"id": 7, "profile": {"access_token": "TOKNESTED1"}},
        "hooks": [{"url": "https://a.test", "apiKey": "KEYARRAY2"}],
        "callback": "https://bob:URLPASS3@cb.test/x",
    });
    let errors = json!([
        {"at": chrono::Utc::now(), "attempt": 1, "error": "connect failed: password=ERRPASS5", "worker": "w"},
        {"at": chrono::Utc::now(), "attempt": 2, "error": "upstream 401\nAuthorization: Bearer BEARERTOK6", "worker": "w"},
    ]);
    sqlx::query_scalar(
        "insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts, errors,
                                         last_error, unique_key, created_at, reason)
         values (nextval(pg_get_serial_sequence('backstop.jobs', 'id')), 'default', 'login', $1, 0, 2, 2, $2,
                 'upstream 401 for token=LASTERR7', 'login:password=UKPASS4', now(), 'exhausted')
         returning id",
    )
    .bind(payload)
    .bind(errors)
    .fetch_one(pool)
    .await
    .unwrap()
}

const SECRETS: [&str; 10] = [
    "TOKNESTED1",
    "KEYARRAY2",
    "URLPASS3",
    "UKPASS4",
    "ERRPASS5",
    "BEARERTOK6",
    "LASTERR7",
    "GROUPSECRET8",
    "AUDITPASS9",
    "AUDITTOK10",
];

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn secrets_never_reach_job_pages_lists_triage_or_the_audit_log(pool: PgPool) {
    let id = job_with_secrets(&pool).await;
    let (_, group) = grouped_dead_job(&pool, "login", "auth failed: client_secret=GROUPSECRET8").await;
    let filter = json!({"filter": {"error": "password=AUDITPASS9", "payload": r#"{"token": "AUDITTOK10"}"#}});
    admin::record_action(&pool, "otto", "delete", &filter, 1, 1).await.unwrap();
    let router = console(pool.clone(), &[]);
    for page in [
        "/dead-letters".to_owned(),
        format!("/jobs/{id}"),
        "/triage".into(),
        format!("/triage/{group}"),
        "/audit".into(),
    ] {
        let (status, _, html) = send(&router, get(&page)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for secret in SECRETS {
            assert!(!html.contains(secret), "{page} shows {secret}");
        }
    }
    // What is around a secret is still shown (so the test reads the right parts of the pages).
    let (_, _, html) = send(&router, get(&format!("/jobs/{id}"))).await;
    for shown in ["[redacted /user/profile/access_token]", "password=[redacted]", "Bearer [redacted]"] {
        assert!(html.contains(shown), "the job page shows {shown}: {html}");
    }
    let (_, _, html) = send(&router, get("/audit")).await;
    assert!(html.contains("password=[redacted]"), "{html}");
}

/// The job's detail as the page gets it.
async fn detail(router: &Router, id: i64) -> JobDetail {
    let (status, _, text) = send(router, call("job_detail", &JobDetailFor { id, source: None })).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str::<Option<JobDetail>>(&text).unwrap().unwrap()
}

async fn live_payload(pool: &PgPool, id: i64) -> Option<Value> {
    sqlx::query_scalar("select payload from backstop.jobs where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn edit_and_retry_restores_masked_values_by_path(pool: PgPool) {
    let original = json!({
        "hooks": [{"url": "a", "password": "first"}, {"url": "b", "password": "second"}],
        "api_key": "k",
        "n": 1,
    });
    let id = dead_job(&pool, "sync", original, "bad n").await;
    let router = console(pool.clone(), &[]);
    // The operator removes the first hook, deletes the api key and fixes n.
    let mut edited: Value = serde_json::from_str(&detail(&router, id).await.payload).unwrap();
    edited["hooks"].as_array_mut().unwrap().remove(0);
    edited.as_object_mut().unwrap().remove("api_key");
    edited["n"] = json!(2);
    let request = EditAndRetry { id, payload: edited.to_string() };
    let (status, _, text) = send(&router, call("edit_and_retry", &request)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        live_payload(&pool, id).await,
        Some(json!({"hooks": [{"url": "b", "password": "second"}], "n": 2})),
        "the second hook keeps its own secret; the deleted key stays deleted"
    );

    // Moving a masked value under a key that is shown would reveal it: refused.
    let id = dead_job(&pool, "sync", json!({"password": "p", "note": "x"}), "bad").await;
    let sneaky = EditAndRetry { id, payload: r#"{"note": "[redacted /password]"}"#.into() };
    let (status, _, text) = send(&router, call("edit_and_retry", &sneaky)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(!text.contains("\"p\""), "{text}");
    assert_eq!(live_payload(&pool, id).await, None, "nothing was changed");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_operator_reveals_one_masked_value_and_the_audit_log_says_so_without_it(pool: PgPool) {
    let id = dead_job(&pool, "login", json!({"user": {"session_token": "REVEALED1"}, "id": 1}), "e").await;
    let router = console(pool.clone(), &["vera:v-pass:viewer", "otto:o-pass:operator"]);
    let reveal = |path: &str| RevealMasked { id, path: path.into(), source: None };
    let audit_rows = || count(&pool, "select count(*) from backstop.audit_log");

    // The job page offers the reveal to operators only.
    for (credentials, offered) in [("vera:v-pass", false), ("otto:o-pass", true)] {
        let mut request = get(&format!("/jobs/{id}"));
        request.headers_mut().insert(header::AUTHORIZATION, basic(credentials).parse().unwrap());
        let (status, _, html) = send(&router, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.contains(r#"data-testid="masked-values""#), offered, "{credentials}: {html}");
        assert!(html.contains("[redacted /user/session_token]") && !html.contains("REVEALED1"));
    }

    let (status, _, text) =
        send(&router, call_as("vera:v-pass", "reveal_masked", &reveal("/user/session_token"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(!text.contains("REVEALED1"));
    assert_eq!(audit_rows().await, 0);

    let (status, _, text) = send(&router, call_as("otto:o-pass", "reveal_masked", &reveal("/id"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unmasked value is not revealed by this door: {text}");
    assert_eq!(audit_rows().await, 0);

    let (status, _, text) =
        send(&router, call_as("otto:o-pass", "reveal_masked", &reveal("/user/session_token"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("REVEALED1"), "{text}");
    let (actor, action, target): (String, String, Value) =
        sqlx::query_as("select actor, action, target from backstop.audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((actor.as_str(), action.as_str()), ("otto", "reveal"));
    assert_eq!(target, json!({"ids": [id], "path": "/user/session_token"}), "who, which job, which path");

    // No audit entry, no value.
    fail_audit_inserts(&pool).await;
    let (status, _, text) =
        send(&router, call_as("otto:o-pass", "reveal_masked", &reveal("/user/session_token"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(!text.contains("REVEALED1"), "{text}");
}

/// From now on, every new audit entry fails (and so must the action it records).
async fn fail_audit_inserts(pool: &PgPool) {
    sqlx::raw_sql(
        "create function fail_audit() returns trigger language plpgsql as
         $$ begin raise exception 'the audit log is unavailable'; end $$;
         create trigger fail_audit before insert on backstop.audit_log
         for each row execute function fail_audit();",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn edit_and_retry_and_cancel_commit_with_their_audit_entry_or_not_at_all(pool: PgPool) {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Idle;
    impl backstop::Job for Idle {
        const KIND: &'static str = "idle";
        const QUEUE: &'static str = "idle";
    }
    let dead = dead_job(&pool, "sync", json!({"n": 1}), "bad n").await;
    let live = backstop::enqueue(&pool, &Idle).await.unwrap().created().unwrap();
    fail_audit_inserts(&pool).await;
    let router = console(pool.clone(), &[]);

    let edit = EditAndRetry { id: dead, payload: r#"{"n": 2}"#.into() };
    let (status, _, text) = send(&router, call("edit_and_retry", &edit)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert_eq!(live_payload(&pool, dead).await, None, "the job was retried without an audit entry");
    let payload: Value = sqlx::query_scalar("select payload from backstop.dead_jobs where id = $1")
        .bind(dead)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(payload, json!({"n": 1}), "the payload was changed without an audit entry");

    let cancel = ActOnJobs { action: JobAction::Cancel, state: State::Queued, ids: vec![live], source: None };
    let (status, _, text) = send(&router, call("act_on_jobs", &cancel)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(live_payload(&pool, live).await.is_some(), "the job was cancelled without an audit entry");
}

fn delete_dead(kind: &str, audit_id: Option<i64>, after: Option<String>) -> ActOnMatching {
    let filter = JobFilter { state: Some(State::Dead), kind: Some(kind.into()), ..JobFilter::default() };
    ActOnMatching { action: JobAction::Delete, filter, after, audit_id }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_bulk_action_continues_only_its_own_audit_entry(pool: PgPool) {
    for _ in 0..3 {
        dead_job(&pool, "import", json!({}), "bad row").await;
    }
    let router = console(pool.clone(), &["otto:o-pass:operator", "olga:o-pass:operator"]);
    let pause = SetQueuePaused { queue: "default".into(), paused: true };
    let (status, _, text) = send(&router, call_as("otto:o-pass", "set_queue_paused", &pause)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let paused: i64 = sqlx::query_scalar("select id from backstop.audit_log").fetch_one(&pool).await.unwrap();

    // A bulk delete folded into the old "pause" entry: refused, nothing deleted.
    let folded = delete_dead("import", Some(paused), None);
    let (status, _, text) = send(&router, call_as("otto:o-pass", "act_on_matching", &folded)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 3);
    let pause_row: (String, i64, i64) =
        sqlx::query_as("select action, requested, changed from backstop.audit_log where id = $1")
            .bind(paused)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pause_row, ("pause".into(), 1, 1), "the pause entry is untouched");

    // Someone else's bulk entry, still in progress, on the same filter: refused too.
    let theirs = admin::BulkAudit::start(
        &pool,
        "olga",
        "delete",
        &json!({"filter": delete_dead("import", None, None).filter}),
    )
    .await
    .unwrap();
    let borrowed = delete_dead("import", Some(theirs.id), None);
    let (status, _, text) = send(&router, call_as("otto:o-pass", "act_on_matching", &borrowed)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // Olga's own entry on another filter: refused.
    let other_filter = delete_dead("export", Some(theirs.id), None);
    let (status, _, text) = send(&router, call_as("olga:o-pass", "act_on_matching", &other_filter)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 3);

    // A new bulk action: the server creates its entry, and closes it at the last step.
    let (status, _, text) =
        send(&router, call_as("otto:o-pass", "act_on_matching", &delete_dead("import", None, None))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let step: BulkProgress = serde_json::from_str(&text).unwrap();
    assert_eq!((step.matched, step.changed, step.next), (3, 3, None));
    let entry: (String, String, i64, bool) =
        sqlx::query_as("select actor, action, changed, in_progress from backstop.audit_log where id = $1")
            .bind(step.audit_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(entry, ("otto".into(), "delete".into(), 3, false));
    let again = delete_dead("import", Some(step.audit_id), None);
    let (status, _, text) = send(&router, call_as("otto:o-pass", "act_on_matching", &again)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a finished entry cannot be continued: {text}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_bulk_step_that_fails_leaves_what_it_committed_audited(pool: PgPool) {
    sqlx::query(
        "insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts, errors,
                                         last_error, created_at, reason)
         select nextval(pg_get_serial_sequence('backstop.jobs', 'id')), 'default', 'import',
                jsonb_build_object('n', i), 0, 1, 1, '[]', 'bad row', now(), 'exhausted'
         from generate_series(1, 1500) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Newest first, pages of 1,000: the oldest job is on the second page, and cannot be deleted.
    sqlx::raw_sql(
        "create function fail_delete() returns trigger language plpgsql as
         $$ begin raise exception 'refusing to delete job %', old.id; end $$;
         create trigger fail_delete before delete on backstop.dead_jobs
         for each row when (old.payload->>'n' = '1') execute function fail_delete();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let router = console(pool.clone(), &[]);
    let (status, _, text) = send(&router, call("act_on_matching", &delete_dead("import", None, None))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs").await,
        500,
        "the first page committed"
    );
    let entry: (String, i64, i64) =
        sqlx::query_as("select action, requested, changed from backstop.audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(entry, ("delete".into(), 1000, 1000), "and is audited");
}
