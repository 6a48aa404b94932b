//! Server functions for triage: error groups, their status, and alerting's state.

use leptos::prelude::*;

use crate::model::{AlertsStatus, GroupChange, GroupDetail, GroupPage, SplitPart};
#[cfg(feature = "ssr")]
use crate::model::{GROUP_DEAD_COUNT_LIMIT, JobFilter, State};

#[cfg(feature = "ssr")]
use {
    super::source::JobSource,
    crate::server::{self, AppError},
    backstop::admin::{self, JobSearch},
    backstop::triage::{self, ALERT_KIND, GroupFilter},
    chrono::Utc,
};

/// Groups per page.
#[cfg(feature = "ssr")]
const PAGE_SIZE: i64 = 50;

/// One page of error groups, most recently seen first. `status` is `open`, `resolved` or
/// `ignored` (none: all); `before` is the previous page's `next`.
#[server(endpoint = "list_groups")]
pub async fn list_groups(status: Option<String>, before: Option<String>) -> Result<GroupPage, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let before = before
        .as_deref()
        .map(|c| {
            server::parse_dead_cursor(c)
                .ok_or_else(|| AppError::BadRequest("That page link is not valid any more.".into()))
        })
        .transpose()?;
    let filter = GroupFilter {
        status: status.filter(|s| matches!(s.as_str(), "open" | "resolved" | "ignored")),
        before,
        limit: Some(PAGE_SIZE),
        ..GroupFilter::default()
    };
    let groups = triage::error_groups(&console.pool, &filter).await.map_err(AppError::from)?;
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let since = now - chrono::Duration::hours(server::SPARKLINE_HOURS);
    let arrivals = triage::group_arrivals(&console.pool, &ids, since).await.map_err(AppError::from)?;
    let next = (groups.len() as i64 == PAGE_SIZE)
        .then(|| groups.last().map(|g| server::dead_cursor(g.last_seen, g.id)))
        .flatten();
    Ok(GroupPage {
        rows: groups.iter().map(|g| server::group_row(g, &arrivals, now, &console.redact)).collect(),
        next,
    })
}

/// One group, with its latest error in full and how many of its jobs are still dead.
#[server(endpoint = "group")]
pub async fn get_group(id: i64) -> Result<Option<GroupDetail>, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let Some(group) = triage::error_group(&console.pool, id).await.map_err(AppError::from)? else {
        return Ok(None);
    };
    if group.id != id {
        // Merged into an older group (one problem, seen late): the old link goes on to it.
        leptos_axum::redirect(&crate::mount::href(&format!("/triage/{}", group.id)));
    }
    let id = group.id;
    let since = now - chrono::Duration::hours(server::SPARKLINE_HOURS);
    let arrivals = triage::group_arrivals(&console.pool, &[id], since).await.map_err(AppError::from)?;
    // Its jobs still dead: Backstop's in the dead-letter table, graphile-worker's in its own
    // table (the group knows which they were).
    let dead = JobFilter { state: Some(State::Dead), group: Some(id), ..JobFilter::default() };
    let dead_now = match JobSource::find(&console.pool, Some(&group.source)).await? {
        Some(source) => source.count(&console.pool, &dead, GROUP_DEAD_COUNT_LIMIT).await?,
        // graphile-worker's group, and its schema gone from the database.
        None => 0,
    };
    Ok(Some(GroupDetail {
        row: server::group_row(&group, &arrivals, now, &console.redact),
        sample_error: console.redact.text(&group.sample_error).into_owned(),
        sample_job_id: group.sample_job_id,
        dead_now,
        split_by: group
            .template
            .as_deref()
            .map(|tokens| wildcard_labels(tokens).map(|l| console.redact.text(&l).into_owned()).collect())
            .unwrap_or_default(),
    }))
}

/// A label for each wildcard of a template, in order: the word before it and the wildcard
/// (`to <*>`), so an operator sees which part a split is by.
#[cfg(feature = "ssr")]
fn wildcard_labels(tokens: &[Option<String>]) -> impl Iterator<Item = String> + '_ {
    tokens.iter().enumerate().filter(|(_, t)| t.is_none()).map(|(i, _)| {
        match i.checked_sub(1).and_then(|before| tokens[before].as_deref()) {
            Some(word) if word != triage::LINE_BREAK => {
                // A long word (a quoted value, say) by its end, the part next to the wildcard.
                let chars: Vec<char> = word.chars().collect();
                let word: String = match chars.len() {
                    n if n > 32 => std::iter::once('…').chain(chars[n - 31..].iter().copied()).collect(),
                    _ => word.to_owned(),
                };
                format!("{word} {}", triage::WILDCARD)
            }
            _ => triage::WILDCARD.to_owned(),
        }
    })
}

/// Resolves, reopens or ignores a group. Operators only; audited.
#[server(endpoint = "change_group")]
pub async fn change_group(id: i64, change: GroupChange) -> Result<(), ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let found = match change {
        GroupChange::Resolve => triage::resolve_group(&mut *tx, id).await,
        GroupChange::Reopen => triage::reopen_group(&mut *tx, id).await,
        GroupChange::IgnoreHours(hours) => {
            let until = Utc::now() + chrono::Duration::hours(i64::from(hours.clamp(1, 24 * 365)));
            triage::ignore_group(&mut *tx, id, Some(until), None).await
        }
        GroupChange::IgnoreArrivals(more) => {
            triage::ignore_group(&mut *tx, id, None, Some(i64::from(more))).await
        }
    }
    .map_err(AppError::from)?;
    if !found {
        return Err(AppError::NotFound(format!("error group {id} does not exist")).into());
    }
    let target = serde_json::json!({ "group": id, "change": change });
    admin::record_action(&mut *tx, &user.name, change.audit_name(), &target, 1, 1)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(())
}

/// Merges two groups an operator knows are one problem (see `backstop::triage::merge_groups`):
/// the older keeps its id and takes the other's jobs and history. Operators only; audited in
/// the same transaction. Returns the surviving group's id.
#[server(endpoint = "merge_group")]
pub async fn merge_group(id: i64, into: i64) -> Result<i64, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let survivor = triage::merge_groups(&mut tx, id, into).await.map_err(AppError::from)?;
    let target = serde_json::json!({ "group": id, "into": into, "survivor": survivor });
    admin::record_action(&mut *tx, &user.name, "merge_groups", &target, 2, 1)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(survivor)
}

/// Splits a group by what its dead jobs have at its `wildcard`-th wildcard (from 0), one group
/// per value (see `backstop::triage::split_group`). Operators only; audited in the same
/// transaction. Returns the groups, the one that kept the id first.
#[server(endpoint = "split_group")]
pub async fn split_group(id: i64, wildcard: u32) -> Result<Vec<SplitPart>, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let split = triage::split_group(&mut tx, id, wildcard as usize).await.map_err(AppError::from)?;
    let parts: Vec<SplitPart> = std::iter::once(split.kept)
        .chain(split.others)
        .map(|g| SplitPart { id: g.id, value: g.value, jobs: g.jobs as u64 })
        .collect();
    let groups: Vec<i64> = parts.iter().map(|p| p.id).collect();
    let target = serde_json::json!({ "group": id, "wildcard": wildcard, "groups": groups });
    let moved: u64 = parts.iter().map(|p| p.jobs).sum();
    admin::record_action(&mut *tx, &user.name, "split_group", &target, moved, moved)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(parts)
}

/// The configured Slack webhooks and the alert jobs waiting or dead.
#[server(endpoint = "alerting")]
pub async fn alerting_status() -> Result<AlertsStatus, ServerFnError> {
    let console = server::console()?;
    let now = Utc::now();
    let webhooks = triage::alert_webhooks(&console.pool).await.map_err(AppError::from)?;
    let kind = JobSearch { kind: Some(ALERT_KIND.to_owned()), ..JobSearch::default() };
    let pending = triage::waiting_alert_jobs(&console.pool).await.map_err(AppError::from)?;
    let dead = admin::count_dead_jobs(&console.pool, &kind, false, 10_000).await.map_err(AppError::from)?;
    Ok(AlertsStatus {
        webhooks: webhooks.iter().map(|w| server::webhook_row(w, now)).collect(),
        pending,
        dead,
    })
}

/// Sends a test alert to every working webhook. Operators only; audited. Returns how many.
#[server(endpoint = "send_test_alert")]
pub async fn send_test_alert() -> Result<u64, ServerFnError> {
    let user = server::require_operator().await?;
    let console = server::console()?;
    let mut tx = console.pool.begin().await.map_err(AppError::internal)?;
    let queued = triage::enqueue_test_alerts(&mut *tx, &user.name).await.map_err(AppError::from)?;
    if queued == 0 {
        return Err(AppError::BadRequest(
            "No working Slack webhook is configured: start the console with --slack-webhook.".into(),
        )
        .into());
    }
    admin::record_action(&mut *tx, &user.name, "test_alert", &serde_json::json!({}), queued, queued)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::internal)?;
    Ok(queued)
}
