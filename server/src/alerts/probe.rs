//! Webhooks marked broken are checked again every few minutes, so one that works again (a
//! revoked token replaced, a channel unarchived, a webhook re-installed under the same URL)
//! gets alerts again without restarting the console.
//!
//! The check posts an empty body, which Slack never shows in a channel: a webhook that works
//! answers it 400 `invalid_payload`, one that is gone 404 `no_service` (or 403, 410, or a 400
//! naming the webhook, as in [`SlackAnswer`]). Every console configured with the webhook checks
//! it; that is a few empty requests every five minutes, not worth coordinating.
//!
//! What the check cannot see: whether the webhook's channel is still archived, or posting still
//! prohibited (Slack checks those only for a real message). A webhook broken for those reasons
//! is taken back after a check, and the next alert marks it broken again; that alert fails (its
//! group is in triage as always), and the webhook is checked again five minutes later.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::deliver::SlackAnswer;
use super::webhook;

/// How often each console confirms its webhooks (well inside the five minutes they count for)
/// and checks the broken ones.
#[derive(Debug, Clone, Copy)]
pub struct Upkeep {
    pub confirm_every: Duration,
    pub check_broken_every: Duration,
}

impl Upkeep {
    pub const DEFAULT: Upkeep =
        Upkeep { confirm_every: Duration::from_secs(60), check_broken_every: Duration::from_secs(300) };
}

/// Until `shutdown`: confirms `webhooks` (id to URL) and checks the broken ones, as `upkeep`
/// says.
pub async fn keep_up(
    pool: PgPool,
    client: reqwest::Client,
    webhooks: std::sync::Arc<HashMap<String, reqwest::Url>>,
    upkeep: Upkeep,
    shutdown: CancellationToken,
) {
    let ids: Vec<String> = webhooks.keys().cloned().collect();
    let mut confirm = tokio::time::interval(upkeep.confirm_every);
    let mut check = tokio::time::interval(upkeep.check_broken_every);
    // Both fire at once first: confirmed at start by `register`, and nothing is broken yet.
    confirm.tick().await;
    check.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = confirm.tick() => {
                if let Err(e) = webhook::confirm(&pool, &ids).await {
                    tracing::warn!(error = %e, "could not confirm the Slack webhooks; retrying soon");
                }
            }
            _ = check.tick() => {
                if let Err(e) = check_broken(&pool, &client, &webhooks).await {
                    tracing::warn!(error = %e, "could not check the broken Slack webhooks");
                }
            }
        }
    }
}

/// Checks each of `webhooks` marked broken; takes back those that work. Returns how many.
pub async fn check_broken(
    pool: &PgPool,
    client: &reqwest::Client,
    webhooks: &HashMap<String, reqwest::Url>,
) -> sqlx::Result<usize> {
    let mut repaired = 0;
    for broken in webhook::broken(pool, &webhooks.keys().cloned().collect::<Vec<_>>()).await? {
        let Some(url) = webhooks.get(&broken.id) else { continue };
        let response = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("")
            .send()
            .await;
        let answer = match response {
            Ok(response) => SlackAnswer::read(response).await,
            Err(e) => SlackAnswer::Unavailable(e.without_url().to_string()),
        };
        match answer {
            // It takes posts again (the empty body was refused as a message, or, from a
            // stand-in that is not Slack, even accepted).
            SlackAnswer::Delivered | SlackAnswer::MessageRefused(_) => {
                if webhook::repaired(pool, &broken.id, broken.broken_at).await? {
                    tracing::info!(webhook = %broken.id, "Slack webhook works again; alerts resume");
                    repaired += 1;
                }
            }
            SlackAnswer::WebhookRefused(reason) => {
                tracing::debug!(webhook = %broken.id, %reason, "Slack webhook still refused");
            }
            SlackAnswer::RateLimited(_) | SlackAnswer::Unavailable(_) => {}
        }
    }
    Ok(repaired)
}
