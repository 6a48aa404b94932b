//! The server half of the console's API: the shared state the `backstop` binary provides,
//! who is asking, and turning the queue's records into what pages show. Only compiled with
//! `ssr`; server functions call into here and stay thin.

mod convert;
mod error;

pub use convert::{
    PAYLOAD_HIDDEN, RedactKeys, SPARKLINE_HOURS, audit_row, dead_cursor, dead_detail, dead_row,
    graphile_detail, graphile_row, group_row, last_hour, live_detail, live_row, long_transaction, moment,
    parse_dead_cursor, queue_row, webhook_row, worker_row,
};
pub use error::AppError;

use leptos::prelude::*;
use sqlx::PgPool;

use crate::model::CurrentUser;

/// What every request of the console shares, provided by the server as Leptos context.
#[derive(Clone, Debug)]
pub struct Console {
    /// The database with Backstop's tables.
    pub pool: PgPool,
    /// Payload keys whose values are masked in pages.
    pub redact: RedactKeys,
}

/// The console's shared state.
pub fn console() -> Result<Console, AppError> {
    use_context::<Console>().ok_or_else(|| AppError::internal("the console state was not provided"))
}

/// Who is asking: set on every request by the server's authentication layer.
pub async fn current_user() -> Result<CurrentUser, AppError> {
    let axum::Extension(user) = leptos_axum::extract::<axum::Extension<CurrentUser>>()
        .await
        .map_err(|e| AppError::internal(format!("no user on the request: {e}")))?;
    Ok(user)
}

/// The current user, if they may act; otherwise a 403 error. Every mutating server function
/// calls this first: hiding buttons from viewers is a courtesy, this is the check.
pub async fn require_operator() -> Result<CurrentUser, AppError> {
    let user = current_user().await?;
    if user.can_act() { Ok(user) } else { Err(AppError::Forbidden) }
}
