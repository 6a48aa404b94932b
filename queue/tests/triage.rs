//! Error groups: dead jobs grouped by their learned error template in the dead-letter
//! transaction, merges when a template widens, and the alert jobs a new, reopened or unignored
//! group enqueues.

mod common;

use backstop::NewJob;
use backstop::admin::{self, JobSearch};
use backstop::triage::{self, GroupFilter, GroupStatus};
use common::{Action, RunningRunner, Scripted, ScriptedWorker, count, pool, test_runner, wait_for_count};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

/// Records one arrival the way the runner does (learning templates), returning the group and
/// the alert reason it called for.
async fn arrive(pool: &PgPool, kind: &str, queue: &str, error: &str) -> (i64, Option<String>) {
    let mut tx = pool.begin().await.unwrap();
    let arrival = triage::record_arrival(&mut tx, "backstop", kind, queue, error, 1).await.unwrap();
    tx.commit().await.unwrap();
    (arrival.group_id, arrival.alert)
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

/// The alert contract reaches SQL from its one owner (`triage::alerts`): the alert job the
/// dead-letter transaction enqueues carries exactly its kind, queue and attempts, a webhook
/// just inside its routing window gets it and one just outside does not, and the queue's
/// workers are woken on the channel the runtime listens to.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_alert_job_carries_the_contract_of_triage_alerts(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let window = triage::ALERT_ROUTING_WINDOW_SECS as f64;
    add_webhook(&pool, "inside", None).await;
    add_webhook(&pool, "outside", None).await;
    sqlx::query(
        "update backstop.alert_webhooks
         set configured_at = now() - make_interval(secs => $1 + case id when 'inside' then -60 else 60 end)",
    )
    .bind(window)
    .execute(&pool)
    .await
    .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
    listener.listen("backstop_jobs").await.unwrap();

    let (_, alert) = arrive(&pool, "send_email", "emails", "smtp: 421 try again").await;
    assert_eq!(alert.as_deref(), Some("new"));
    let jobs: Vec<(String, String, i32, String)> =
        sqlx::query_as("select kind, queue, max_attempts, payload->>'webhook' from backstop.jobs")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![(
            triage::ALERT_KIND.to_owned(),
            triage::ALERT_QUEUE.to_owned(),
            triage::ALERT_MAX_ATTEMPTS,
            "inside".to_owned()
        )]
    );
    let woken = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
    assert_eq!(woken.payload(), triage::ALERT_QUEUE);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_group_alerts_when_new_reopened_or_unignored_and_folds_the_rest(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    add_webhook(&pool, "all", None).await;
    add_webhook(&pool, "billing-only", Some(&["billing"])).await;
    // No console has had this one for over a week: it is retired and gets nothing.
    add_webhook(&pool, "stale", None).await;
    sqlx::query(
        "update backstop.alert_webhooks set configured_at = now() - interval '8 days' where id = 'stale'",
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

/// The live groups' messages (templates as people read them), sorted.
async fn group_messages(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select message from backstop.error_groups where merged_into is null order by message")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_demo_workload_makes_two_groups(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // The demo's two failures, as its workers word them (server/src/demo.rs).
    for invoice in [26, 52, 78, 104, 130, 156, 182] {
        let error = format!(
            "card_declined: card ending 0002 was declined (insufficient_funds) for invoice {invoice}"
        );
        arrive(&pool, "charge_card", "payments", &error).await;
        arrive(
            &pool,
            "deliver_webhook",
            "webhooks",
            "POST https://partner.example.com/hooks returned 503 Service Unavailable",
        )
        .await;
    }
    assert_eq!(
        group_messages(&pool).await,
        [
            "POST https://partner.example.com/<path> returned 503 Service Unavailable",
            "card_declined: card ending 0002 was declined (insufficient_funds) for invoice <*>",
        ]
    );
    assert_eq!(count(&pool, "select count(*) from backstop.error_groups where merged_into is null").await, 2);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn different_constraint_names_stay_apart(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let violation = |constraint: &str, key: &str| {
        format!(
            "error returned from database: duplicate key value violates unique constraint \"{constraint}\"\nDETAIL: Key {key} already exists."
        )
    };
    for i in 0..5 {
        arrive(
            &pool,
            "signup",
            "default",
            &violation("users_email_key", &format!("(email)=(user{i}@example.com)")),
        )
        .await;
        arrive(&pool, "signup", "default", &violation("orders_pkey", &format!("(id)=({})", 100 + i))).await;
        arrive(
            &pool,
            "signup",
            "default",
            &violation("users_username_key", &format!("(username)=(name{i})")),
        )
        .await;
    }
    let messages = group_messages(&pool).await;
    assert_eq!(messages.len(), 3, "{messages:#?}");
    for constraint in ["users_email_key", "orders_pkey", "users_username_key"] {
        assert!(
            messages.iter().any(|m| m.contains(constraint)),
            "{constraint} lost its group: {messages:#?}"
        );
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_merge_keeps_the_old_link_and_enqueues_no_alert(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    add_webhook(&pool, "hook", None).await;
    // 503 twice: a status code seen twice names the problem, so 502 starts a group of its own...
    let (older, alert) = arrive(&pool, "sync", "default", "partner answered 503").await;
    assert_eq!(alert.as_deref(), Some("new"));
    arrive(&pool, "sync", "default", "partner answered 503").await;
    let (younger, _) = arrive(&pool, "sync", "default", "partner answered 502").await;
    assert_ne!(older, younger);
    triage::ignore_group(&pool, older, Some(chrono::Utc::now() + chrono::Duration::days(7)), None)
        .await
        .unwrap();
    let alerts_before = alerts(&pool).await.len();

    // ... until 504 shows the code varies at this place: `partner answered <*>` covers both, and
    // the younger group merges into the older, which keeps its id and its status.
    let (joined, alert) = arrive(&pool, "sync", "default", "partner answered 504").await;
    assert_eq!(joined, older);
    assert_eq!(alert, None, "joining through a merge alerts nothing");
    assert_eq!(alerts(&pool).await.len(), alerts_before, "a merge enqueues no alert");
    let group = triage::error_group(&pool, younger).await.unwrap().expect("the old id still answers");
    assert_eq!(group.id, older);
    assert_eq!(group.message, "partner answered <*>");
    assert_eq!(group.total, 4);
    assert_eq!(group.status, "ignored", "the survivor keeps its status");
    let listed = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(listed.iter().map(|g| g.id).collect::<Vec<_>>(), [older]);
    assert_eq!(
        count(
            &pool,
            &format!(
                "select sum(arrivals)::bigint from backstop.error_group_arrivals where group_id = {older}"
            )
        )
        .await,
        4
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn dead_jobs_of_a_merged_group_follow_it(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let mut jobs: Vec<NewJob> = Vec::new();
    for message in ["sync alice stopped", "sync bob stopped", "sync carol stopped", "sync dave stopped"] {
        jobs.push(NewJob::new(&Scripted::new(message, Action::FailNow)));
    }
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    let runner = RunningRunner::start(test_runner(&pool).register(ScriptedWorker::default()));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 4, Duration::from_secs(30)).await;
    runner.stop().await;
    // Three different names, each seen once: a variable. One group holds all four dead jobs.
    assert_eq!(group_messages(&pool).await.len(), 1);
    assert_eq!(
        count(&pool, "select count(distinct group_id) from backstop.dead_jobs where group_id is not null")
            .await,
        1
    );
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs d join backstop.error_groups g on g.id = d.group_id where g.merged_into is null").await,
        4
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_storm_of_ten_thousand_deaths_is_one_group_and_one_alert(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    add_webhook(&pool, "hook", None).await;
    // Four connections at once, as several workers would dead-letter.
    let tasks: Vec<_> = (0..4)
        .map(|worker| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in (worker..10_000).step_by(4) {
                    arrive(
                        &pool,
                        "sync_crm",
                        "default",
                        &format!("contact {i} rejected by CRM: 422 Unprocessable Entity"),
                    )
                    .await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1, "{:#?}", groups.iter().map(|g| &g.message).collect::<Vec<_>>());
    assert_eq!(groups[0].total, 10_000);
    assert_eq!(alerts(&pool).await, [("hook".to_owned(), "new".to_owned())]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn three_processes_learning_at_once_agree(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts.clone()).await;
    let messages: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            0 => format!("invoice {i} declined: insufficient_funds"),
            1 => format!("webhook to hooks.partner.example returned 503 after {i} ms"),
            // A name made of letters only, a different one each time.
            _ => format!(
                "no such user {}",
                i.to_string().chars().map(|d| (b'a' + d as u8 - b'0') as char).collect::<String>()
            ),
        })
        .collect();
    // Three pools, as three processes: each dead-letters every third message, all at once.
    let tasks: Vec<_> = (0..3)
        .map(|process| {
            let opts = opts.clone();
            let messages = messages.clone();
            tokio::spawn(async move {
                let pool = PgPoolOptions::new().max_connections(2).connect_with(opts).await.unwrap();
                for message in messages.iter().skip(process).step_by(3) {
                    arrive(&pool, "work", "default", message).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut expected = triage::Grouper::default();
    for message in &messages {
        expected.learn(message);
    }
    let mut expected: Vec<String> = expected.templates().map(|(_, t)| t.render()).collect();
    expected.sort();
    assert_eq!(group_messages(&pool).await, expected);
    assert_eq!(
        count(&pool, "select sum(total)::bigint from backstop.error_groups where merged_into is null").await,
        300
    );
}

/// A group as Backstop 0.1 made it: a normalised message, no template.
async fn old_style_group(pool: &PgPool, kind: &str, message: &str, sample: &str, status: &str) -> i64 {
    sqlx::query_scalar(
        "insert into backstop.error_groups (fingerprint, source, kind, queue, message, sample_error, sample_job_id, status, total)
         values (md5($1 || $2), 'backstop', $1, 'default', $2, $3, 1, $4, 3)
         returning id",
    )
    .bind(kind)
    .bind(message)
    .bind(sample)
    .bind(status)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn regroup_gives_old_groups_templates_keeps_statuses_and_is_idempotent(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let email = old_style_group(
        &pool,
        "signup",
        r#"duplicate key value violates unique constraint "<str>""#,
        r#"duplicate key value violates unique constraint "users_email_key""#,
        "resolved",
    )
    .await;
    let invoices =
        old_style_group(&pool, "charge", "invoice <n> declined", "invoice 26 declined", "ignored").await;
    // A group learned after the upgrade, for the same problem as the old invoice group.
    let (learned, _) = arrive(&pool, "charge", "default", "invoice 52 declined").await;
    assert!(learned > invoices);

    let mut reports = Vec::new();
    let done = triage::regroup(&pool, 1, |so_far| reports.push(so_far)).await.unwrap();
    assert_eq!((done.given_a_template, done.merged, done.remaining), (1, 1, 0));
    assert!(reports.len() >= 2, "progress after each batch: {reports:?}");

    let email_group = triage::error_group(&pool, email).await.unwrap().unwrap();
    assert_eq!(email_group.message, r#"duplicate key value violates unique constraint "users_email_key""#);
    assert_eq!(email_group.status, "resolved", "statuses survive");
    let merged = triage::error_group(&pool, learned).await.unwrap().unwrap();
    assert_eq!(merged.id, invoices, "the older group survives; the newer id redirects");
    assert_eq!((merged.status.as_str(), merged.total), ("ignored", 4));
    assert_eq!(merged.message, "invoice <*> declined");

    // Again: nothing left to do, nothing changes.
    let again = triage::regroup(&pool, 1, |_| {}).await.unwrap();
    assert_eq!((again.given_a_template, again.merged, again.remaining), (0, 0, 0));
    // And new arrivals find the regrouped templates.
    assert_eq!(arrive(&pool, "charge", "default", "invoice 999 declined").await.0, invoices);
    let (joined, _) = arrive(
        &pool,
        "signup",
        "default",
        r#"duplicate key value violates unique constraint "users_email_key""#,
    )
    .await;
    assert_eq!(joined, email);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_death_while_no_console_runs_still_enqueues_its_alert_with_its_time(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    add_webhook(&pool, "hook", None).await;
    // The last console with this webhook stopped an hour ago (a long redeploy, an outage).
    sqlx::query("update backstop.alert_webhooks set configured_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    arrive(&pool, "charge", "default", "gateway refused the charge").await;
    assert_eq!(alerts(&pool).await, [("hook".to_owned(), "new".to_owned())], "waits for a console");
    let at: Option<String> =
        sqlx::query_scalar("select payload->>'at' from backstop.jobs where kind = 'backstop.slack_alert'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(at.is_some(), "the alert carries the time of the death");

    // One that no console has had for over a week is retired: nothing waits for it.
    sqlx::query("update backstop.alert_webhooks set configured_at = now() - interval '8 days'")
        .execute(&pool)
        .await
        .unwrap();
    arrive(&pool, "charge", "default", "another problem entirely, not like the first").await;
    assert_eq!(alerts(&pool).await.len(), 1);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_operator_merge_keeps_the_older_group_and_sends_later_failures_there(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    add_webhook(&pool, "hook", None).await;
    // One problem worded two ways (different lengths: the grouper cannot know).
    let (older, _) = arrive(&pool, "mail", "default", "550 5.1.1 user unknown").await;
    let (newer, _) = arrive(&pool, "mail", "default", "550 5.1.1 no such user here").await;
    let (other_kind, _) = arrive(&pool, "sms", "default", "550 5.1.1 user unknown").await;
    assert_ne!(older, newer);

    let mut tx = pool.begin().await.unwrap();
    assert!(triage::merge_groups(&mut tx, newer, newer).await.is_err(), "not with itself");
    assert!(triage::merge_groups(&mut tx, older, other_kind).await.is_err(), "not across kinds");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(triage::merge_groups(&mut tx, newer, older).await.unwrap(), older);
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(triage::merge_groups(&mut tx, older, newer).await.is_err(), "merged already");
    tx.rollback().await.unwrap();

    let alerts_before = alerts(&pool).await.len();
    // The merged group's shape now lands in the older group, without a new-group alert.
    let (joined, alert) = arrive(&pool, "mail", "default", "550 5.1.1 no such user here").await;
    assert_eq!((joined, alert), (older, None));
    assert_eq!(alerts(&pool).await.len(), alerts_before);
    let group = triage::error_group(&pool, newer).await.unwrap().unwrap();
    assert_eq!((group.id, group.total), (older, 3));
}

/// Dead-letters one job per message, in order, through the runner's own failure path.
async fn dead_jobs(pool: &PgPool, messages: &[String]) {
    for message in messages {
        backstop::enqueue(pool, &Scripted::new(message.clone(), Action::FailNow)).await.unwrap();
        let claimed = backstop::testing::claim(pool, "default", "splitter", 1).await.unwrap();
        let failed =
            backstop::testing::fail(pool, claimed[0], "splitter", backstop::JobError::fail_now(message))
                .await
                .unwrap();
        assert!(matches!(failed, backstop::testing::Failed::Dead(_)));
    }
}

fn messages(template: &str, values: &[&str]) -> Vec<String> {
    values.iter().map(|value| template.replace("{}", value)).collect()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_operator_split_makes_one_group_per_value_and_they_stay_apart(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    add_webhook(&pool, "hook", None).await;
    // Three different buckets, each seen once, make the bucket a wildcard: one group of six.
    dead_jobs(
        &pool,
        &messages(
            "upload to {} refused",
            &["bucket-a", "bucket-a", "bucket-a", "bucket-b", "bucket-c", "bucket-d"],
        ),
    )
    .await;
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1);
    let (group, kind) = (groups[0].id, groups[0].kind.clone());
    assert_eq!(groups[0].message, "upload to <*> refused");
    triage::ignore_group(&pool, group, Some(chrono::Utc::now() + chrono::Duration::days(1)), None)
        .await
        .unwrap();
    let alerts_before = alerts(&pool).await.len();

    // The operator knows each bucket is its own misconfiguration.
    let mut tx = pool.begin().await.unwrap();
    assert!(triage::split_group(&mut tx, group, 1).await.is_err(), "it has one wildcard only");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let split = triage::split_group(&mut tx, group, 0).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((split.kept.id, split.kept.value.as_str(), split.kept.jobs), (group, "bucket-a", 3));
    let others: Vec<(&str, usize)> = split.others.iter().map(|g| (g.value.as_str(), g.jobs)).collect();
    assert_eq!(others, [("bucket-b", 1), ("bucket-c", 1), ("bucket-d", 1)]);
    assert_eq!(alerts(&pool).await.len(), alerts_before, "a split alerts nothing");

    let mut listed = group_messages(&pool).await;
    listed.sort();
    assert_eq!(listed, messages("upload to {} refused", &["bucket-a", "bucket-b", "bucket-c", "bucket-d"]));
    for g in std::iter::once(&split.kept).chain(&split.others) {
        let row = triage::error_group(&pool, g.id).await.unwrap().unwrap();
        assert_eq!((row.total, row.status.as_str()), (g.jobs as i64, "ignored"), "group {}", g.id);
        let dead =
            count(&pool, &format!("select count(*) from backstop.dead_jobs where group_id = {}", g.id)).await;
        let arrivals = count(
            &pool,
            &format!(
                "select sum(arrivals)::bigint from backstop.error_group_arrivals where group_id = {}",
                g.id
            ),
        )
        .await;
        assert_eq!((dead, arrivals), (g.jobs as i64, g.jobs as i64), "group {}", g.id);
    }

    // Later failures go to their bucket's group; a new bucket is a new problem (and alerts),
    // and new buckets, however many, never widen into a wildcard again.
    let b = split.others[0].id;
    assert_eq!(arrive(&pool, &kind, "default", "upload to bucket-b refused").await, (b, None));
    let (e, alert) = arrive(&pool, &kind, "default", "upload to bucket-e refused").await;
    assert_eq!(alert.as_deref(), Some("new"));
    for bucket in ["bucket-f", "bucket-g", "bucket-h"] {
        let (id, _) = arrive(&pool, &kind, "default", &format!("upload to {bucket} refused")).await;
        assert!(id > e, "{bucket} starts its own group");
    }
    assert_eq!(group_messages(&pool).await.len(), 8);
    assert!(group_messages(&pool).await.iter().all(|m| !m.contains("<*>")));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_split_by_a_place_with_too_many_values_is_refused_and_changes_nothing(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let names: Vec<String> = (0..=triage::MAX_SPLIT_VALUES)
        .map(|i| format!("user{}x", char::from(b'a' + (i % 26) as u8).to_string().repeat(i / 26 + 1)))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    dead_jobs(&pool, &messages("no such user {} here", &names)).await;
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1, "{:?}", group_messages(&pool).await);
    let mut tx = pool.begin().await.unwrap();
    let refused = triage::split_group(&mut tx, groups[0].id, 0).await.unwrap_err();
    tx.rollback().await.unwrap();
    assert!(refused.to_string().contains("is a variable"), "{refused}");
    assert_eq!(group_messages(&pool).await, ["no such user <*> here"]);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_failure_waiting_for_the_bucket_sees_what_the_holder_learned(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    arrive(&pool, "lookup", "default", "no such user alice").await;
    arrive(&pool, "lookup", "default", "no such user bob").await;
    // One process learns the wildcard (carol is the third name) and holds the bucket...
    let mut holder = pool.begin().await.unwrap();
    let learned =
        triage::record_arrival(&mut holder, "backstop", "lookup", "default", "no such user carol", 3)
            .await
            .unwrap();
    assert_eq!(learned.merged.len(), 1);
    // ... while another's failure waits for it.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { arrive(&pool, "lookup", "default", "no such user dave").await })
    };
    common::wait_for("the second failure to wait for the bucket", Duration::from_secs(10), || async {
        (count(&pool, "select count(*) from pg_locks where locktype = 'advisory' and not granted").await > 0)
            .then_some(())
    })
    .await;
    holder.commit().await.unwrap();
    // It must meet the wildcard its holder committed, not the two names it saw before waiting
    // (which would merge bob's group a second time and count its arrivals twice).
    let (group, alert) = waiter.await.unwrap();
    assert_eq!((group, alert), (learned.group_id, None));
    let groups = triage::error_groups(&pool, &GroupFilter::default()).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].message.as_str(), groups[0].total), ("no such user <*>", 4));
}
