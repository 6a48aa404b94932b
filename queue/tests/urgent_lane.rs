//! The urgent lane claims work more urgent than a backlog on its own, beside the fetcher (see
//! `runtime::urgent_lane`). Its claims must never meet the fetcher's check for orphaned locks
//! halfway: a job the lane has claimed but not yet recorded as held looks orphaned, and handing
//! it back while it sits in the buffer runs it twice.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use backstop::NewJob;
use common::{Action, RunningRunner, Scripted, ScriptedWorker, pool, test_runner, wait_for_count};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn urgent_jobs_claimed_while_the_runner_checks_its_locks_run_once(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let backlog = (0..3_000).map(|i| NewJob::new(&Scripted::new(format!("backlog{i}"), Action::Succeed)));
    backstop::enqueue_many(&pool, backlog).await.unwrap();
    let worker = ScriptedWorker::default();
    // The lock check every 2 ms (it runs at the heartbeat interval), so it keeps meeting the
    // lane's claims.
    let runner = RunningRunner::start(
        test_runner(&pool)
            .queue("default", 4)
            .heartbeat(Duration::from_millis(2), Duration::from_secs(30))
            .register(worker.clone()),
    );
    // One at a time, each its own notification and so its own claim by the lane.
    for i in 0..300 {
        let urgent = NewJob::new(&Scripted::new(format!("urgent{i}"), Action::Succeed)).priority(-1);
        backstop::enqueue(&pool, urgent).await.unwrap();
    }
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(60)).await;
    runner.stop().await;

    let mut runs: HashMap<String, usize> = HashMap::new();
    for (label, _) in worker.runs() {
        *runs.entry(label).or_default() += 1;
    }
    assert_eq!(runs.len(), 3_300, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
}
