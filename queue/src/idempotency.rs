//! Doing an effect once, however many times a job runs.

use sqlx::PgExecutor;

use crate::Result;

/// Claims `key` inside the caller's transaction: `true` means this is the first time (do the
/// work, in the same transaction), `false` means it was already done (skip it).
///
/// This is the pattern of the background-jobs field notes the project started from (a
/// practitioner's write-up, kept outside this repository), `INSERT ... ON CONFLICT DO NOTHING
/// RETURNING key`: there is no check-then-act window. A second transaction claiming the same key waits until the first
/// commits (then gets `false`) or rolls back (then gets `true` and does the work itself).
/// Keys older than the runner's idempotency-key age (30 days by default) are deleted by
/// maintenance. A key may be at most [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES) long (hash longer
/// ones); a longer one is `Error::InvalidOption`.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool, user_id: i64) -> Result<(), backstop::Error> {
/// let mut tx = pool.begin().await?;
/// if backstop::claim_idempotency_key(&mut *tx, &format!("welcome_email:user_{user_id}")).await? {
///     // Record the effect in the same transaction (e.g. an outbox row, a ledger entry).
///     sqlx::query("insert into sent_emails (user_id) values ($1)")
///         .bind(user_id)
///         .execute(&mut *tx)
///         .await?;
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub async fn claim_idempotency_key<'e, E: PgExecutor<'e>>(executor: E, key: &str) -> Result<bool> {
    crate::text::check_length("an idempotency key", key, crate::MAX_KEY_BYTES)?;
    Ok(crate::sql::idempotency_key_claim(executor, key).await?)
}
