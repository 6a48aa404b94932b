//! Slack alerts for dead jobs: `--slack-webhook` configuration, the worker that delivers alert
//! jobs, and the digest. Alert jobs are ordinary Backstop jobs on queue `backstop`, enqueued in
//! the transaction that dead-letters a job (see `backstop::triage`), so they are as durable as
//! the dead letter, retried with backoff and visible in the console.

mod deliver;
mod digest;
mod health;
mod message;
mod probe;
#[cfg(test)]
mod tests;
mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use app::server::RedactKeys;
use backstop::{CronSchedule, MissedTicks, NewJob, Runner};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use deliver::{Pace, SlackAlertWorker};
pub use digest::{SlackDigest, SlackDigestWorker};
pub use health::{QueueAlertRule, QueueAlertRules, QueueHealthCheck, QueueHealthWorker};
pub use message::MessageContext;
pub use probe::{Upkeep, keep_up};
pub use webhook::{WebhookSpec, register};

#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// A Slack incoming webhook for dead-letter alerts: `[queue=Q1,Q2;][kind=K1,K2;]URL`
    /// (routes optional: only those queues' or kinds' deaths). Repeat for more webhooks; in the
    /// environment variable, separate them with spaces. Every console process on a database
    /// should be given the same list.
    #[arg(
        long = "slack-webhook",
        env = "BACKSTOP_SLACK_WEBHOOKS",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub webhooks: Vec<WebhookSpec>,
    /// The console's address as people reach it, for links in alerts
    /// (default: http:// and the --bind address).
    #[arg(long, env = "BACKSTOP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Names this deployment in every alert: prod, staging, ...
    #[arg(long, env = "BACKSTOP_ENVIRONMENT", default_value = "production")]
    pub environment: String,
    /// Minutes between digests of further deaths in groups that already alerted (1-60).
    #[arg(long, env = "BACKSTOP_SLACK_DIGEST_MINUTES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=60))]
    pub digest_minutes: u32,
    /// Queue-health alerts: `[queue=Q1,Q2;]SETTING;...` with settings `waiting=10m` (the oldest
    /// ready job waited longer), `no-workers=2m` (jobs waited that long with no live worker),
    /// `dead-spike=5x` and `dead-min=10` (deaths in ten minutes against the usual), any of them
    /// `off`; or `off` for all of them. Without `queue=` it changes the default for every
    /// queue. Repeat for more; later ones win. On by default with the values shown.
    #[arg(long = "queue-alert", env = "BACKSTOP_QUEUE_ALERTS", value_delimiter = ' ')]
    pub queue_alerts: Vec<QueueAlertRule>,
    /// Messages per second per webhook (Slack allows about one).
    #[arg(long = "slack-rate", env = "BACKSTOP_SLACK_RATE", default_value_t = 1.0)]
    pub slack_rate: f64,
}

#[cfg(test)]
impl AlertArgs {
    /// No webhooks, the defaults.
    pub fn none() -> Self {
        Self {
            webhooks: Vec::new(),
            public_url: None,
            environment: "production".into(),
            digest_minutes: 10,
            queue_alerts: Vec::new(),
            slack_rate: 1.0,
        }
    }
}

/// How many alert jobs one console runs at once: they mostly wait on Slack and its pace.
const ALERT_CONCURRENCY: usize = 4;

/// Registers the configured webhooks and, if there are any, starts the runner that delivers
/// alert jobs and enqueues digests, and keeps confirming the webhooks and checking the broken
/// ones, until `shutdown`. With none, nothing runs.
pub async fn start(
    pool: &PgPool,
    args: &AlertArgs,
    bind: SocketAddr,
    redact: RedactKeys,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<backstop::Result<()>>>> {
    let ids = register(pool, &args.webhooks).await.context("register the Slack webhooks")?;
    if ids.is_empty() {
        return Ok(None);
    }
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bind}"));
    let messages = MessageContext {
        environment: args.environment.clone(),
        public_url: public_url.trim_end_matches('/').to_owned(),
        redact,
    };
    let webhooks: HashMap<String, reqwest::Url> =
        ids.into_iter().zip(args.webhooks.iter().map(|spec| spec.url.clone())).collect();
    let pace = Pace { per_second: args.slack_rate.max(0.01), burst: 1.0 };
    let webhooks = Arc::new(webhooks);
    let rules = QueueAlertRules::new(args.queue_alerts.clone());
    let health = rules.any_on().then(|| Arc::new(rules));
    let runner =
        alert_runner(pool, Arc::clone(&webhooks), messages, pace, Some(args.digest_minutes), health)?;
    tracing::info!(webhooks = args.webhooks.len(), public_url, "Slack alerts on");
    tokio::spawn(keep_up(pool.clone(), http_client()?, webhooks, Upkeep::DEFAULT, shutdown.clone()));
    Ok(Some(tokio::spawn(runner.run(shutdown))))
}

/// The client for Slack: a short timeout, and Backstop named in the user agent.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("build the HTTP client")
}

/// The runner for queue `backstop`: alert delivery, the digest's cron and the queue-health
/// check's (every minute; `None` leaves it out).
pub fn alert_runner(
    pool: &PgPool,
    webhooks: Arc<HashMap<String, reqwest::Url>>,
    messages: MessageContext,
    pace: Pace,
    digest_minutes: Option<u32>,
    queue_health: Option<Arc<QueueAlertRules>>,
) -> anyhow::Result<Runner> {
    let client = http_client()?;
    let mut runner = Runner::builder(pool.clone())
        .queue(backstop::triage::ALERT_QUEUE, ALERT_CONCURRENCY)
        .register(SlackAlertWorker { pool: pool.clone(), client, webhooks, messages, pace });
    // The digest runs on the clock (every N minutes past the hour); `None` leaves it out, for
    // tests that count messages and ask for digests themselves.
    if let Some(minutes) = digest_minutes {
        let period = Duration::from_secs(u64::from(minutes) * 60);
        let digest = CronSchedule::new(
            backstop::triage::DIGEST_KIND,
            format!("*/{minutes} * * * *"),
            NewJob::new(&SlackDigest {}),
        )
        .missed_ticks(MissedTicks::RunOnce);
        runner = runner.register(SlackDigestWorker { pool: pool.clone(), period }).cron(digest);
    }
    if let Some(rules) = queue_health {
        let check =
            CronSchedule::new("backstop.queue_health_check", "* * * * *", NewJob::new(&QueueHealthCheck {}))
                .missed_ticks(MissedTicks::RunOnce);
        runner = runner.register(QueueHealthWorker { pool: pool.clone(), rules }).cron(check);
    }
    Ok(runner.build()?)
}

/// Installs rustls's crypto provider (ring) for the process, before any HTTPS client is built
/// (a second call does nothing).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
