//! Heartbeats and rescue between processes: a job is taken back only when the process holding
//! it has stopped heartbeating for that process's own timeout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use backstop::{Job, JobContext, JobError, Worker};
use common::{RunningRunner, pool, test_runner, wait_for, wait_for_count};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Semaphore;

const DEADLINE: Duration = Duration::from_secs(8);

/// A worker that holds each job until released, counting starts.
#[derive(Clone)]
struct Gate {
    started: Arc<Semaphore>,
    release: Arc<Semaphore>,
}

impl Gate {
    fn closed() -> Self {
        Self { started: Arc::new(Semaphore::new(0)), release: Arc::new(Semaphore::new(0)) }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Gated;
impl Job for Gated {
    const KIND: &'static str = "gated";
}

impl Worker for Gate {
    type Job = Gated;
    async fn work(&self, _: Gated, _: JobContext) -> Result<(), JobError> {
        self.started.add_permits(1);
        let _permit = self.release.acquire().await.expect("gate open");
        Ok(())
    }
}

async fn last_seen(pool: &PgPool, worker: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("select last_seen from backstop.workers where id = $1")
        .bind(worker)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Waits until `worker` has heartbeated after `after` and then once more: its rescue pass of
/// the first of those beats (which follows each beat) has run.
async fn rescue_pass_after(pool: &PgPool, worker: &str, after: chrono::DateTime<chrono::Utc>) {
    let seen = wait_for("a heartbeat after the moment", DEADLINE, || async move {
        last_seen(pool, worker).await.filter(|seen| *seen > after)
    })
    .await;
    wait_for("the next heartbeat", DEADLINE, || async move {
        last_seen(pool, worker).await.filter(|next| *next > seen)
    })
    .await;
}

async fn db_now(pool: &PgPool) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("select now()").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_running_through_shutdown_is_not_rescued_by_another_runner(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let id = backstop::enqueue(&pool, &Gated).await.unwrap().created().unwrap();
    let gate = Gate::closed();
    let timeout = Duration::from_secs(1);
    let stopping = RunningRunner::start(
        test_runner(&pool)
            .worker_id("stopping")
            .heartbeat(Duration::from_millis(100), timeout)
            .shutdown_timeout(Duration::from_secs(30))
            .register(gate.clone()),
    );
    let _started = gate.started.acquire().await.unwrap();
    // Shutdown begins; the job keeps running (it has 30 s to finish).
    stopping.shutdown.cancel();
    let shutdown_at = db_now(&pool).await;
    let other = RunningRunner::start(
        test_runner(&pool)
            .worker_id("other")
            .heartbeat(Duration::from_millis(100), timeout)
            .register(gate.clone()),
    );
    // Well past the heartbeat timeout, the other runner has looked for stale jobs.
    rescue_pass_after(&pool, "other", shutdown_at + chrono::Duration::from_std(timeout * 2).unwrap()).await;
    let job = backstop::admin::job(&pool, id).await.unwrap().unwrap();
    assert_eq!(job.locked_by.as_deref(), Some("stopping"), "rescued while still running: {job:?}");
    assert!(job.errors.0.is_empty(), "{:?}", job.errors);
    assert_eq!(gate.started.available_permits(), 0, "the job started a second time");
    gate.release.add_permits(10);
    stopping.stop().await;
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    other.stop().await;
    assert_eq!(gate.started.available_permits(), 0, "the job ran once");
}

/// A worker process that last heartbeated `silent_for` ago, with its own timeout, holding one
/// job (on a queue no runner here works) since then.
async fn silent_owner(pool: &PgPool, id: &str, timeout_secs: f64, silent_for_secs: f64) -> i64 {
    sqlx::query(
        "insert into backstop.workers (id, queues, last_seen, heartbeat_timeout) \
         values ($1, '{elsewhere}', now() - make_interval(secs => $3), make_interval(secs => $2))",
    )
    .bind(id)
    .bind(timeout_secs)
    .bind(silent_for_secs)
    .execute(pool)
    .await
    .unwrap();
    let job = backstop::enqueue(pool, backstop::NewJob::new(&Gated).queue("elsewhere"))
        .await
        .unwrap()
        .created()
        .unwrap();
    sqlx::query(
        "update backstop.jobs set locked_by = $2, locked_at = now() - make_interval(secs => $3), \
         attempts = 1 where id = $1",
    )
    .bind(job)
    .bind(id)
    .bind(silent_for_secs)
    .execute(pool)
    .await
    .unwrap();
    job
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn rescue_waits_for_each_owner_s_own_heartbeat_timeout(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // A worker configured with heartbeat(60 s, 300 s) beats once a minute: 60 s of silence is
    // normal for it. One with a 2 s timeout silent as long is gone.
    let patient = silent_owner(&pool, "patient", 300.0, 60.0).await;
    let hasty = silent_owner(&pool, "hasty", 2.0, 60.0).await;
    // A rescuer with a shorter timeout than the patient worker's (a console, say).
    let rescuer = RunningRunner::start(
        test_runner(&pool)
            .worker_id("rescuer")
            .heartbeat(Duration::from_millis(100), Duration::from_secs(30)),
    );
    // Both jobs are looked at in the same rescue pass.
    wait_for_count(&pool, "select count(*) from backstop.jobs where locked_by is null", 1, DEADLINE).await;
    rescuer.stop().await;
    let job = |id| {
        let pool = pool.clone();
        async move { backstop::admin::job(&pool, id).await.unwrap().unwrap() }
    };
    assert_eq!(job(patient).await.locked_by.as_deref(), Some("patient"), "taken from a live worker");
    let rescued = job(hasty).await;
    assert!(rescued.locked_by.is_none());
    assert!(rescued.errors.0[0].error.contains("stopped heartbeating for over 2s"), "{:?}", rescued.errors);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_runner_takes_back_the_jobs_of_a_process_that_left_no_row(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // As if its row had been deleted a day after it fell silent: only its lock is left.
    let orphaned = silent_owner(&pool, "vanished", 2.0, 60.0).await;
    sqlx::query("delete from backstop.workers where id = 'vanished'").execute(&pool).await.unwrap();
    // Judged by the rescuer's own timeout (30 s), at its maintenance interval: the lock is
    // 60 s old.
    let rescuer = RunningRunner::start(
        test_runner(&pool)
            .worker_id("rescuer")
            .heartbeat(Duration::from_millis(100), Duration::from_secs(30))
            .maintenance_interval(Duration::from_millis(100)),
    );
    wait_for_count(&pool, "select count(*) from backstop.jobs where locked_by is null", 1, DEADLINE).await;
    rescuer.stop().await;
    let rescued = backstop::admin::job(&pool, orphaned).await.unwrap().unwrap();
    assert!(rescued.errors.0[0].error.contains("stopped heartbeating for over 30s"), "{:?}", rescued.errors);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_runner_records_its_own_heartbeat_timeout(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let runner = RunningRunner::start(
        test_runner(&pool)
            .worker_id("slow-beat")
            .heartbeat(Duration::from_secs(60), Duration::from_secs(300)),
    );
    let timeout: f64 = wait_for("the worker row", DEADLINE, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar(
                "select extract(epoch from heartbeat_timeout)::float8 from backstop.workers where id = 'slow-beat'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    })
    .await;
    runner.stop().await;
    assert_eq!(timeout, 300.0);
}

/// A lock the database says a live process holds, but which that process has no job for (its
/// completion was lost in a database crash: `db_restart.rs` crashes a real server for it), is
/// handed back by the process itself within a heartbeat interval, and the job runs again. No
/// rescue would ever take it: the process is alive. The job it is running meanwhile stays
/// its own.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_lock_a_live_process_does_not_hold_is_handed_back(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let gate = Gate::closed();
    let runner = RunningRunner::start(
        test_runner(&pool)
            .worker_id("live")
            .heartbeat(Duration::from_millis(100), Duration::from_secs(30))
            .register(gate.clone()),
    );
    let running = backstop::enqueue(&pool, &Gated).await.unwrap().created().unwrap();
    tokio::time::timeout(DEADLINE, gate.started.acquire())
        .await
        .expect("the first job starts")
        .unwrap()
        .forget();

    // A job back in the table as the crash left it: locked by "live", attempt 1 used.
    let orphan = backstop::enqueue(&pool, backstop::NewJob::new(&Gated).delay(Duration::from_secs(3600)))
        .await
        .unwrap()
        .created()
        .unwrap();
    sqlx::query(
        "update backstop.jobs set locked_by = 'live', locked_at = now(), attempts = 1, run_at = now() \
         where id = $1",
    )
    .bind(orphan)
    .execute(&pool)
    .await
    .unwrap();
    tokio::time::timeout(DEADLINE, gate.started.acquire())
        .await
        .expect("the orphan runs again")
        .unwrap()
        .forget();

    let job = |id| {
        let pool = pool.clone();
        async move { backstop::admin::job(&pool, id).await.unwrap().unwrap() }
    };
    let first = job(running).await;
    assert_eq!((first.locked_by.as_deref(), first.attempts), (Some("live"), 1), "{first:?}");
    let again = job(orphan).await;
    assert_eq!(
        (again.locked_by.as_deref(), again.attempts),
        (Some("live"), 1),
        "attempt given back: {again:?}"
    );
    gate.release.add_permits(10);
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, DEADLINE).await;
    runner.stop().await;
}

/// Jobs that die because their process stopped heartbeating are one problem, whichever process
/// it was: one error group (one alert), not one per process. The process is in each attempt's
/// history, not in the message that groups them.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn deaths_by_rescue_from_different_processes_are_one_error_group(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // Processes with ids of the default shape (host:pid:random), each killed holding two jobs
    // on their last attempt: each id is seen twice, as the rescue of a real process's jobs is.
    let mut jobs = Vec::new();
    for owner in ["vm:31234:3462", "vm:31377:f822", "vm:4242:ede3"] {
        let first = silent_owner(&pool, owner, 2.0, 60.0).await;
        let second = backstop::enqueue(&pool, backstop::NewJob::new(&Gated).queue("elsewhere"))
            .await
            .unwrap()
            .created()
            .unwrap();
        sqlx::query(
            "update backstop.jobs set locked_by = $2, locked_at = now() - interval '60 seconds', \
             attempts = 1, max_attempts = 1 where id = any($1)",
        )
        .bind([first, second])
        .bind(owner)
        .execute(&pool)
        .await
        .unwrap();
        jobs.push(first);
    }
    let rescuer = RunningRunner::start(test_runner(&pool).worker_id("rescuer"));
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 6, DEADLINE).await;
    rescuer.stop().await;
    let groups: Vec<Option<i64>> = sqlx::query_scalar("select distinct group_id from backstop.dead_jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(groups.len(), 1, "one group: {groups:?}");
    let dead = backstop::admin::dead_job(&pool, jobs[0]).await.unwrap().unwrap();
    let last = dead.errors.0.last().unwrap();
    assert_eq!(last.worker, "vm:31234:3462", "the process is in the history: {last:?}");
    assert!(last.error.contains("stopped heartbeating for over 2s"), "{last:?}");
}
