//! What the benchmark binaries share.

use std::process::{Child, Command, Stdio};

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

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

/// Starts `binary serve --database-url db_url` with `args` added, quiet (errors only).
pub fn spawn_serve(binary: &str, db_url: &str, args: &[&str]) -> anyhow::Result<Child> {
    Command::new(binary)
        .args(["serve", "--database-url", db_url])
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!("start {binary} serve (build it with `cargo build --release -p backstop-server`)")
        })
}
