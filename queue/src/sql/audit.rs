//! The audit log of operator actions.

use sqlx::PgExecutor;

use crate::admin::AuditEntry;

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

pub(crate) async fn audit_add<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    actor: &str,
    requested: i64,
    changed: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update backstop.audit_log set requested = requested + $3, changed = changed + $4 \
         where id = $1 and actor = $2",
    )
    .bind(id)
    .bind(actor)
    .bind(requested)
    .bind(changed)
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
