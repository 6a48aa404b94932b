//! For tests: waiting on a condition with a deadline, and the real graphile-worker (npm,
//! pinned in package-lock.json) working a test database with the tasks in
//! `queue/tests/graphile-worker.mjs`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::PgPool;

/// Waits until `check` returns `Some`, failing the test after `deadline`: the helper
/// `backstop::testing` ships.
pub use backstop::testing::eventually;

/// graphile-worker running in Node; killed when dropped.
pub struct GraphileWorker(Child);

impl GraphileWorker {
    /// Starts it on `pool`'s database and waits until it has migrated its schema (to migration
    /// 20, graphile-worker 0.18.0's last).
    pub async fn start(pool: &PgPool) -> Self {
        let opts = pool.connect_options();
        let url = format!(
            "postgres://{}@{}:{}/{}",
            opts.get_username(),
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("postgres")
        );
        let worker = GraphileWorker(
            Command::new("node")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../queue/tests/graphile-worker.mjs"))
                .env("DATABASE_URL", url)
                .stdout(Stdio::null())
                .spawn()
                .expect("node runs graphile-worker (installed by ./dev test)"),
        );
        eventually("graphile-worker's schema (migration 20)", Duration::from_secs(60), || async {
            let schema = backstop::graphile::detect(pool).await.unwrap();
            schema.is_some_and(|s| s.migration.as_deref() == Some("20")).then_some(())
        })
        .await;
        worker
    }
}

impl Drop for GraphileWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
