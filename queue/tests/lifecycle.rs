//! Property tests of the job lifecycle against a real PostgreSQL: random interleavings of
//! enqueue, claim, complete, fail, rescue, retry from dead, cancel, delete and bulk actions, one
//! step at a time through the runtime's own statements (`backstop::testing`). After every step:
//!
//! - every job is in exactly one place: live, dead, or gone (completed or deleted, and only
//!   when a step did that);
//! - attempts never exceed max_attempts;
//! - no error history is lost or invented: each job has exactly one entry per failure recorded
//!   (a worker's failure, or a rescue), across retries from the dead-letter table.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backstop::admin::{self, DeadAction, JobSearch, LiveAction};
use backstop::testing::{self, Claimed, Failed};
use backstop::{Enqueued, JobError, NewJob};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const KIND: &str = "prop";

#[derive(Debug, Clone, Copy)]
enum How {
    Retry,
    FailNow,
    Cancel,
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        key: Option<u8>,
        max_attempts: i32,
    },
    Claim {
        worker: u8,
        limit: i64,
    },
    Complete {
        pick: usize,
    },
    Fail {
        pick: usize,
        how: How,
    },
    /// Every process holding a job is presumed dead: their jobs are taken back.
    Rescue,
    RetryDead {
        picks: Vec<usize>,
    },
    Cancel {
        pick: usize,
    },
    DeleteDead {
        pick: usize,
    },
    BulkRetryDead,
    BulkCancel,
}

fn op() -> impl Strategy<Value = Op> {
    let how = prop_oneof![Just(How::Retry), Just(How::FailNow), Just(How::Cancel)];
    prop_oneof![
        3 => (proptest::option::of(0u8..3), 1i32..=3)
            .prop_map(|(key, max_attempts)| Op::Enqueue { key, max_attempts }),
        3 => (0u8..2, 1i64..=3).prop_map(|(worker, limit)| Op::Claim { worker, limit }),
        2 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
        3 => (any::<usize>(), how).prop_map(|(pick, how)| Op::Fail { pick, how }),
        1 => Just(Op::Rescue),
        2 => vec(any::<usize>(), 1..4).prop_map(|picks| Op::RetryDead { picks }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Op::DeleteDead { pick }),
        1 => Just(Op::BulkRetryDead),
        1 => Just(Op::BulkCancel),
    ]
}

/// What the steps so far say must be true.
#[derive(Default)]
struct Model {
    /// Every job ever created.
    all: BTreeSet<i64>,
    /// Completed or deleted.
    gone: BTreeSet<i64>,
    /// Failures recorded per job.
    history: BTreeMap<i64, usize>,
    /// Claims not yet completed or failed, with the worker that made them. After a rescue
    /// they are stale: their worker was presumed dead.
    held: Vec<(Claimed, String, bool)>,
    /// Worker names change at each rescue, as a restarted process's would.
    epoch: u32,
}

/// One row of either table.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: i64,
    attempts: i32,
    max_attempts: i32,
    errors: i32,
    locked_by: Option<String>,
}

async fn rows(pool: &PgPool, table: &str) -> Vec<Row> {
    let locked = if table == "jobs" { "locked_by" } else { "null::text as locked_by" };
    let sql = format!(
        "select id, attempts, max_attempts, jsonb_array_length(errors) as errors, {locked} \
         from backstop.{table} where kind = '{KIND}'"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap()
}

fn pick<T: Copy>(items: &[T], pick: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[pick % items.len()])
}

async fn step(pool: &PgPool, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let dead_ids = || async { rows(pool, "dead_jobs").await.into_iter().map(|r| r.id).collect::<Vec<_>>() };
    match op {
        Op::Enqueue { key, max_attempts } => {
            let mut job = NewJob::from_json(KIND, &json!({})).max_attempts(*max_attempts);
            if let Some(key) = key {
                job = job.unique_key(format!("key-{key}"));
            }
            if let Enqueued::Created(id) = backstop::enqueue(pool, job).await.unwrap() {
                model.all.insert(id);
            }
        }
        Op::Claim { worker, limit } => {
            let name = format!("w{worker}-e{}", model.epoch);
            for claimed in testing::claim(pool, "default", &name, *limit).await.unwrap() {
                prop_assert!(claimed.attempt <= claimed.max_attempts, "claimed past max: {claimed:?}");
                model.held.push((claimed, name.clone(), true));
            }
        }
        Op::Complete { pick } => {
            if model.held.is_empty() {
                return Ok(());
            }
            let (claimed, worker, fresh) = model.held.remove(pick % model.held.len());
            testing::complete(pool, &[claimed.id], &worker).await.unwrap();
            if fresh {
                model.gone.insert(claimed.id);
            }
        }
        Op::Fail { pick, how } => {
            if model.held.is_empty() {
                return Ok(());
            }
            let (claimed, worker, fresh) = model.held.remove(pick % model.held.len());
            let error = match how {
                How::Retry => JobError::retry("boom"),
                How::FailNow => JobError::fail_now("never"),
                How::Cancel => JobError::cancel("unwanted"),
            };
            let failed = testing::fail(pool, claimed, &worker, error).await.unwrap();
            let expected = match (fresh, how) {
                (false, _) => Failed::NotOurs,
                (true, How::Retry) if claimed.attempt < claimed.max_attempts => Failed::Retrying,
                (true, How::Retry) => Failed::Dead("exhausted".into()),
                (true, How::FailNow) => Failed::Dead("failed_now".into()),
                (true, How::Cancel) => Failed::Dead("cancelled".into()),
            };
            prop_assert_eq!(&failed, &expected, "{:?}", claimed);
            if fresh {
                *model.history.entry(claimed.id).or_default() += 1;
            }
        }
        Op::Rescue => {
            let later = chrono::Utc::now() + chrono::Duration::hours(1);
            let rescued = testing::rescue(pool, Duration::from_secs(30), Some(later)).await.unwrap();
            let fresh: Vec<i64> =
                model.held.iter().filter(|(_, _, fresh)| *fresh).map(|(c, _, _)| c.id).collect();
            prop_assert_eq!(rescued, fresh.len(), "every held job, and only those, is taken back");
            for id in fresh {
                *model.history.entry(id).or_default() += 1;
            }
            for held in &mut model.held {
                held.2 = false;
            }
            model.epoch += 1;
        }
        Op::RetryDead { picks } => {
            let all: Vec<i64> = model.all.iter().copied().collect();
            let ids: Vec<i64> = picks.iter().filter_map(|p| pick(&all, *p)).collect();
            let dead = dead_ids().await;
            let outcome = admin::retry_dead_jobs(pool, &ids).await.unwrap();
            let asked_dead: BTreeSet<i64> = ids.iter().copied().filter(|id| dead.contains(id)).collect();
            prop_assert_eq!(outcome.retried as usize + outcome.key_taken.len(), asked_dead.len());
        }
        Op::Cancel { pick: p } => {
            let all: Vec<i64> = model.all.iter().copied().collect();
            if let Some(id) = pick(&all, *p) {
                admin::cancel_jobs(pool, &[id], "cancelled by the test").await.unwrap();
            }
        }
        Op::DeleteDead { pick: p } => {
            if let Some(id) = pick(&dead_ids().await, *p) {
                prop_assert_eq!(admin::delete_dead_jobs(pool, &[id]).await.unwrap(), 1);
                model.gone.insert(id);
            }
        }
        Op::BulkRetryDead => {
            let search = JobSearch { kind: Some(KIND.into()), ..JobSearch::default() };
            let outcome = admin::act_on_dead_matching(pool, DeadAction::Retry, &search, false).await.unwrap();
            prop_assert!(outcome.changed + outcome.key_taken <= outcome.matched, "{:?}", outcome);
        }
        Op::BulkCancel => {
            let search = JobSearch { kind: Some(KIND.into()), ..JobSearch::default() };
            admin::act_on_jobs_matching(pool, LiveAction::Cancel, None, &search, "test").await.unwrap();
        }
    }
    Ok(())
}

async fn check(pool: &PgPool, model: &Model, after: &Op) -> Result<(), TestCaseError> {
    let live = rows(pool, "jobs").await;
    let dead = rows(pool, "dead_jobs").await;
    let live_ids: BTreeSet<i64> = live.iter().map(|r| r.id).collect();
    let dead_ids: BTreeSet<i64> = dead.iter().map(|r| r.id).collect();
    prop_assert!(live_ids.is_disjoint(&dead_ids), "live and dead at once after {after:?}");
    for id in &model.all {
        let places = [live_ids.contains(id), dead_ids.contains(id), model.gone.contains(id)];
        prop_assert_eq!(
            places.iter().filter(|p| **p).count(),
            1,
            "job {} is in {:?} after {:?}",
            id,
            places,
            after
        );
    }
    for row in live.iter().chain(&dead) {
        prop_assert!(model.all.contains(&row.id), "unknown job {}", row.id);
        prop_assert!(row.attempts <= row.max_attempts, "attempts past max after {after:?}: {row:?}");
        let recorded = model.history.get(&row.id).copied().unwrap_or(0);
        prop_assert_eq!(row.errors as usize, recorded, "error history of {:?} after {:?}", row, after);
    }
    for (claimed, worker, fresh) in &model.held {
        if *fresh {
            let row = live.iter().find(|r| r.id == claimed.id);
            prop_assert_eq!(
                row.and_then(|r| r.locked_by.as_deref()),
                Some(worker.as_str()),
                "claim of {} lost",
                claimed.id
            );
        }
    }
    Ok(())
}

async fn run_case(pool: &PgPool, ops: &[Op]) -> Result<(), TestCaseError> {
    sqlx::query("truncate backstop.jobs, backstop.dead_jobs, backstop.error_groups restart identity cascade")
        .execute(pool)
        .await
        .unwrap();
    let mut model = Model::default();
    for op in ops {
        step(pool, &mut model, op).await?;
        check(pool, &model, op).await?;
    }
    Ok(())
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn random_lifecycles_keep_every_job_in_one_place_with_its_history(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // proptest runs cases synchronously: give it a thread and a runtime of its own.
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pool = rt.block_on(common::pool(opts));
        // About 40 cases of up to 40 steps: a few seconds here, thousands of steps in all.
        let config = Config { cases: 40, failure_persistence: None, ..Config::default() };
        TestRunner::new(config).run(&vec(op(), 1..40), |ops| rt.block_on(run_case(&pool, &ops)))
    })
    .join()
    .expect("the property test thread did not panic");
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
