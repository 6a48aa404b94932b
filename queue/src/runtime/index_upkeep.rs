//! Rebuilds the GIN indexes of `backstop.jobs` (the console's payload and error-text search)
//! once they outgrow the table.
//!
//! Why: GIN keeps an entry for every key it has held. Vacuum empties the entries of deleted
//! jobs but never removes them, so when payloads and errors carry ids (an order number, a
//! request id), every job adds keys for good. Measured with `./dev bench --steady-state`: the
//! payload index grew from 8 MB to 62 MB in 15 minutes of steady load while the table stayed at
//! 23 MB; reproduced apart, 40 rounds of 50,000 unique values took a GIN index from 1,061 to
//! 7,512 pages while a btree on the same rows stayed at 275. Table settings cannot help
//! (autovacuum already runs every minute there), and a rebuild gives it all back:
//! `reindex index concurrently` blocks neither enqueues nor claims.
//!
//! One process at a time (a session-level advisory lock), at most once per maintenance
//! interval; an index is rebuilt when it is larger than the table and than `min_bytes`, so a
//! fresh one, a fraction of the table, is left alone however big the backlog.

use sqlx::PgPool;

use crate::sql;

/// Below this an index is not worth rebuilding, whatever the table's size.
pub(super) const REBUILD_FROM_BYTES: i64 = 64 * 1024 * 1024;

/// Drops what an interrupted rebuild left and rebuilds the outgrown indexes. Returns the
/// names of the indexes rebuilt.
pub(crate) async fn rebuild_outgrown(pool: &PgPool, min_bytes: i64) -> sqlx::Result<Vec<String>> {
    // A connection of its own for the whole run: the lock belongs to the session.
    let mut conn = pool.acquire().await?;
    if !sql::index_upkeep_try_lock(&mut conn).await? {
        return Ok(Vec::new()); // another process is at it
    }
    let rebuilt = rebuild_locked(&mut conn, min_bytes).await;
    let unlocked = sql::index_upkeep_unlock(&mut conn).await;
    let rebuilt = rebuilt?;
    unlocked?;
    Ok(rebuilt)
}

async fn rebuild_locked(conn: &mut sqlx::PgConnection, min_bytes: i64) -> sqlx::Result<Vec<String>> {
    for leftover in sql::job_index_leftovers(conn).await? {
        tracing::warn!(index = leftover, "dropping an invalid index an interrupted rebuild left");
        sql::index_drop(conn, &leftover).await?;
    }
    let outgrown = sql::job_index_outgrown(conn, min_bytes).await?;
    for index in &outgrown {
        tracing::info!(index, "rebuilding a search index that has outgrown backstop.jobs");
        sql::index_rebuild(conn, index).await?;
    }
    Ok(outgrown)
}
