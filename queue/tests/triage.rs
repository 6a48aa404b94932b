//! Error groups: dead jobs grouped by normalised error in the dead-letter transaction, and the
//! alert jobs a new, reopened or unignored group enqueues.

mod common;

use backstop::NewJob;
use backstop::admin::{self, JobSearch};
use backstop::triage::{self, GroupFilter, GroupStatus};
use common::{Action, RunningRunner, Scripted, ScriptedWorker, count, pool, test_runner, wait_for_count};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

/// Records one arrival the way the runner does, returning the alert reason it called for.
async fn arrive(pool: &PgPool, kind: &str, queue: &str, error: &str) -> (i64, Option<String>) {
    sqlx::query_as("select group_id, alert from backstop.record_error_arrival('backstop', $1, $2, $3, $4, 1)")
        .bind(kind)
        .bind(queue)
        .bind(triage::normalize_error(error))
        .bind(error)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn add_webhook(pool: &PgPool, id: &str, queues: Option<&[&str]>) {
    sqlx::query("insert into backstop.alert_webhooks (id, label, queues) values ($1, $1, $2)")
        .bind(id)
        .bind(queues.map(|q| q.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        .execute(pool)
        .await
        .unwrap();
}

/// The alert jobs waiting, as (webhook, reason).
async fn alerts(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "select payload->>'webhook', payload->>'reason' from backstop.jobs
         where kind = 'backstop.slack_alert' order by id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn dead_jobs_join_one_group_per_normalised_error(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let mut jobs: Vec<NewJob> = Vec::new();
    for order in [10001, 10002, 10003] {
        // "order 10001 failed on attempt 3": the same error once the order number is masked.
        jobs.push(NewJob::new(&Scripted::new(format!("order {order}"), Action::FailAlways)));
    }
    for i in 0..5 {
        jobs.push(NewJob::new(&Scripted::new(format!("now {i}"), Action::FailNow)));
    }
    jobs.push(NewJob::new(&Scripted::new("cancelled", Action::Cancel)));
    backstop::enqueue_many(&pool, jobs).await.unwrap();

    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 9, Duration::from_secs(30)).await;
    runner.stop().await;

    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    let mut summary: Vec<(String, i64)> = groups.iter().map(|g| (g.message.clone(), g.total)).collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![("cannot ever work".to_owned(), 5), ("order <n> failed on attempt 3".to_owned(), 3)]
    );
    assert!(groups.iter().all(|g| g.kind == "scripted" && g.source == "backstop"));
    assert!(groups.iter().all(|g| g.status(chrono::Utc::now()) == GroupStatus::New));
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs where group_id is null").await,
        1,
        "a cancellation is not a failure and joins no group"
    );
    let arrivals: i64 = sqlx::query_scalar("select sum(arrivals)::bigint from backstop.error_group_arrivals")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(arrivals, 8);

    // The group filter lists exactly a group's dead jobs.
    let orders = groups.iter().find(|g| g.total == 3).unwrap();
    let search = JobSearch { group: Some(orders.id), ..JobSearch::default() };
    let listed = admin::search_dead_jobs(&pool, &search, false, None, 100).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|d| d.group_id == Some(orders.id)
                && d.payload["label"].as_str().unwrap().starts_with("order "))
    );
    assert_eq!(admin::count_dead_jobs(&pool, &search, false, 1000).await.unwrap(), 3);
    assert!(
        admin::search_jobs(&pool, None, &search, None, 100).await.unwrap().is_empty(),
        "live jobs have no group"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_group_alerts_when_new_reopened_or_unignored_and_folds_the_rest(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    add_webhook(&pool, "all", None).await;
    add_webhook(&pool, "billing-only", Some(&["billing"])).await;
    // No running console has confirmed this one for ten minutes: it gets nothing.
    add_webhook(&pool, "stale", None).await;
    sqlx::query(
        "update backstop.alert_webhooks set configured_at = now() - interval '10 minutes' where id = 'stale'",
    )
    .execute(&pool)
    .await
    .unwrap();

    let (group, alert) =
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 10:00:00").await;
    assert_eq!(alert.as_deref(), Some("new"));
    assert_eq!(alerts(&pool).await, vec![("all".into(), "new".into())], "routed by queue: not billing-only");
    assert_eq!(
        count(
            &pool,
            "select count(*) from backstop.jobs where kind = 'backstop.slack_alert' and queue = 'backstop'"
        )
        .await,
        1
    );

    let (same, alert) =
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 10:05:00").await;
    assert_eq!((same, alert), (group, None), "a known group is folded into the digest");
    assert_eq!(alerts(&pool).await.len(), 1);

    assert!(triage::resolve_group(&pool, group).await.unwrap());
    let (_, alert) =
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 11:00:00").await;
    assert_eq!(alert.as_deref(), Some("reopened"));
    let reopened = triage::error_group(&pool, group).await.unwrap().unwrap();
    assert_eq!((reopened.status.as_str(), reopened.total), ("open", 3));

    // Ignored until two more arrive: the first stays quiet, the second ends the ignore.
    assert!(triage::ignore_group(&pool, group, None, Some(2)).await.unwrap());
    assert_eq!(
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 12:00:00").await.1,
        None
    );
    assert_eq!(
        triage::error_group(&pool, group).await.unwrap().unwrap().status(chrono::Utc::now()),
        GroupStatus::Ignored
    );
    assert_eq!(
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 13:00:00")
            .await
            .1
            .as_deref(),
        Some("unignored")
    );
    // Ignored for a time that has passed: the next arrival alerts.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert!(triage::ignore_group(&pool, group, Some(past), None).await.unwrap());
    assert_eq!(
        arrive(&pool, "send_email", "emails", "smtp: 421 try again at 2026-11-25 14:00:00")
            .await
            .1
            .as_deref(),
        Some("unignored")
    );

    // A billing failure goes to both webhooks.
    arrive(&pool, "charge_card", "billing", "card 4242 declined").await;
    let reasons: Vec<(String, String)> = alerts(&pool).await;
    assert_eq!(reasons.iter().filter(|(_, r)| r == "new").count(), 3);
    assert_eq!(reasons.iter().filter(|(w, _)| w == "billing-only").count(), 1);

    // An alert job that dies is grouped (and shown) but never alerts about itself.
    let before = alerts(&pool).await.len();
    let (_, alert) = arrive(&pool, "backstop.slack_alert", "backstop", "slack answered 500").await;
    assert_eq!(alert.as_deref(), Some("new"), "its group is new...");
    assert_eq!(alerts(&pool).await.len(), before, "...but no alert job is enqueued for it");

    // A broken webhook gets no more alerts.
    sqlx::query("update backstop.alert_webhooks set broken_at = now(), broken_reason = '410 Gone'")
        .execute(&pool)
        .await
        .unwrap();
    arrive(&pool, "another", "default", "brand new error").await;
    assert_eq!(alerts(&pool).await.len(), before);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn concurrent_first_arrivals_make_one_group_and_one_alert(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    add_webhook(&pool, "all", None).await;
    let arrivals = (0..20).map(|i| {
        let pool = pool.clone();
        async move {
            arrive(&pool, "sync_crm", "default", &format!("crm said 502 for contact {}", 100_000 + i)).await
        }
    });
    let results = futures::future::join_all(arrivals).await;
    assert!(results.iter().all(|(group, _)| *group == results[0].0));
    assert_eq!(results.iter().filter(|(_, alert)| alert.as_deref() == Some("new")).count(), 1);
    assert_eq!(alerts(&pool).await.len(), 1);
    let group = triage::error_group(&pool, results[0].0).await.unwrap().unwrap();
    assert_eq!(group.total, 20);
}
