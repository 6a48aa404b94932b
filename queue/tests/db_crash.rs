//! A database crash under running workers loses the last moments of asynchronous commits; no
//! job may be lost or left held for ever. Alone in its own test binary because it crashes the
//! shared test server (as `db_restart.rs` stops it).

mod common;

use std::time::Duration;

use backstop::NewJob;
use common::{
    Action, RunningRunner, Scripted, ScriptedWorker, count, pg_ctl, pool, test_runner, wait_for,
    wait_for_count,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const JOBS: usize = 50;
const WORKER_ID: &str = "db-crash-test";

/// Claims and completions commit asynchronously, so a database crash loses the last moments
/// of them. A lost completion leaves its job locked by a worker that is alive and heartbeating,
/// which no rescue takes back: the worker itself must see that it holds a lock it no longer
/// knows of and hand the job back, so it runs again (at least once, as for a lost claim).
///
/// The test decides what the crash loses instead of hoping for it: the claims are made
/// durable while the jobs run, and the WAL writer is stopped before they complete, so no
/// completion reaches the log on disk before the crash. (Left running, the WAL writer may
/// write the last page between the completions and the crash, and then nothing is lost.)
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
    // Nothing else may write the log while the WAL writer is stopped: not autovacuum (its ring
    // buffer flushes the log before it writes a page), not the background writer.
    pg_ctl(&format!("restart -m fast -w -o \"{options} -c autovacuum=off -c bgwriter_lru_maxpages=0\""));
    let pool = pool(opts).await;
    let jobs = (0..JOBS).map(|i| NewJob::new(&Scripted::new(format!("job{i}"), Action::WaitForGate)));
    backstop::enqueue_many(&pool, jobs).await.unwrap();
    // A lock the runner does not know of from the start (its worker id is fixed, as after a
    // restart): its lock check hands that back too.
    let lost = backstop::enqueue(&pool, NewJob::new(&Scripted::new("lost before start", Action::Succeed)))
        .await
        .unwrap()
        .created()
        .unwrap();
    sqlx::query("update backstop.jobs set locked_by = $1, locked_at = now(), attempts = 1 where id = $2")
        .bind(WORKER_ID)
        .bind(lost)
        .execute(&pool)
        .await
        .unwrap();

    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(
        test_runner(&pool).worker_id(WORKER_ID).queue("default", JOBS + 1).register(worker.clone()),
    );
    wait_for("the lock lost before the start to be handed back and run", Duration::from_secs(15), || async {
        worker.runs().iter().any(|(label, _)| label == "lost before start").then_some(())
    })
    .await;
    // Its row gone, the locks left are the gate jobs' claims.
    let claimed = "select count(*) from backstop.jobs where locked_by is not null";
    wait_for_count(&pool, claimed, JOBS as i64, Duration::from_secs(15)).await;
    flush_log(&pool).await; // every claim is on disk
    let wal_writer = wal_writer_pid(&pool).await;
    let _stopped = StoppedProcess::stop(wal_writer);
    worker.open_gate();
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(15)).await;

    // The crash: a server process dies, so the postmaster ends every other one, discards shared
    // memory (the completions' log records with it) and recovers from the log on disk.
    signal(wal_writer, "KILL");
    // Recovered once a new WAL writer runs. (A query alone could still reach the old server
    // before the postmaster has noticed the death.)
    wait_for("the server to recover with a new WAL writer", Duration::from_secs(30), || async {
        let pid = sqlx::query_scalar::<_, i32>(WAL_WRITER_PID).fetch_optional(&pool).await;
        pid.ok().flatten().filter(|&pid| pid != wal_writer)
    })
    .await;

    // The runner never stopped: the jobs are back, locked by it, and it must run them again.
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(20)).await;
    runner.stop().await;
    let mut runs: Vec<String> = worker.runs().into_iter().map(|(label, _)| label).collect();
    runs.sort_unstable();
    let mut expected: Vec<String> = (0..JOBS).flat_map(|i| [format!("job{i}"), format!("job{i}")]).collect();
    expected.push("lost before start".into());
    expected.sort_unstable();
    assert_eq!(
        runs, expected,
        "every job ran twice: once before the crash, once after it lost the completion"
    );
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
    pg_ctl(&format!("restart -m fast -w -o \"{options}\"")); // the shared server's own settings
}

/// Writes everything committed so far to disk. (A synchronous commit would not do: one that
/// wrote nothing but its commit record is made asynchronous by the server.)
async fn flush_log(pool: &PgPool) {
    sqlx::query("checkpoint").execute(pool).await.unwrap();
}

const WAL_WRITER_PID: &str = "select pid from pg_stat_activity where backend_type = 'walwriter'";

async fn wal_writer_pid(pool: &PgPool) -> i32 {
    sqlx::query_scalar(WAL_WRITER_PID).fetch_one(pool).await.unwrap()
}

/// A server process stopped with SIGSTOP, continued when dropped: should the test fail before
/// the crash, the server is not left unable to shut down for the tests that follow.
struct StoppedProcess(i32);

impl StoppedProcess {
    fn stop(pid: i32) -> Self {
        signal(pid, "STOP");
        Self(pid)
    }
}

impl Drop for StoppedProcess {
    fn drop(&mut self) {
        // Gone already once the crash has killed it.
        let _ = std::process::Command::new("kill").args(["-s", "CONT", &self.0.to_string()]).status();
    }
}

/// Sends a signal to a server process (the tests run as root or as the cluster's owner).
fn signal(pid: i32, name: &str) {
    let status = std::process::Command::new("kill").args(["-s", name, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -s {name} {pid}");
}
