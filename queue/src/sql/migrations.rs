//! Backstop's migration history: where it lives, moving it out of the application's table, and
//! reading it for readiness checks.
//!
//! The history table's name is spliced into these statements (sqlx's migrator does the same:
//! a table name cannot be a bind parameter). Every name spliced here is either the constant
//! below or built by PostgreSQL's own `format('%I.%I', ...)` from the catalog, so it is always
//! a quoted identifier.

use sqlx::{AssertSqlSafe, PgConnection, PgExecutor};

/// Backstop's migration history, in Backstop's schema (sqlx's columns, sqlx's DDL).
pub(crate) const MIGRATION_HISTORY: &str = "backstop._sqlx_migrations";

/// The history table an older Backstop wrote to: `_sqlx_migrations` as the connection's
/// `search_path` finds it (where sqlx's unqualified `create table` put it: usually `public`),
/// if that is not Backstop's own table and this role may read it. Quoted, schema-qualified.
pub(crate) async fn migration_history_legacy_table(conn: &mut PgConnection) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname)
         from pg_class c
         join pg_namespace n on n.oid = c.relnamespace
         where c.oid = to_regclass('_sqlx_migrations')
           and c.oid is distinct from to_regclass('backstop._sqlx_migrations')
           -- A table this role cannot read was never Backstop's history under this role.
           and has_table_privilege(c.oid, 'select')",
    )
    .fetch_optional(conn)
    .await
}

/// Which of `versions` (Backstop's, with their `checksums`) the legacy table holds.
pub(crate) async fn migration_history_legacy_versions(
    conn: &mut PgConnection,
    legacy_table: &str,
    versions: &[i64],
    checksums: &[Vec<u8>],
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "select h.version from {legacy_table} h
         -- Version and checksum both: an application's migration that happens to share a
         -- version number with one of Backstop's is not Backstop's.
         join unnest($1::int8[], $2::bytea[]) as b(version, checksum)
           on b.version = h.version and b.checksum = h.checksum
         order by h.version"
    )))
    .bind(versions)
    .bind(checksums)
    .fetch_all(conn)
    .await
}

/// Moves Backstop's rows (matched by version and checksum) from the legacy table into
/// [`MIGRATION_HISTORY`], keeping when and how each ran; every other row stays. Call inside a
/// transaction, holding the migrator's lock, after the history table exists. Returns how many
/// rows moved.
pub(crate) async fn migration_history_move(
    conn: &mut PgConnection,
    legacy_table: &str,
    versions: &[i64],
    checksums: &[Vec<u8>],
) -> sqlx::Result<u64> {
    sqlx::query(AssertSqlSafe(format!(
        "with moved as (
             delete from {legacy_table} h
             using unnest($1::int8[], $2::bytea[]) as b(version, checksum)
             where b.version = h.version and b.checksum = h.checksum
             returning h.version, h.description, h.installed_on, h.success, h.checksum, h.execution_time
         )
         insert into {MIGRATION_HISTORY} (version, description, installed_on, success, checksum, execution_time)
         select version, description, installed_on, success, checksum, execution_time from moved
         -- Already there (a process that moved it first): the row in Backstop's table wins.
         on conflict (version) do nothing"
    )))
    .bind(versions)
    .bind(checksums)
    .execute(conn)
    .await
    .map(|done| done.rows_affected())
}
/// One row of Backstop's migration history.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AppliedMigrationRow {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// Backstop's migration history, oldest first; empty when the table does not exist yet.
pub(crate) async fn migration_history_list(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<AppliedMigrationRow>> {
    if !migration_history_exists(&mut *conn).await? {
        return Ok(Vec::new());
    }
    sqlx::query_as(AssertSqlSafe(format!(
        "select version, success, checksum from {MIGRATION_HISTORY} order by version"
    )))
    .fetch_all(conn)
    .await
}

async fn migration_history_exists<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<bool> {
    sqlx::query_scalar("select to_regclass('backstop._sqlx_migrations') is not null")
        .fetch_one(executor)
        .await
}
