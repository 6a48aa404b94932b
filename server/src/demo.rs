//! `backstop demo`: a live queue with a realistic workload, on a private database.
//!
//! Signups enqueue welcome emails in the same transaction as the user row; invoices enqueue
//! card charges (some cards are declined for good, some gateways time out for a while); and a
//! partner webhook fails more often than not. Retry delays are shortened (seconds, not the
//! production default of minutes) so retries and dead letters show up while you watch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backstop::{CronSchedule, Job, JobContext, JobError, NewJob, RetryPolicy, Runner, Worker};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// New signups per second.
    #[arg(long, default_value_t = 5)]
    rate: u32,
}

/// Demo retries: 1 s, 2 s, 4 s ... so the whole life of a failing job fits in a minute.
fn demo_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(8)).max_attempts(attempts)
}

#[derive(Debug, Serialize, Deserialize)]
struct SendWelcomeEmail {
    user_id: i64,
    email: String,
}

impl Job for SendWelcomeEmail {
    const KIND: &'static str = "send_welcome_email";
    const QUEUE: &'static str = "emails";
    fn retry_policy() -> RetryPolicy {
        demo_retries(5)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ChargeCard {
    invoice_id: i64,
    cents: i64,
    card: String,
}

impl Job for ChargeCard {
    const KIND: &'static str = "charge_card";
    const QUEUE: &'static str = "billing";
    fn retry_policy() -> RetryPolicy {
        demo_retries(4)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DeliverWebhook {
    endpoint: String,
    event: String,
}

impl Job for DeliverWebhook {
    const KIND: &'static str = "deliver_webhook";
    fn retry_policy() -> RetryPolicy {
        demo_retries(3)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DailyDigest {}

impl Job for DailyDigest {
    const KIND: &'static str = "daily_digest";
}

struct Mailer;
impl Worker for Mailer {
    type Job = SendWelcomeEmail;
    async fn work(&self, job: SendWelcomeEmail, ctx: JobContext) -> Result<(), JobError> {
        // Idempotent: a retried or duplicated job never sends the email twice.
        let mut tx = ctx.pool.begin().await?;
        let key = format!("welcome_email:user_{}", job.user_id);
        if backstop::claim_idempotency_key(&mut *tx, &key).await.map_err(JobError::retry)? {
            tokio::time::sleep(Duration::from_millis(rand::random_range(20..120))).await;
            sqlx::query("update demo.users set welcomed_at = now() where id = $1")
                .bind(job.user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

struct PaymentGateway;
impl Worker for PaymentGateway {
    type Job = ChargeCard;
    async fn work(&self, job: ChargeCard, ctx: JobContext) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_millis(rand::random_range(30..200))).await;
        if job.card.ends_with("0002") {
            return Err(JobError::fail_now(format!(
                "card_declined: card ending {} was declined (insufficient_funds) for invoice {}",
                &job.card[job.card.len() - 4..],
                job.invoice_id
            )));
        }
        if rand::random_bool(0.15) && ctx.attempt < 3 {
            return Err(JobError::retry("gateway timeout: no response from payments.example.com within 10s"));
        }
        Ok(())
    }
}

struct WebhookSender;
impl Worker for WebhookSender {
    type Job = DeliverWebhook;
    async fn work(&self, job: DeliverWebhook, _ctx: JobContext) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_millis(rand::random_range(10..80))).await;
        if rand::random_bool(0.55) {
            return Err(JobError::retry(format!("POST {} returned 503 Service Unavailable", job.endpoint)));
        }
        Ok(())
    }
}

struct DigestBuilder;
impl Worker for DigestBuilder {
    type Job = DailyDigest;
    async fn work(&self, _job: DailyDigest, _ctx: JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

pub async fn run(args: Args, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    backstop::MIGRATOR.run(&pool).await?;
    sqlx::raw_sql(
        "create schema if not exists demo;
         create table if not exists demo.users (id bigserial primary key, email text not null, welcomed_at timestamptz)",
    )
    .execute(&pool)
    .await?;

    let runner = Runner::builder(pool.clone())
        .register(Mailer)
        .register(PaymentGateway)
        .register(WebhookSender)
        .register(DigestBuilder)
        .queue("emails", 8)
        .queue("billing", 4)
        .queue("default", 8)
        .cron(CronSchedule::new("digest-every-10s", "*/10 * * * * *", NewJob::new(&DailyDigest {})))
        .build()?;
    println!("backstop demo: worker {} on queues emails, billing, default", runner.worker_id());
    let runner_task = tokio::spawn(runner.run(shutdown.clone()));
    let signups = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(pool.clone(), args.rate, Arc::clone(&signups), shutdown.clone()));

    let deadline = args.seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        print_progress(&pool, signups.load(Ordering::Relaxed)).await;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            shutdown.cancel();
        }
    }
    producer.await?;
    runner_task.await??;
    print_progress(&pool, signups.load(Ordering::Relaxed)).await;
    println!("backstop demo: stopped cleanly");
    Ok(())
}

/// Signups, invoices and webhooks, each enqueued in the transaction that records the cause.
async fn produce(pool: PgPool, rate: u32, signups: Arc<AtomicU64>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        n += 1;
        let result = async {
            let mut tx = pool.begin().await?;
            let email = format!("user{n}@example.com");
            let user_id: i64 = sqlx::query_scalar("insert into demo.users (email) values ($1) returning id")
                .bind(&email)
                .fetch_one(&mut *tx)
                .await?;
            let mut jobs = vec![NewJob::new(&SendWelcomeEmail { user_id, email })];
            if n.is_multiple_of(2) {
                // Every 13th invoice uses the card that is always declined.
                let card = if n.is_multiple_of(13) { "4000000000000002" } else { "4242424242424242" };
                let charge =
                    ChargeCard { invoice_id: i64::try_from(n).unwrap_or(0), cents: 1900, card: card.into() };
                jobs.push(NewJob::new(&charge));
            }
            if n.is_multiple_of(3) {
                let hook = DeliverWebhook {
                    endpoint: "https://partner.example.com/hooks".into(),
                    event: format!("user.created:{user_id}"),
                };
                jobs.push(NewJob::new(&hook));
            }
            backstop::enqueue_many(&mut *tx, jobs).await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                signups.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => eprintln!("backstop demo: enqueue failed: {e}"),
        }
    }
}

async fn print_progress(pool: &PgPool, signups: u64) {
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let Ok(stats) = backstop::admin::stats_since(pool, since).await else { return };
    let (mut done, mut failed) = (0, 0);
    let mut dead_by_kind: BTreeMap<String, i64> = BTreeMap::new();
    for row in stats {
        done += row.completed;
        failed += row.failed;
        if row.dead > 0 {
            *dead_by_kind.entry(row.kind).or_default() += row.dead;
        }
    }
    let live: (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where attempts > 0 and locked_by is null) from backstop.jobs",
    )
    .fetch_one(pool)
    .await
    .unwrap_or((-1, -1));
    let dead: i64 = dead_by_kind.values().sum();
    let dead_detail: Vec<String> = dead_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "signups {signups:>5} | live {:>3} (retrying {:>2}) | completed {done:>5} | failed attempts {failed:>4} | dead {dead:>3} {}",
        live.0,
        live.1,
        if dead_detail.is_empty() { String::new() } else { format!("({})", dead_detail.join(", ")) }
    );
}
