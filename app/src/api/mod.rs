//! Server functions: the console's API. On the server they run directly (during SSR) or behind
//! `POST /api/<endpoint>`; in the browser the same call becomes that HTTP request. Each is thin:
//! it checks who is asking, calls the `backstop` admin API and converts the result (see
//! `crate::server`). None of them knows SQL.

mod actions;
#[cfg(feature = "ssr")]
mod graphile;
mod reads;
mod reveal;
#[cfg(feature = "ssr")]
mod source;
mod triage;

pub use actions::{
    ActOnJobs, ActOnMatching, EditAndRetry, SetQueuePaused, act_on_jobs, act_on_matching, edit_and_retry,
    set_queue_paused,
};
pub use reads::{
    AuditLog, CountMatching, JobDetailFor, ListJobs, OverviewData, Whoami, audit_log, count_matching,
    job_detail_for, list_jobs, overview_data, whoami,
};
pub use reveal::{RevealMasked, reveal_masked};
pub use triage::{
    AlertingStatus, ChangeGroup, GetGroup, ListGroups, MergeGroup, SendTestAlert, SplitGroup,
    alerting_status, change_group, get_group, list_groups, merge_group, send_test_alert, split_group,
};

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the server says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The version of the server binary (the `app` crate's version: they ship together).
    pub version: String,
    /// The server's clock, UTC, to the second.
    pub server_time: String,
}

/// The server's version and clock. Served at `POST /api/console_status`. (The macro also
/// defines a struct `ConsoleStatus`: the call's arguments, here none.)
#[server(endpoint = "console_status")]
pub async fn console_status() -> Result<ServerStatus, ServerFnError> {
    Ok(ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server_time: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    })
}

/// The filter as the admin API takes it: the state and the search. A payload filter that is
/// not JSON is the user's mistake, and says so.
#[cfg(feature = "ssr")]
fn admin_search(
    filter: &crate::model::JobFilter,
) -> Result<backstop::admin::JobSearch, crate::server::AppError> {
    let payload_contains = match filter.payload.as_deref() {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            crate::server::AppError::BadRequest(format!(
                "The payload filter is not valid JSON ({e}). Example: {{\"user_id\": 42}}"
            ))
        })?),
    };
    Ok(backstop::admin::JobSearch {
        queue: filter.queue.clone(),
        kind: filter.kind.clone(),
        payload_contains,
        error_text: filter.error.clone(),
        since: filter.from.as_deref().map(utc_time).transpose()?,
        until: filter.to.as_deref().map(utc_time).transpose()?,
        group: filter.group,
    })
}

/// A time from the filter form (`2026-11-25T14:30`, seconds optional), read as UTC.
#[cfg(feature = "ssr")]
fn utc_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, crate::server::AppError> {
    const FORMATS: [&str; 4] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"];
    let text = text.trim();
    FORMATS
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            crate::server::AppError::BadRequest(format!(
                "The time {text:?} is not one the filter understands; use 2026-11-25T14:30 (UTC)."
            ))
        })
}
