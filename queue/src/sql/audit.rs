//! The audit log of operator actions.

use sqlx::PgExecutor;

use crate::rows::AuditEntry;

pub(crate) async fn audit_insert<'e, E: PgExecutor<'e>>(
    executor: E,
    actor: &str,
    action: &str,
    target: &serde_json::Value,
    requested: i64,
    changed: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into backstop.audit_log (actor, action, target, requested, changed) \
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(requested)
    .bind(changed)
    .fetch_one(executor)
    .await
}

/// Opens the audit entry of a bulk action done in steps: nothing counted yet, in progress.
pub(crate) async fn audit_insert_in_progress<'e, E: PgExecutor<'e>>(
    executor: E,
    actor: &str,
    action: &str,
    target: &serde_json::Value,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into backstop.audit_log (actor, action, target, requested, changed, in_progress) \
         values ($1, $2, $3, 0, 0, true) returning id",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .fetch_one(executor)
    .await
}

/// Whether `id` is an entry in progress of this actor, action and target.
pub(crate) async fn audit_in_progress<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    actor: &str,
    action: &str,
    target: &serde_json::Value,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        // jsonb equality ignores key order and whitespace: the same filter is the same target.
        "select exists (select from backstop.audit_log \
         where id = $1 and actor = $2 and action = $3 and target = $4 and in_progress)",
    )
    .bind(id)
    .bind(actor)
    .bind(action)
    .bind(target)
    .fetch_one(executor)
    .await
}

/// Adds one page's counts to an entry in progress of this actor, action and target, and
/// closes it when `done`. Returns whether such an entry was found (and so changed).
#[expect(clippy::too_many_arguments, reason = "one statement's parameters, named")]
pub(crate) async fn audit_add_page<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    actor: &str,
    action: &str,
    target: &serde_json::Value,
    requested: i64,
    changed: i64,
    done: bool,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update backstop.audit_log \
         set requested = requested + $5, changed = changed + $6, in_progress = not $7 \
         where id = $1 and actor = $2 and action = $3 and target = $4 and in_progress",
    )
    .bind(id)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(requested)
    .bind(changed)
    .bind(done)
    .execute(executor)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Newest first, keyset-paginated on `id` (identity: increases with `at`).
pub(crate) async fn audit_list<'e, E: PgExecutor<'e>>(
    executor: E,
    actor: Option<&str>,
    action: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "select id, at, actor, action, target, requested, changed from backstop.audit_log \
         where ($1::text is null or actor = $1) and ($2::text is null or action = $2) \
           and ($3::bigint is null or id < $3) \
         order by id desc limit $4",
    )
    .bind(actor)
    .bind(action)
    .bind(before_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}
