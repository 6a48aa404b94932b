//! Connecting to the user's PostgreSQL, or starting a private one when none is given.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::embedded_pg::{Durability, EmbeddedPostgres};

/// A pool, and the private cluster behind it if we started one (stopped when dropped).
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    /// Held only so the private cluster lives exactly as long as the pool.
    _embedded: Option<EmbeddedPostgres>,
}

/// Connects to `url`, or with `None` starts a private cluster and connects to it.
pub async fn connect_or_start(url: Option<String>, max_connections: u32) -> anyhow::Result<Database> {
    let (url, embedded) = match url.filter(|u| !u.is_empty()) {
        Some(url) => (url, None),
        None => {
            let pg = tokio::task::spawn_blocking(|| EmbeddedPostgres::start(Durability::Durable)).await??;
            eprintln!(
                "backstop: no DATABASE_URL given: started a private PostgreSQL at {}",
                pg.url("postgres")
            );
            (pg.url("postgres"), Some(pg))
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("could not connect to PostgreSQL at {}: {e}", redact(&url)))?;
    Ok(Database { pool, _embedded: embedded })
}

/// The URL with any password masked, for messages and logs (by the console's one set of
/// redaction rules, `backstop::redact`).
pub fn redact(url: &str) -> String {
    backstop::redact::Redactor::default().text(url).into_owned()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:[redacted]@db:5432/x");
        assert_eq!(redact("postgres://app:p@ss@db/x"), "postgres://app:[redacted]@db/x");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("postgres:///x?host=/run"), "postgres:///x?host=/run");
    }
}
