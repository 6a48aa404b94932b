//! What the benchmark binaries share.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;

/// A freshly created database beside `DATABASE_URL`'s, with Backstop's migrations applied.
#[derive(Debug)]
pub struct BenchDatabase {
    /// `DATABASE_URL`'s database (for server-wide reads such as the version).
    pub admin: PgPool,
    /// The new database's URL (for the processes a benchmark starts).
    pub url: String,
    /// A pool on the new database.
    pub pool: PgPool,
}

/// Drops and creates database `name` next to `DATABASE_URL`'s (which `./dev <command>` sets),
/// and migrates it.
pub async fn fresh_database(
    name: &str,
    command: &str,
    max_connections: u32,
) -> anyhow::Result<BenchDatabase> {
    let url = std::env::var("DATABASE_URL")
        .with_context(|| format!("DATABASE_URL must be set (run through `./dev {command}`)"))?;
    let admin = PgPool::connect(&url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists {name} with (force)")))
        .execute(&admin)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}"))).execute(&admin).await?;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let pool = PgPoolOptions::new().max_connections(max_connections).connect(&url).await?;
    backstop::MIGRATOR.run(&pool).await?;
    Ok(BenchDatabase { admin, url, pool })
}

/// Database `name` next to `DATABASE_URL`'s as an earlier run left it (not migrated, not
/// seeded): `DATABASE_URL`'s pool, the database's URL and a pool on it.
pub async fn existing_database(
    name: &str,
    command: &str,
    max_connections: u32,
) -> anyhow::Result<(PgPool, String, PgPool)> {
    let url = std::env::var("DATABASE_URL")
        .with_context(|| format!("DATABASE_URL must be set (run through `./dev {command}`)"))?;
    let admin = PgPool::connect(&url).await?;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&url)
        .await
        .with_context(|| format!("database {name} (seeded by an earlier run?)"))?;
    Ok((admin, url, pool))
}

/// The `backstop serve` command [`spawn_serve`] runs, for callers that want its output
/// elsewhere (a log file, say).
pub fn serve_command(binary: &str, db_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--database-url", db_url])
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null());
    command
}

/// Starts `binary serve --database-url db_url` with `args` added, quiet (errors only).
pub fn spawn_serve(binary: &str, db_url: &str, args: &[&str]) -> anyhow::Result<Child> {
    serve_command(binary, db_url, args).spawn().with_context(|| {
        format!("start {binary} serve (build it with `cargo build --release -p backstop-server`)")
    })
}

/// The path Slack's stand-in answers on (a webhook URL's shape).
const SLACK_PATH: &str = "/services/T0/B0/bench";

/// A stand-in for Slack: an HTTP server on a free loopback port that answers `ok` to every POST
/// to its webhook, and passes on each request's arrival time and body, in order. Returns the
/// webhook's URL (for `--slack-webhook`) and the arrivals.
pub async fn slack_stand_in() -> anyhow::Result<(String, mpsc::UnboundedReceiver<(DateTime<Utc>, String)>)> {
    let (arrivals, received) = mpsc::unbounded_channel::<(DateTime<Utc>, String)>();
    let slack = axum::Router::new().route(
        SLACK_PATH,
        axum::routing::post(move |body: String| {
            let arrivals = arrivals.clone();
            async move {
                let _ = arrivals.send((Utc::now(), body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let webhook = format!("http://{}{SLACK_PATH}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, slack).await });
    Ok((webhook, received))
}

/// Waits until a console has registered its webhook (it is serving alerts from then on).
pub async fn wait_for_webhook(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let count: i64 =
            sqlx::query_scalar("select count(*) from backstop.alert_webhooks").fetch_one(pool).await?;
        if count > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the console did not register its webhook within 60 s")
}

/// A `backstop serve` process, killed when dropped.
#[derive(Debug)]
pub struct Console(pub Child);

impl Console {
    /// Starts `backstop serve` with `webhook` as its Slack webhook, naming the environment
    /// `environment` in every alert, its errors to `stderr`.
    pub fn start(
        binary: &str,
        db_url: &str,
        webhook: &str,
        environment: &str,
        stderr: Stdio,
    ) -> anyhow::Result<Console> {
        let args = ["--bind", "127.0.0.1:0", "--slack-webhook", webhook, "--environment", environment];
        let child = serve_command(binary, db_url, &args).stderr(stderr).spawn().with_context(|| {
            format!("start {binary} serve (build it with `cargo build --release -p backstop-server`)")
        })?;
        Ok(Console(child))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
