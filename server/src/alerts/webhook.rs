//! Slack webhooks from the command line, and their rows in `backstop.alert_webhooks`.
//!
//! A webhook URL is a secret (anyone holding it can post to the channel): it stays in this
//! process. The database gets a hash of it as the id (so every console process given the same
//! URL agrees on it) and a label that says which webhook without revealing it.

use std::fmt;
use std::str::FromStr;

use backstop::triage::console;
use sqlx::PgPool;

/// One `--slack-webhook` value: `[queue=Q1,Q2;][kind=K1,K2;]URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub url: reqwest::Url,
    /// Only deaths in these queues (empty: all).
    pub queues: Vec<String>,
    /// Only deaths of these kinds (empty: all).
    pub kinds: Vec<String>,
}

// Never print the URL, not even in a debug log of the configuration.
impl fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("label", &self.label())
            .field("queues", &self.queues)
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl FromStr for WebhookSpec {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let mut queues = Vec::new();
        let mut kinds = Vec::new();
        let mut rest = value.trim();
        while let Some((route, after)) = rest.split_once(';') {
            let list = |names: &str| -> Vec<String> {
                names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect()
            };
            match route.split_once('=') {
                Some(("queue", names)) => queues.extend(list(names)),
                Some(("kind", names)) => kinds.extend(list(names)),
                _ => {
                    return Err(format!(
                        "unknown route {route:?}: expected queue=NAMES; or kind=NAMES; before the URL"
                    ));
                }
            }
            rest = after.trim();
        }
        // The error says what is wrong with the URL without echoing it (it is a secret).
        let url = reqwest::Url::parse(rest).map_err(|e| format!("the webhook URL does not parse: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err("the webhook URL must be an http(s) URL with a host".into());
        }
        Ok(Self { url, queues, kinds })
    }
}

impl WebhookSpec {
    /// Which webhook this is, safe to show: host and the URL's last four characters.
    pub fn label(&self) -> String {
        let text = self.url.as_str().trim_end_matches('/');
        let tail: String = text.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{} …{tail}", self.url.host_str().unwrap_or("?"))
    }
}

/// Records that this process is configured with `specs` (a broken one is trusted again:
/// restarting is how an operator says it is fixed). Returns each spec's id, in order. Rows of
/// webhooks only other consoles have are left alone; see [`confirm`] for how long they count.
pub async fn register(pool: &PgPool, specs: &[WebhookSpec]) -> sqlx::Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    let mut ids = Vec::with_capacity(specs.len());
    for spec in specs {
        let non_empty = |names: &Vec<String>| (!names.is_empty()).then(|| names.clone());
        let (queues, kinds) = (non_empty(&spec.queues), non_empty(&spec.kinds));
        let id = console::upsert_webhook(
            &mut tx,
            spec.url.as_str(),
            &spec.label(),
            queues.as_deref(),
            kinds.as_deref(),
        )
        .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Says again that a running console has these webhooks. A webhook confirmed within
/// [`WEBHOOK_STALE_AFTER_SECS`](backstop::triage::WEBHOOK_STALE_AFTER_SECS) is active (digests
/// and test alerts go to it); group alerts are enqueued for one confirmed within
/// [`ALERT_ROUTING_WINDOW_SECS`](backstop::triage::ALERT_ROUTING_WINDOW_SECS), so one dropped
/// from every console's configuration stops getting alerts after that (and a console without
/// webhooks never takes another console's away).
pub async fn confirm(pool: &PgPool, ids: &[String]) -> sqlx::Result<()> {
    console::confirm_webhooks(pool, ids).await
}

/// Marks a webhook broken (the reason is shown on the overview): no alerts are enqueued for it
/// until a check finds it works again (see `probe`), or a console restarts with it.
pub async fn mark_broken(pool: &PgPool, id: &str, reason: &str) -> sqlx::Result<()> {
    console::mark_webhook_broken(pool, id, reason).await
}

/// A webhook marked broken, and since when.
#[derive(Debug, Clone)]
pub struct Broken {
    pub id: String,
    pub broken_at: chrono::DateTime<chrono::Utc>,
}

/// Which of `ids` are marked broken.
pub async fn broken(pool: &PgPool, ids: &[String]) -> sqlx::Result<Vec<Broken>> {
    let broken = console::broken_webhooks(pool, ids).await?;
    Ok(broken.into_iter().map(|(id, broken_at)| Broken { id, broken_at }).collect())
}

/// Takes back a webhook that works again, if it is still the breakage of `broken_at` that was
/// checked (not one an alert recorded meanwhile). Returns whether it did.
pub async fn repaired(
    pool: &PgPool,
    id: &str,
    broken_at: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<bool> {
    console::unbreak_webhook(pool, id, broken_at).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_routes_everything() {
        let spec: WebhookSpec = "https://hooks.slack.com/services/T000/B000/XXXXsecret1234".parse().unwrap();
        assert!(spec.queues.is_empty() && spec.kinds.is_empty());
        assert_eq!(spec.label(), "hooks.slack.com …1234");
        assert!(!format!("{spec:?}").contains("secret"), "debug output hides the URL");
    }

    #[test]
    fn routes_come_before_the_url() {
        let spec: WebhookSpec =
            "queue=billing, emails;kind=charge_card;https://hooks.slack.com/services/a".parse().unwrap();
        assert_eq!(spec.queues, ["billing", "emails"]);
        assert_eq!(spec.kinds, ["charge_card"]);
        assert_eq!(spec.url.as_str(), "https://hooks.slack.com/services/a");
    }

    #[test]
    fn bad_values_are_refused_without_echoing_the_url() {
        let error = "team=x;https://hooks.slack.com/services/a".parse::<WebhookSpec>().unwrap_err();
        assert!(error.contains("unknown route"), "{error}");
        let error = "hooks.slack.com/services/secret".parse::<WebhookSpec>().unwrap_err();
        assert!(!error.contains("secret"), "{error}");
        assert!("ftp://example.com/x".parse::<WebhookSpec>().is_err());
    }
}
