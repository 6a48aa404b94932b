//! Backstop's migrations beside an application's own sqlx migrations: Backstop's history in
//! `backstop._sqlx_migrations`, the application's in `public._sqlx_migrations`, in either
//! order, again and again; the move from where an older Backstop kept its history; reverting;
//! and processes migrating at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use backstop::NewJob;
use chrono::{DateTime, Utc};
use common::{count, pool, wait_for_count};
use serde_json::json;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

/// An application's own migrations (two tables), applied the way an application does.
static APP_MIGRATOR: Migrator = sqlx::migrate!("tests/fixtures/app_migrations");

const APP_HISTORY: &str = "public._sqlx_migrations";
const BACKSTOP_HISTORY: &str = "backstop._sqlx_migrations";

fn up_versions(migrator: &Migrator) -> Vec<i64> {
    migrator.iter().filter(|m| m.migration_type.is_up_migration()).map(|m| m.version).collect()
}

/// Backstop's migrations as a Backstop from before this change applied them: sqlx's defaults,
/// history in the application's `_sqlx_migrations`.
fn legacy_backstop_migrator() -> Migrator {
    Migrator::with_migrations(backstop::MIGRATOR.iter().cloned().collect())
}

/// The old layout with an application's migrations too: both histories mixed in one table.
/// Each migrator refused the other's versions, so a team running both had one of them ignore
/// what it did not know (here Backstop's, which ran second).
async fn mixed_legacy_layout(pool: &PgPool) {
    APP_MIGRATOR.run(pool).await.unwrap();
    let mut legacy = legacy_backstop_migrator();
    legacy.set_ignore_missing(true);
    legacy.run(pool).await.unwrap();
}

/// The versions a history table records as applied.
async fn history(pool: &PgPool, table: &str) -> Vec<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!("select version from {table} where success order by version")))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("read {table}: {e}"))
}

/// Each history holds exactly its own migrations, and each side's tables are there.
async fn assert_two_histories(pool: &PgPool) {
    assert_eq!(history(pool, APP_HISTORY).await, up_versions(&APP_MIGRATOR), "the application's history");
    assert_eq!(history(pool, BACKSTOP_HISTORY).await, up_versions(&backstop::MIGRATOR), "Backstop's history");
    let tables = "select count(*) from (values (to_regclass('public.users')), (to_regclass('public.orders')), \
                  (to_regclass('backstop.jobs')), (to_regclass('backstop.dead_jobs'))) t(r) where r is not null";
    assert_eq!(count(pool, tables).await, 4, "both sides' tables");
}

#[sqlx::test(migrations = false)]
async fn application_migrations_then_backstops_twice(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    for round in 0..2 {
        APP_MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("application, round {round}: {e}"));
        backstop::MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("Backstop, round {round}: {e}"));
        assert_two_histories(&pool).await;
    }
}

#[sqlx::test(migrations = false)]
async fn backstop_migrations_then_the_applications_twice(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    for round in 0..2 {
        backstop::MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("Backstop, round {round}: {e}"));
        APP_MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("application, round {round}: {e}"));
        assert_two_histories(&pool).await;
    }
}

/// The application's migrator on the old layout fails, meeting Backstop's versions. On a
/// connection of its own, closed after: sqlx returns that error still holding the database's
/// migration lock, as a process that then exits would.
async fn assert_app_migrator_refused(opts: &PgConnectOptions) {
    let mut conn = PgConnection::connect_with(opts).await.unwrap();
    let refused = APP_MIGRATOR.run(&mut conn).await.unwrap_err();
    assert!(matches!(refused, MigrateError::VersionMissing(_)), "{refused:?}");
    conn.close().await.unwrap();
}

/// `(version, installed_on, checksum)` of Backstop's rows in `table`.
async fn backstop_rows(pool: &PgPool, table: &str) -> BTreeSet<(i64, DateTime<Utc>, Vec<u8>)> {
    sqlx::query_as(AssertSqlSafe(format!(
        "select version, installed_on, checksum from {table} where version = any($1)"
    )))
    .bind(up_versions(&backstop::MIGRATOR))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[sqlx::test(migrations = false)]
async fn an_older_backstops_history_moves_out_of_the_applications_table(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    mixed_legacy_layout(&pool).await;
    backstop::enqueue(&pool, NewJob::from_json("kept", &json!({"n": 1}))).await.unwrap();
    let old_rows = backstop_rows(&pool, APP_HISTORY).await;
    assert_eq!(old_rows.len(), up_versions(&backstop::MIGRATOR).len());

    // What the issue reports: the application's migrator meets versions it does not know.
    assert_app_migrator_refused(&opts).await;

    backstop::MIGRATOR.run(&pool).await.unwrap();
    assert_two_histories(&pool).await;
    assert_eq!(
        backstop_rows(&pool, BACKSTOP_HISTORY).await,
        old_rows,
        "moved with when they ran, as they were"
    );
    assert_eq!(
        count(&pool, "select count(*) from backstop.jobs where kind = 'kept'").await,
        1,
        "data untouched"
    );

    for round in 0..2 {
        APP_MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("application, round {round}: {e}"));
        backstop::MIGRATOR.run(&pool).await.unwrap_or_else(|e| panic!("Backstop, round {round}: {e}"));
        assert_two_histories(&pool).await;
    }
}

#[sqlx::test(migrations = false)]
async fn an_older_backstop_alone_moves_its_history_and_applies_the_rest(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let versions = up_versions(&backstop::MIGRATOR);
    // An older release: its first three migrations, in the application's table.
    legacy_backstop_migrator().run_to(versions[2], &pool).await.unwrap();
    assert_eq!(history(&pool, APP_HISTORY).await, versions[..3]);

    backstop::MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(history(&pool, BACKSTOP_HISTORY).await, versions, "moved, then the rest applied");
    assert_eq!(history(&pool, APP_HISTORY).await, Vec::<i64>::new(), "nothing of Backstop's left");

    // The application starts using sqlx migrations later: its table is its own.
    APP_MIGRATOR.run(&pool).await.unwrap();
    backstop::MIGRATOR.run(&pool).await.unwrap();
    assert_two_histories(&pool).await;
}

/// Holds sqlx's migration lock (per database: the application's migrator and Backstop's take
/// the same one) on a connection of its own.
async fn hold_migration_lock(opts: &PgConnectOptions) -> PgConnection {
    let mut conn = PgConnection::connect_with(opts).await.unwrap();
    conn.lock().await.unwrap();
    conn
}

/// Sessions of this test's database waiting for an advisory lock.
const WAITING_FOR_LOCK: &str = "select count(*) from pg_locks where locktype = 'advisory' and not granted \
                                and database = (select oid from pg_database where datname = current_database())";

#[sqlx::test(migrations = false)]
async fn backstop_migrates_under_the_databases_migration_lock(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts.clone()).await;
    let mut holder = hold_migration_lock(&opts).await;
    let migrating = tokio::spawn({
        let pool = pool.clone();
        async move { backstop::MIGRATOR.run(&pool).await }
    });
    wait_for_count(&pool, WAITING_FOR_LOCK, 1, Duration::from_secs(20)).await;
    let created = "select count(*) from pg_namespace where nspname = 'backstop'";
    assert_eq!(count(&pool, created).await, 0, "nothing created before the lock");

    holder.unlock().await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), migrating)
        .await
        .expect("migrated after the lock")
        .unwrap()
        .unwrap();
    assert_eq!(history(&pool, BACKSTOP_HISTORY).await, up_versions(&backstop::MIGRATOR));
}

#[sqlx::test(migrations = false)]
async fn the_move_from_an_older_backstop_waits_for_the_migration_lock(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts.clone()).await;
    mixed_legacy_layout(&pool).await;
    let mut holder = hold_migration_lock(&opts).await;
    let migrating = tokio::spawn({
        let pool = pool.clone();
        async move { backstop::MIGRATOR.run(&pool).await }
    });
    wait_for_count(&pool, WAITING_FOR_LOCK, 1, Duration::from_secs(20)).await;
    let old_rows = backstop_rows(&pool, APP_HISTORY).await;
    assert_eq!(old_rows.len(), up_versions(&backstop::MIGRATOR).len(), "not moved yet");

    holder.unlock().await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), migrating)
        .await
        .expect("moved after the lock")
        .unwrap()
        .unwrap();
    assert_eq!(backstop_rows(&pool, APP_HISTORY).await.len(), 0);
    assert_eq!(backstop_rows(&pool, BACKSTOP_HISTORY).await, old_rows);
    assert_two_histories(&pool).await;
}

/// Several processes of an upgraded application deploy at once onto the old layout, each
/// running Backstop's migrations and then the application's: the history moves once, nothing
/// fails.
#[sqlx::test(migrations = false)]
async fn processes_upgrading_at_once_move_the_history_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let setup = pool(opts.clone()).await;
    mixed_legacy_layout(&setup).await;
    let old_rows = backstop_rows(&setup, APP_HISTORY).await;

    let pools = [pool(opts.clone()).await, pool(opts.clone()).await, pool(opts.clone()).await];
    let starts = futures::future::join_all(pools.iter().map(|pool| async move {
        backstop::MIGRATOR.run(pool).await?;
        APP_MIGRATOR.run(pool).await
    }));
    let results = tokio::time::timeout(Duration::from_secs(60), starts)
        .await
        .expect("the processes' migrations did not all finish within 60 s");
    for result in results {
        result.unwrap();
    }
    assert_two_histories(&setup).await;
    assert_eq!(backstop_rows(&setup, BACKSTOP_HISTORY).await, old_rows);
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_revert_to_zero_and_apply_again(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let tables = "select count(*) from information_schema.tables \
                  where table_schema = 'backstop' and table_name <> '_sqlx_migrations'";
    backstop::MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(count(&pool, tables).await, 15);
    // Back to the first migration: the audit log, error groups, their arrivals, the alert
    // webhooks, the open queue-health problems and the other sources' watermarks, groups and
    // seen failures go; the queue's tables stay.
    backstop::MIGRATOR.undo(&pool, 20261124000001).await.unwrap();
    assert_eq!(count(&pool, tables).await, 7);
    backstop::MIGRATOR.undo(&pool, 0).await.unwrap();
    assert_eq!(count(&pool, tables).await, 0);
    assert_eq!(
        history(&pool, BACKSTOP_HISTORY).await,
        Vec::<i64>::new(),
        "the schema keeps an empty history"
    );
    backstop::MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(count(&pool, tables).await, 15);
    assert_eq!(history(&pool, BACKSTOP_HISTORY).await, up_versions(&backstop::MIGRATOR));
}

/// Several app processes deploying at once all migrate the same fresh database. (A migration
/// that ran `create index concurrently` deadlocked here: it waits for every older transaction,
/// including the other process's wait for the migrator's lock.)
#[sqlx::test(migrations = false)]
async fn processes_starting_together_migrate_once_without_deadlock(_: PgPoolOptions, opts: PgConnectOptions) {
    let pools = [pool(opts.clone()).await, pool(opts.clone()).await, pool(opts).await];
    let runs = futures::future::join_all(pools.iter().map(|pool| backstop::MIGRATOR.run(pool)));
    // A deadlock can also leave one process holding the migrator's lock and the others waiting
    // for ever, so the wait has a deadline.
    let results = tokio::time::timeout(Duration::from_secs(60), runs)
        .await
        .expect("the processes' migrations did not all finish within 60 s");
    for result in results {
        result.unwrap();
    }
    assert_eq!(history(&pools[0], BACKSTOP_HISTORY).await, up_versions(&backstop::MIGRATOR));
    let public = "select count(*) from pg_tables where schemaname = 'public'";
    assert_eq!(count(&pools[0], public).await, 0, "nothing in the application's schema");
}

/// sqlx returns a failed migration's error still holding the database's migration lock, on a
/// connection that goes back to the pool; Backstop's migrator lets go of it, so the
/// application's migrator on the same pool does not wait for ever.
#[sqlx::test(migrations = false)]
async fn a_failed_backstop_migration_leaves_the_lock_free(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // A table in Backstop's way: its first migration fails.
    sqlx::raw_sql("create schema backstop; create table backstop.jobs (id int)")
        .execute(&pool)
        .await
        .unwrap();
    let failed = backstop::MIGRATOR.run(&pool).await.unwrap_err();
    assert!(matches!(failed, MigrateError::ExecuteMigration(..)), "{failed:?}");
    tokio::time::timeout(Duration::from_secs(20), APP_MIGRATOR.run(&pool))
        .await
        .expect("the application's migrator got the lock")
        .unwrap();
    assert_eq!(history(&pool, APP_HISTORY).await, up_versions(&APP_MIGRATOR));
}

#[sqlx::test(migrations = false)]
async fn status_says_what_is_pending_failed_or_unknown(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let versions = up_versions(&backstop::MIGRATOR);
    let fresh = backstop::MIGRATOR.status(&pool).await.unwrap();
    assert_eq!(fresh.pending, versions, "no history table yet: everything pending");
    assert!(!fresh.is_current());

    backstop::MIGRATOR.run(&pool).await.unwrap();
    let migrated = backstop::MIGRATOR.status(&pool).await.unwrap();
    assert!(migrated.is_current(), "{migrated:?}");
    assert_eq!(migrated, backstop::MigrationStatus::default());

    let last = *versions.last().unwrap();
    sqlx::query("delete from backstop._sqlx_migrations where version = $1")
        .bind(last)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(backstop::MIGRATOR.status(&pool).await.unwrap().pending, [last]);

    sqlx::query("update backstop._sqlx_migrations set success = false where version = $1")
        .bind(versions[0])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into backstop._sqlx_migrations (version, description, success, checksum, execution_time)
         values (29991231000000, 'from a newer Backstop', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let odd = backstop::MIGRATOR.status(&pool).await.unwrap();
    assert_eq!(odd.failed, Some(versions[0]));
    assert_eq!(odd.unknown, [29991231000000]);
    assert!(!odd.is_current());
}
