//! Backstop's migrations, with their history in Backstop's own schema.
//!
//! sqlx records applied migrations in one table, `_sqlx_migrations` unless told otherwise, and
//! refuses to run when that table holds a version it does not know. Backstop's history
//! therefore lives in `backstop._sqlx_migrations`, never in the application's table: the
//! application's `sqlx::migrate!()` and Backstop's run on one database in either order. An
//! older Backstop wrote to the application's table; [`Migrator::run`] moves those rows first.

use std::ops::Deref;
use std::sync::LazyLock;

use sqlx::migrate::{Migrate, MigrateError};
use sqlx::{Acquire, Connection, PgConnection, Postgres};

use crate::sql;

/// Backstop's migrations (schema `backstop`), recorded in `backstop._sqlx_migrations`.
///
/// Apply them at start-up, before any worker or enqueue:
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// backstop::MIGRATOR.run(&pool).await?;
/// # Ok(()) }
/// ```
///
/// Tests get a fresh database with Backstop's schema by pointing sqlx's test macro at it:
///
/// ```no_run
/// #[sqlx::test(migrator = "backstop::MIGRATOR")]
/// async fn enqueues(pool: sqlx::PgPool) {
///     // schema `backstop` is there
/// }
/// ```
pub static MIGRATOR: Migrator = Migrator { migrations: LazyLock::new(backstop_migrations) };

fn backstop_migrations() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("../migrations");
    // sqlx creates the schema before its history table, so the table has a home on a fresh
    // database; the first migration's `create schema if not exists backstop` then does nothing.
    migrator.create_schema("backstop");
    migrator.dangerous_set_table_name(sql::MIGRATION_HISTORY);
    migrator
}

/// Where a database stands against this build's migrations (see [`Migrator::status`]).
///
/// ```
/// let fresh = backstop::MigrationStatus::default();
/// assert!(fresh.is_current(), "nothing known, nothing pending");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// Versions this build has that the database has not applied, oldest first.
    pub pending: Vec<i64>,
    /// A migration that failed part-way (sqlx calls the database dirty): nothing more applies
    /// until someone repairs it by hand.
    pub failed: Option<i64>,
    /// Applied versions whose migration differs from this build's (sqlx refuses to run then).
    pub changed: Vec<i64>,
    /// Applied versions this build does not know: a newer Backstop migrated the database.
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    /// Whether this build's migrations are all applied, none failed and none changed. Versions
    /// a newer Backstop applied are listed in `unknown` but do not count against it.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.failed.is_none() && self.changed.is_empty()
    }
}

/// Backstop's migrations: sqlx's [`Migrator`](sqlx::migrate::Migrator) with the history in
/// `backstop._sqlx_migrations`, plus the move from where an older Backstop kept it.
///
/// Use [`MIGRATOR`]. It dereferences to sqlx's migrator, which is what
/// `#[sqlx::test(migrator = "backstop::MIGRATOR")]` needs and what lists the migrations
/// ([`iter`](sqlx::migrate::Migrator::iter)). Apply and revert with this type's
/// [`run`](Migrator::run) and [`undo`](Migrator::undo), which move an older Backstop's
/// history first; sqlx's own `run_to` and `skip` do not.
///
/// ```
/// let ups = backstop::MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).count();
/// assert!(ups > 0);
/// assert_eq!(backstop::Migrator::HISTORY_TABLE, "backstop._sqlx_migrations");
/// ```
#[derive(Debug)]
pub struct Migrator {
    migrations: LazyLock<sqlx::migrate::Migrator>,
}

impl Deref for Migrator {
    type Target = sqlx::migrate::Migrator;

    fn deref(&self) -> &sqlx::migrate::Migrator {
        &self.migrations
    }
}

impl Migrator {
    /// Where Backstop records which of its migrations ran (sqlx's columns).
    pub const HISTORY_TABLE: &str = sql::MIGRATION_HISTORY;

    /// Applies the migrations this database has not had yet, holding sqlx's migration lock
    /// (an advisory lock per database, the same one the application's migrator takes), so
    /// any number of processes may call it at once: one applies, the others wait and find
    /// nothing left to do.
    ///
    /// First, if the application's `_sqlx_migrations` (as the connection's `search_path` finds
    /// it: usually `public._sqlx_migrations`) holds Backstop's rows from an older Backstop,
    /// they move to `backstop._sqlx_migrations` (matched by version and checksum; when each
    /// ran is kept; the application's rows stay), in one transaction under that lock.
    ///
    /// Takes a pool, a connection or a transaction:
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
    /// let mut conn = pool.acquire().await?;
    /// backstop::MIGRATOR.run(&mut *conn).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<'a, A>(&self, db: A) -> Result<(), MigrateError>
    where
        A: Acquire<'a, Database = Postgres>,
    {
        let mut conn = db.acquire().await?;
        self.adopt_legacy_history(&mut conn).await?;
        // What sqlx's own `run` calls once it has a connection (`run` itself on a connection
        // makes a future rustc cannot prove `Send`: see `revert`).
        let applied = self.migrations.run_direct(None, &mut *conn, false).await;
        if applied.is_err() {
            // sqlx returns its errors without unlocking, and the connection goes back to the
            // pool still holding the database's migration lock: the application's migrator, or
            // a retry, on another connection of that pool would then wait for ever. (Unlocking a
            // lock not held only draws a warning from PostgreSQL.)
            let _ = conn.unlock().await;
        }
        applied
    }

    /// Reverts applied migrations newer than `target` (`0`: all of them), newest first, after
    /// the same move as [`run`](Migrator::run). Reverting to zero drops Backstop's tables
    /// and keeps schema `backstop` with the (now empty) history; drop the schema to
    /// uninstall. Live and dead jobs are lost: for tests and uninstalling.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
    /// backstop::MIGRATOR.undo(&pool, 0).await?;
    /// sqlx::query("drop schema backstop cascade").execute(&pool).await?;
    /// # Ok(()) }
    /// ```
    pub async fn undo<'a, A>(&self, db: A, target: i64) -> Result<(), MigrateError>
    where
        A: Acquire<'a, Database = Postgres>,
    {
        let mut conn = db.acquire().await?;
        self.adopt_legacy_history(&mut conn).await?;
        self.revert(&mut conn, target).await
    }

    /// Where the database stands against these migrations, without changing anything: for a
    /// readiness check. Reads Backstop's history only; a database an older Backstop migrated
    /// and no [`run`](Migrator::run) has moved yet reads as nothing applied.
    ///
    /// ```no_run
    /// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
    /// let status = backstop::MIGRATOR.status(&pool).await?;
    /// if !status.is_current() {
    ///     eprintln!("not ready: migrations {:?} are pending", status.pending);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status<'a, A>(&self, db: A) -> Result<MigrationStatus, MigrateError>
    where
        A: Acquire<'a, Database = Postgres>,
    {
        let mut conn = db.acquire().await?;
        let applied = sql::migration_history_list(&mut conn).await?;
        let mut status = MigrationStatus::default();
        for migration in self.migrations.iter().filter(|m| m.migration_type.is_up_migration()) {
            match applied.iter().find(|row| row.version == migration.version) {
                None => status.pending.push(migration.version),
                Some(row) if !row.success => status.failed = status.failed.or(Some(row.version)),
                Some(row) if *row.checksum != *migration.checksum => status.changed.push(row.version),
                Some(_) => {}
            }
        }
        status.unknown =
            applied.iter().map(|row| row.version).filter(|&v| !self.migrations.version_exists(v)).collect();
        Ok(status)
    }

    /// sqlx's `undo`, step for step, on a connection. (Its `undo` takes an `Acquire`, and its
    /// future on a `&mut PgConnection` is one rustc cannot prove `Send` for every lifetime of
    /// the connection (rust-lang/rust#64552): a caller's `tokio::spawn` of it would not
    /// compile. Its `run` has `run_direct` for the same reason; `undo` has nothing.)
    async fn revert(&self, conn: &mut PgConnection, target: i64) -> Result<(), MigrateError> {
        conn.lock().await?;
        let reverted = self.revert_locked(conn, target).await;
        let unlocked = conn.unlock().await;
        reverted?;
        unlocked
    }

    async fn revert_locked(&self, conn: &mut PgConnection, target: i64) -> Result<(), MigrateError> {
        conn.create_schema_if_not_exists("backstop").await?;
        conn.ensure_migrations_table(sql::MIGRATION_HISTORY).await?;
        if let Some(version) = conn.dirty_version(sql::MIGRATION_HISTORY).await? {
            return Err(MigrateError::Dirty(version));
        }
        let applied: Vec<i64> =
            conn.list_applied_migrations(sql::MIGRATION_HISTORY).await?.iter().map(|m| m.version).collect();
        if let Some(&unknown) = applied.iter().find(|&&version| !self.migrations.version_exists(version)) {
            return Err(MigrateError::VersionMissing(unknown));
        }
        for migration in self.migrations.iter().rev().filter(|m| {
            m.migration_type.is_down_migration() && m.version > target && applied.contains(&m.version)
        }) {
            conn.revert(sql::MIGRATION_HISTORY, migration).await?;
        }
        Ok(())
    }

    /// Moves an older Backstop's rows out of the application's history table, if any.
    async fn adopt_legacy_history(&self, conn: &mut PgConnection) -> Result<(), MigrateError> {
        // Checked without the lock first, so the usual start (nothing to move) costs two
        // reads; checked again under it, since another process may be moving them.
        if self.legacy_rows(conn).await?.is_none() {
            return Ok(());
        }
        conn.lock().await?;
        let moved = self.move_legacy_rows(conn).await;
        // Unlocked even when the move failed: the connection goes back to its pool.
        let unlocked = conn.unlock().await;
        let moved = moved?;
        unlocked?;
        if moved > 0 {
            tracing::info!(
                moved,
                to = sql::MIGRATION_HISTORY,
                "moved Backstop's migration history out of the application's _sqlx_migrations"
            );
        }
        Ok(())
    }

    async fn move_legacy_rows(&self, conn: &mut PgConnection) -> Result<u64, MigrateError> {
        let Some(legacy_table) = self.legacy_rows(conn).await? else {
            return Ok(0);
        };
        let (versions, checksums) = self.up_migrations();
        let mut tx = Connection::begin(conn).await?;
        tx.create_schema_if_not_exists("backstop").await?;
        tx.ensure_migrations_table(sql::MIGRATION_HISTORY).await?;
        let moved = sql::migration_history_move(&mut tx, &legacy_table, &versions, &checksums).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// The legacy history table, if it holds any of Backstop's rows.
    async fn legacy_rows(&self, conn: &mut PgConnection) -> Result<Option<String>, MigrateError> {
        let Some(legacy_table) = sql::migration_history_legacy_table(conn).await? else {
            return Ok(None);
        };
        let (versions, checksums) = self.up_migrations();
        let found =
            sql::migration_history_legacy_versions(conn, &legacy_table, &versions, &checksums).await?;
        Ok((!found.is_empty()).then_some(legacy_table))
    }

    /// Versions and checksums of the up migrations (what sqlx records for each).
    fn up_migrations(&self) -> (Vec<i64>, Vec<Vec<u8>>) {
        self.migrations
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| (m.version, m.checksum.to_vec()))
            .unzip()
    }
}
