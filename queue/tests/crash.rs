//! A worker process killed with SIGKILL mid-job: its job runs again after the heartbeat
//! timeout. The "process" is this test binary re-run with a filter selecting the helper below.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use backstop::{Job, JobContext, JobError, Runner, Worker};
use common::{RunningRunner, count, pool, wait_for_count};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const CHILD_ENV: &str = "BACKSTOP_CRASH_TEST_DATABASE_URL";

#[derive(serde::Serialize, serde::Deserialize)]
struct Chore;
impl Job for Chore {
    const KIND: &'static str = "chore";
}

/// In the doomed child: marks the job as started, then hangs until killed.
struct Hang;
impl Worker for Hang {
    type Job = Chore;
    async fn work(&self, _: Chore, ctx: JobContext) -> Result<(), JobError> {
        sqlx::query("insert into started (job_id) values ($1)").bind(ctx.id).execute(&ctx.pool).await?;
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// In the parent, after the crash: finishes the job.
struct Finish;
impl Worker for Finish {
    type Job = Chore;
    async fn work(&self, _: Chore, _: JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

#[test]
#[ignore = "helper: the worker process that `a_killed_worker_s_job_runs_again` kills"]
fn crash_child_worker_process() {
    let url = std::env::var(CHILD_ENV).expect("run by the crash test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let runner = Runner::builder(pool)
            .worker_id("doomed-worker")
            .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
            .register(Hang)
            .build()
            .unwrap();
        runner.run(Default::default()).await.unwrap();
    });
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_killed_worker_s_job_runs_again_after_the_heartbeat_timeout(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    sqlx::query("create table started (job_id bigint)").execute(&pool).await.unwrap();
    let id = backstop::enqueue(&pool, &Chore).await.unwrap().created().unwrap();

    let db: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let url = format!("{}/{db}", base.rsplit_once('/').expect("url with a database").0);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_worker_process", "--ignored", "--nocapture"])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_count(&pool, "select count(*) from started", 1, Duration::from_secs(30)).await;
    child.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
    let locked: Option<String> = sqlx::query_scalar("select locked_by from backstop.jobs where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(locked.as_deref(), Some("doomed-worker"), "the dead process still holds the job");

    let killed_at = std::time::Instant::now();
    let runner = RunningRunner::start(
        Runner::builder(pool.clone())
            .poll_interval(Duration::from_millis(100))
            .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
            .register(Finish),
    );
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(20)).await;
    runner.stop().await;
    assert!(killed_at.elapsed() >= Duration::from_millis(1500), "taken back only after the timeout");
    let stats =
        backstop::admin::stats_since(&pool, chrono::Utc::now() - chrono::Duration::minutes(5)).await.unwrap();
    assert_eq!((stats[0].failed, stats[0].completed), (1, 1), "the crash counts as one failed attempt");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
}
