//! Queue-health alerts end to end: real jobs and workers make a queue fall behind, go unserved
//! or spike in dead letters; checks run as the console runs them; the recording server gets
//! each alert and each all-clear once, however many checks race.

use std::sync::Arc;
use std::time::Duration;

use backstop::{Job, JobContext, JobError, NewJob, Runner, Worker};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Semaphore;

use super::super::health::{Problem, QueueAlertRules, check_queue_health};
use super::{Harness, Received, text};

fn rules(specs: &[&str]) -> QueueAlertRules {
    QueueAlertRules::new(specs.iter().map(|s| s.parse().unwrap()).collect())
}

/// The messages about queue health (group alerts for deaths arrive too).
fn health_messages(h: &Harness) -> Vec<Received> {
    h.recorder
        .received()
        .into_iter()
        .filter(|r| {
            let text = text(r);
            text.contains("Queue ") || text.contains("queue ")
        })
        .collect()
}

async fn wait_health_messages(h: &Harness, n: usize) -> Vec<Received> {
    crate::test_support::eventually(
        &format!("{n} queue-health messages"),
        Duration::from_secs(30),
        || async {
            let messages = health_messages(h);
            (messages.len() >= n).then_some(messages)
        },
    )
    .await
}

/// A mail job that waits until the test lets it finish: a stuck worker.
#[derive(Debug, Serialize, Deserialize)]
struct SendMail {}

impl Job for SendMail {
    const KIND: &'static str = "send_mail";
    const QUEUE: &'static str = "mail";
}

struct StuckMailer(Arc<Semaphore>);

impl Worker for StuckMailer {
    type Job = SendMail;

    async fn work(&self, _: SendMail, _: JobContext) -> Result<(), JobError> {
        let _permit = self.0.acquire().await.map_err(|e| JobError::retry(e.to_string()))?;
        Ok(())
    }
}

/// Enqueues `n` jobs of `job` in `queue` that became ready `ago`.
async fn enqueue_ready_since(h: &Harness, job: NewJob, n: usize, ago: Duration) {
    let at = Utc::now() - chrono::Duration::from_std(ago).unwrap();
    let jobs = (0..n).map(|_| job.clone().run_at(at));
    backstop::enqueue_many(&h.pool, jobs).await.unwrap();
}

fn mail_runner(h: &Harness, gate: Arc<Semaphore>) -> Runner {
    Runner::builder(h.pool.clone())
        .queue("mail", 1)
        // A fixed prefetch, so the jobs it holds settle at two (one stuck, one buffered) and the
        // tests can count what waits without racing its claims.
        .prefetch(1)
        .poll_interval(Duration::from_millis(100))
        .register(StuckMailer(gate))
        .build()
        .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_queue_falling_behind_alerts_once_and_its_recovery_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let mut h = Harness::start(opts, vec![], 1).await;
    let rules = rules(&[]);
    // One stuck worker and five mails ready for twenty minutes.
    let gate = Arc::new(Semaphore::new(0));
    h.tasks.push(tokio::spawn(mail_runner(&h, Arc::clone(&gate)).run(h.shutdown.clone())));
    enqueue_ready_since(&h, NewJob::new(&SendMail {}), 5, Duration::from_secs(20 * 60)).await;
    // The runner holds the one it runs and one more buffered (prefetch 1): the rest wait.
    crate::test_support::eventually("the mailer to hold two jobs", Duration::from_secs(10), || async {
        let held = h
            .count("select count(*) from backstop.jobs where queue = 'mail' and locked_by is not null")
            .await;
        (held == 2).then_some(())
    })
    .await;
    let waiting =
        h.count("select count(*) from backstop.jobs where queue = 'mail' and locked_by is null").await;
    assert!(waiting > 0);

    let outcome = check_queue_health(&h.pool, &rules).await.unwrap();
    assert_eq!(outcome.announced, vec![("mail".to_owned(), Problem::FallingBehind)]);
    let alert = wait_health_messages(&h, 1).await.remove(0);
    assert!(text(&alert).starts_with("[test] Queue mail is falling behind"), "{}", text(&alert));
    assert!(
        text(&alert).contains("waited 20 min")
            && text(&alert).contains(&format!("{waiting} jobs wait, with 1 worker on the queue")),
        "{}",
        text(&alert)
    );
    assert_eq!(super::button_url(&alert), format!("{}/jobs?queue=mail", super::PUBLIC_URL));

    // Still behind: nothing new.
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());

    // The worker gets going and the queue drains: one all-clear.
    gate.add_permits(100);
    h.wait_count("select count(*) from backstop.jobs where queue = 'mail'", 0, Duration::from_secs(30)).await;
    let outcome = check_queue_health(&h.pool, &rules).await.unwrap();
    assert_eq!(outcome.cleared, vec![("mail".to_owned(), Problem::FallingBehind)]);
    let messages = wait_health_messages(&h, 2).await;
    assert!(
        text(&messages[1]).starts_with("[test] Resolved: queue mail is keeping up again"),
        "{}",
        text(&messages[1])
    );
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());
    h.wait_alerts_settled(Duration::from_secs(10)).await;
    assert_eq!(health_messages(&h).len(), 2);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_queue_nobody_serves_alerts_after_its_hold_and_clears_when_a_worker_comes(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let mut h = Harness::start(opts, vec![], 1).await;
    let rules = rules(&["no-workers=2m"]);
    let queue = "<b>orphans</b> & co";
    enqueue_ready_since(&h, NewJob::new(&SendMail {}).queue(queue), 3, Duration::from_secs(30)).await;

    // Seen, not yet announced: a worker restarting is not an incident.
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());
    assert_eq!(
        h.count("select count(*) from backstop.queue_health_alerts where alerted_at is null").await,
        1
    );
    // Two minutes and more later (the row is what the hold is measured from).
    sqlx::query("update backstop.queue_health_alerts set seen_at = seen_at - interval '150 seconds'")
        .execute(&h.pool)
        .await
        .unwrap();
    let outcome = check_queue_health(&h.pool, &rules).await.unwrap();
    assert_eq!(outcome.announced, vec![(queue.to_owned(), Problem::NoWorkers)]);
    let alert = wait_health_messages(&h, 1).await.remove(0);
    let all = alert.body.to_string();
    assert!(text(&alert).contains("No worker serves queue &lt;b&gt;orphans&lt;/b&gt; &amp; co"), "{all}");
    let section = alert.body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(!text(&alert).contains("<b>") && !section.contains("<b>"), "escaped in mrkdwn: {all}");
    assert!(section.contains("<!date^"), "Slack's date markup is left as markup: {section}");
    assert!(text(&alert).contains("3 jobs wait"), "{all}");
    assert!(
        super::button_url(&alert).ends_with("/jobs?queue=%3Cb%3Eorphans%3C%2Fb%3E%20%26%20co"),
        "{}",
        super::button_url(&alert)
    );

    // A worker for the queue comes and takes the jobs.
    let gate = Arc::new(Semaphore::new(100));
    let runner = Runner::builder(h.pool.clone())
        .queue(queue, 4)
        .poll_interval(Duration::from_millis(100))
        .register(StuckMailer(gate))
        .build()
        .unwrap();
    h.tasks.push(tokio::spawn(runner.run(h.shutdown.clone())));
    h.wait_count("select count(*) from backstop.jobs where queue <> 'backstop'", 0, Duration::from_secs(30))
        .await;
    let outcome = check_queue_health(&h.pool, &rules).await.unwrap();
    assert_eq!(outcome.cleared, vec![(queue.to_owned(), Problem::NoWorkers)]);
    let messages = wait_health_messages(&h, 2).await;
    assert!(text(&messages[1]).contains("is served by a worker again"), "{}", text(&messages[1]));
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_problem_gone_within_its_hold_is_never_announced(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    let rules = rules(&[]);
    enqueue_ready_since(&h, NewJob::new(&SendMail {}), 2, Duration::from_secs(5)).await;
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());
    sqlx::query("delete from backstop.jobs where queue = 'mail'").execute(&h.pool).await.unwrap();
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());
    assert_eq!(h.count("select count(*) from backstop.queue_health_alerts").await, 0);
    assert_eq!(
        h.count("select count(*) from backstop.jobs where queue = 'backstop'").await,
        0,
        "no alert job"
    );
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn dead_letters_above_the_usual_alert_and_a_trickle_does_not(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 1).await;
    let rules = rules(&["queue=billing;dead-min=5"]);
    for i in 0..4 {
        h.kill_card(&format!("card {i} declined")).await;
    }
    h.wait_count("select count(*) from backstop.dead_jobs", 4, Duration::from_secs(30)).await;
    assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default(), "4 is under dead-min");
    for i in 4..6 {
        h.kill_card(&format!("card {i} declined")).await;
    }
    h.wait_count("select count(*) from backstop.dead_jobs", 6, Duration::from_secs(30)).await;
    let outcome = check_queue_health(&h.pool, &rules).await.unwrap();
    assert_eq!(outcome.announced, vec![("billing".to_owned(), Problem::DeadSpike)]);
    let alert = wait_health_messages(&h, 1).await.remove(0);
    assert!(text(&alert).starts_with("[test] Dead letters spiking in queue billing"), "{}", text(&alert));
    assert!(text(&alert).contains("6 jobs died in the last 10 min; usually 0"), "{}", text(&alert));
    assert_eq!(super::button_url(&alert), format!("{}/dead-letters?queue=billing", super::PUBLIC_URL));
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn paused_queues_and_backstops_own_queue_never_alert(_: PgPoolOptions, opts: PgConnectOptions) {
    // No alert runner: the job in queue `backstop` waits, with nothing serving that queue.
    let h = Harness::start(opts, vec![], 0).await;
    let rules = rules(&["no-workers=1m"]);
    enqueue_ready_since(&h, NewJob::new(&SendMail {}), 3, Duration::from_secs(3_600)).await;
    backstop::admin::pause_queue(&h.pool, "mail").await.unwrap();
    sqlx::query(
        "insert into backstop.jobs (queue, kind, run_at) values ('backstop', 'someone.elses', now() - interval '1 hour')",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    for _ in 0..2 {
        sqlx::query("update backstop.queue_health_alerts set seen_at = seen_at - interval '1 hour'")
            .execute(&h.pool)
            .await
            .unwrap();
        assert_eq!(check_queue_health(&h.pool, &rules).await.unwrap(), Default::default());
    }
    assert_eq!(h.count("select count(*) from backstop.queue_health_alerts").await, 0);
    h.stop().await;
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn racing_checks_send_each_alert_and_all_clear_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let h = Harness::start(opts, vec![], 2).await;
    let rules = Arc::new(rules(&["no-workers=1m"]));
    enqueue_ready_since(&h, NewJob::new(&SendMail {}), 3, Duration::from_secs(60)).await;
    check_queue_health(&h.pool, &rules).await.unwrap();
    sqlx::query("update backstop.queue_health_alerts set seen_at = seen_at - interval '2 minutes'")
        .execute(&h.pool)
        .await
        .unwrap();
    let race = async |h: &Harness| {
        let checks: Vec<_> = (0..6)
            .map(|_| {
                let (pool, rules) = (h.pool.clone(), Arc::clone(&rules));
                tokio::spawn(async move { check_queue_health(&pool, &rules).await.unwrap() })
            })
            .collect();
        let mut announced = 0;
        let mut cleared = 0;
        for check in checks {
            let outcome = check.await.unwrap();
            announced += outcome.announced.len();
            cleared += outcome.cleared.len();
        }
        (announced, cleared)
    };
    assert_eq!(race(&h).await, (1, 0));
    sqlx::query("delete from backstop.jobs where queue = 'mail'").execute(&h.pool).await.unwrap();
    assert_eq!(race(&h).await, (0, 1));
    h.wait_alerts_settled(Duration::from_secs(30)).await;
    assert_eq!(health_messages(&h).len(), 2, "two consoles, six checks: one alert, one all-clear");
    h.stop().await;
}

/// The console's own runner checks every minute: an alert arrives with no test calling the check.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_console_checks_queue_health_every_minute(_: PgPoolOptions, opts: PgConnectOptions) {
    let rules = Arc::new(rules(&["queue=billing;dead-min=1"]));
    let h = Harness::start_with(opts, vec![], 1, Some(rules)).await;
    h.kill_card("card declined").await;
    // The next minute's tick (at most a minute away) runs the check.
    let alert =
        crate::test_support::eventually("the minute's check to alert", Duration::from_secs(90), || async {
            health_messages(&h).into_iter().next()
        })
        .await;
    assert!(text(&alert).starts_with("[test] Dead letters spiking in queue billing"), "{}", text(&alert));
    h.stop().await;
}
