//! A database crash (`pg_ctl restart -m immediate`) under running workers loses the last
//! moments of asynchronous commits; no job may be lost or left held for ever. Alone in its own
//! test binary because it crashes the shared test server (as `db_restart.rs` stops it).

mod common;

use std::time::Duration;

use backstop::NewJob;
use common::{
    Action, RunningRunner, Scripted, ScriptedWorker, count, pg_ctl, pool, test_runner, wait_for_count,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Claims and completions commit asynchronously, so a database crash loses the last moments
/// of them. A lost completion leaves its job locked by a worker that is alive and heartbeating,
/// which no rescue takes back: the worker itself must see that it holds a lock it no longer
/// knows of and hand the job back, so it runs again (at least once, as for a lost claim).
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn jobs_whose_completion_a_crash_lost_run_again_while_their_worker_lives(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    if std::env::var("BACKSTOP_PG_CTL").is_err() {
        eprintln!("SKIPPED: needs the private cluster from `backstop with-postgres`");
        return;
    }
    let options = std::env::var("BACKSTOP_PG_OPTIONS").unwrap();
    // The WAL writer now writes the tail of the log every 10 s instead of every 0.2 s: the crash
    // below surely loses the last completions instead of perhaps.
    pg_ctl(&format!("restart -m fast -w -o \"{options} -c wal_writer_delay=10s\""));
    let pool = pool(opts).await;
    // Enqueued durably (the test server runs with synchronous_commit off): only acks get lost.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("set local synchronous_commit = on").execute(&mut *tx).await.unwrap();
    let jobs = (0..300).map(|i| NewJob::new(&Scripted::new(format!("job{i}"), Action::Succeed)));
    backstop::enqueue_many(&mut *tx, jobs).await.unwrap();
    tx.commit().await.unwrap();

    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(15)).await;
    pg_ctl(&format!("restart -m immediate -w -o \"{options}\""));

    // The runner never stopped: what the crash brought back, it must find and run again.
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(20)).await;
    runner.stop().await;
    let runs = worker.runs();
    let mut labels: Vec<&str> = runs.iter().map(|(label, _)| label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), 300, "every job ran");
    assert!(runs.len() > 300, "the crash lost completions, and their jobs ran again ({} runs)", runs.len());
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
}
