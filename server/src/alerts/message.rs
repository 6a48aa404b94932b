//! Slack messages: Block Kit with a plain `text` fallback (what notifications and screen
//! readers show), inside Slack's limits, with everything from the database escaped, and
//! error text and payloads masked by the console's redaction rules (`backstop::redact`).

use app::server::RedactKeys;
use app::thousands;
use backstop::triage::ErrorGroup;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::health::{Problem, QueueHealthAlert};

/// Slack's limits (api.slack.com/reference/block-kit): section text, header text, a field,
/// blocks per message.
const SECTION_CHARS: usize = 3_000;
const HEADER_CHARS: usize = 150;
const FIELD_CHARS: usize = 2_000;
const MAX_BLOCKS: usize = 50;
/// Digest groups listed one per block; the rest are counted in a closing line.
pub const DIGEST_GROUPS_LISTED: usize = 40;
/// The payload excerpt in an alert.
const PAYLOAD_CHARS: usize = 500;

/// What every message needs beyond its data.
#[derive(Debug, Clone)]
pub struct MessageContext {
    /// `prod`, `staging`: the first thing in every message.
    pub environment: String,
    /// Where the console is, for links: `https://backstop.example.com` (no trailing slash).
    pub public_url: String,
    /// Masks secrets in error text and payloads before they leave for Slack.
    pub redact: RedactKeys,
}

/// Why a group alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    New,
    Reopened,
    Unignored,
}

impl Reason {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "new" => Some(Self::New),
            "reopened" => Some(Self::Reopened),
            "unignored" => Some(Self::Unignored),
            _ => None,
        }
    }

    fn headline(self) -> &'static str {
        match self {
            Self::New => "New failure",
            Self::Reopened => "Resolved failure is back",
            Self::Unignored => "Ignored failure is back",
        }
    }
}

/// The dead job that triggered a group alert, if it is still in the dead-letter table.
#[derive(Debug, Clone)]
pub struct AlertJob {
    pub id: i64,
    pub attempts: i32,
    pub max_attempts: i32,
    /// `None` when this console's role cannot read it (graphile-worker's private rows).
    pub payload: Option<Value>,
}

/// One group in a digest: arrivals since the last digest.
#[derive(Debug, Clone)]
pub struct DigestLine {
    pub group: ErrorGroup,
    pub count: i64,
}

/// The groups a digest counts but does not list (beyond [`DIGEST_GROUPS_LISTED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestRest {
    pub groups: i64,
    pub deaths: i64,
}

impl MessageContext {
    /// A job's page: Backstop's own, or another source's (`?source=`).
    fn job_link(&self, source: &str, job_id: i64) -> String {
        if source == backstop::graphile::SOURCE {
            format!("{}/jobs/{job_id}?source={source}", self.public_url)
        } else {
            format!("{}/jobs/{job_id}", self.public_url)
        }
    }

    fn group_link(&self, group_id: i64) -> String {
        format!("{}/triage/{group_id}", self.public_url)
    }

    /// The alert for one group that is new or back.
    pub fn group_alert(&self, reason: Reason, group: &ErrorGroup, job: Option<&AlertJob>) -> Value {
        let env = &self.environment;
        let headline = format!("[{env}] {}: {} ({})", reason.headline(), group.kind, group.queue);
        let job_id = job.map_or(group.sample_job_id, |j| j.id);
        let attempts = job.map_or_else(|| "?".to_owned(), |j| format!("{}/{}", j.attempts, j.max_attempts));
        let link = self.group_link(group.id);
        let message = self.redact.text(&group.message);
        // The fallback is mrkdwn too (notifications, screen readers): escaped like the rest.
        let text = clip(
            &format!(
                "{}: {} — {} dead job{} in this group. {link}",
                escape(&headline),
                escape(first_line(&message)),
                group.total,
                if group.total == 1 { "" } else { "s" },
            ),
            SECTION_CHARS,
        );
        let fields = [
            ("Kind", escape(&group.kind)),
            ("Queue", escape(&group.queue)),
            ("Source", escape(&group.source)),
            ("Attempts", attempts),
            ("Dead jobs in group", group.total.to_string()),
            ("Job", format!("<{}|#{job_id}>", self.job_link(&group.source, job_id))),
            ("First seen", slack_time(group.first_seen)),
            ("Last seen", slack_time(group.last_seen)),
        ];
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": clip(&headline, HEADER_CHARS)}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": code_block(&message)}}),
            json!({"type": "section", "fields": fields.iter().map(|(name, value)| json!({
                "type": "mrkdwn",
                "text": clip(&format!("*{name}*\n{value}"), FIELD_CHARS),
            })).collect::<Vec<_>>()}),
        ];
        if let Some(payload) = job.and_then(|j| j.payload.as_ref()) {
            let payload = clip(&self.redact.json(payload).to_string(), PAYLOAD_CHARS);
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": clip(&format!("Payload: `{}`", escape(&payload)), SECTION_CHARS)}
            ]}));
        }
        blocks.push(open_button(&link, "Open group in Backstop"));
        json!({"text": text, "blocks": blocks})
    }

    /// The periodic digest: further deaths in known groups since `since`.
    pub fn digest(&self, lines: &[DigestLine], rest: DigestRest, since: DateTime<Utc>) -> Value {
        let deaths: i64 = lines.iter().map(|l| l.count).sum::<i64>() + rest.deaths;
        let groups = lines.len() as i64 + rest.groups;
        let env = &self.environment;
        let headline = format!(
            "[{env}] {deaths} more dead job{} in {} known group{}",
            if deaths == 1 { "" } else { "s" },
            groups,
            if groups == 1 { "" } else { "s" }
        );
        let triage = format!("{}/triage", self.public_url);
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": clip(&headline, HEADER_CHARS)}}),
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Since {}", slack_time(since))}]}),
        ];
        for line in lines.iter().take(DIGEST_GROUPS_LISTED) {
            let group = &line.group;
            let message = self.redact.text(&group.message);
            let text = format!(
                "*+{}* <{}|{} ({})> — {} in all, last {}\n{}",
                line.count,
                self.group_link(group.id),
                escape(&group.kind),
                escape(&group.queue),
                group.total,
                slack_time(group.last_seen),
                code_block(&clip(first_line(&message), 1_000)),
            );
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&text, SECTION_CHARS)}}),
            );
        }
        let unlisted = lines.get(DIGEST_GROUPS_LISTED..).unwrap_or_default();
        let rest = DigestRest {
            groups: rest.groups + unlisted.len() as i64,
            deaths: rest.deaths + unlisted.iter().map(|l| l.count).sum::<i64>(),
        };
        if rest.groups > 0 {
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "…and {} more in {} other groups", rest.deaths, rest.groups
            )}]}));
        }
        blocks.push(open_button(&triage, "Open triage in Backstop"));
        debug_assert!(blocks.len() <= MAX_BLOCKS);
        json!({"text": clip(&format!("{}. {triage}", escape(&headline)), SECTION_CHARS), "blocks": blocks})
    }

    /// A queue-health alert (`healthy: false`) or its all-clear, from what the check measured.
    /// `None` for a problem this build does not know (an alert job from a newer console).
    pub fn queue_health(
        &self,
        alert: &QueueHealthAlert,
        healthy: bool,
        since: DateTime<Utc>,
    ) -> Option<Value> {
        let env = &self.environment;
        // Clipped so that a queue name of any length leaves room for the facts.
        let queue = &clip(&alert.queue, 100);
        let number = |name: &str| alert.detail.get(name).and_then(Value::as_i64).unwrap_or(0);
        let waiting = match (number("waiting"), alert.detail.get("waiting_capped").and_then(Value::as_bool)) {
            (n, Some(true)) => format!("{}+", thousands(n)),
            (n, _) => thousands(n),
        };
        let workers = number("workers");
        let workers = format!("{workers} worker{} on the queue", if workers == 1 { "" } else { "s" });
        let oldest = human_duration(number("oldest_wait_secs"));
        let window = human_duration(number("window_secs"));
        let problem = Problem::parse(&alert.problem)?;
        let (headline, facts, link) = match (problem, healthy) {
            (Problem::FallingBehind, false) => (
                format!("[{env}] Queue {queue} is falling behind"),
                format!("Its oldest ready job has waited {oldest}; {waiting} jobs wait, with {workers}."),
                self.queue_link(queue, false),
            ),
            (Problem::NoWorkers, false) => (
                format!("[{env}] No worker serves queue {queue}"),
                format!(
                    "{waiting} jobs wait and no live worker has served the queue since {}. The oldest has waited {oldest}.",
                    slack_time(since)
                ),
                self.queue_link(queue, false),
            ),
            (Problem::DeadSpike, false) => {
                let usual = alert.detail.get("dead_usual").and_then(Value::as_f64).unwrap_or(0.0);
                (
                    format!("[{env}] Dead letters spiking in queue {queue}"),
                    format!(
                        "{} jobs died in the last {window}; usually {usual} in that time.",
                        thousands(number("dead_recent"))
                    ),
                    self.queue_link(queue, true),
                )
            }
            (problem, true) => {
                let lasted = human_duration(number("lasted_secs"));
                let what = match problem {
                    Problem::FallingBehind => "keeping up again",
                    Problem::NoWorkers => "served by a worker again",
                    Problem::DeadSpike => "back to its usual dead letters",
                };
                (
                    format!("[{env}] Resolved: queue {queue} is {what}"),
                    format!("After {lasted}. Now {waiting} jobs wait, with {workers}."),
                    self.queue_link(queue, problem == Problem::DeadSpike),
                )
            }
        };
        // `facts` holds numbers and Slack's date markup only; the queue name (anything at all)
        // is in the headline, escaped for mrkdwn, and plain text in the header block.
        let text = clip(&format!("{}: {facts} {link}", escape(&headline)), SECTION_CHARS);
        Some(json!({
            "text": text,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": clip(&headline, HEADER_CHARS)}},
                {"type": "section", "text": {"type": "mrkdwn", "text": clip(&facts, SECTION_CHARS)}},
                open_button(&link, if problem == Problem::DeadSpike { "Open dead letters in Backstop" } else { "Open queue in Backstop" }),
            ]
        }))
    }

    /// The queue's waiting jobs, or its dead letters.
    fn queue_link(&self, queue: &str, dead: bool) -> String {
        let page = if dead { "dead-letters" } else { "jobs" };
        format!("{}/{page}?queue={}", self.public_url, app::urlencode(queue))
    }

    /// The console's "send test alert": proves the webhook and the links work.
    pub fn test_alert(&self, requested_by: &str) -> Value {
        let text = format!(
            "[{}] Test alert from Backstop, sent by {}. Dead-letter alerts will arrive here.",
            self.environment, requested_by
        );
        json!({
            "text": clip(&escape(&text), SECTION_CHARS),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": clip(&escape(&text), SECTION_CHARS)}},
                open_button(&format!("{}/triage", self.public_url), "Open triage in Backstop"),
            ]
        })
    }
}

fn open_button(url: &str, label: &str) -> Value {
    json!({"type": "actions", "elements": [{
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "url": url,
    }]})
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped; nothing else is interpreted inside a code
/// block, and outside one the worst left is formatting (`*bold*`), never a link or mention.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A code block of `text`, escaped and clipped so the whole block fits a section.
fn code_block(text: &str) -> String {
    // ``` inside would end the block early.
    let inner = escape(text).replace("```", "'''");
    format!("```{}```", clip(&inner, SECTION_CHARS - 6))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `text` cut to at most `max` characters, with "…" when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_owned(),
    }
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 days`.
fn human_duration(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 48 * 3_600 => match (s / 3_600, s % 3_600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        s => format!("{} days", s / 86_400),
    }
}

/// A time Slack shows in each reader's own time zone, with UTC as the fallback.
fn slack_time(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{}>", at.timestamp(), at.format("%Y-%m-%d %H:%M UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MessageContext {
        MessageContext {
            environment: "prod".into(),
            public_url: "https://backstop.example.com".into(),
            redact: RedactKeys::new(&["card_number".to_owned()]),
        }
    }

    fn group(message: &str) -> ErrorGroup {
        let at = "2026-11-25T10:00:00Z".parse().unwrap();
        ErrorGroup {
            id: 7,
            source: "backstop".into(),
            kind: "charge_card".into(),
            queue: "billing".into(),
            message: message.into(),
            sample_error: message.into(),
            sample_job_id: 42,
            total: 3,
            first_seen: at,
            last_seen: at,
            status: "open".into(),
            resolved_at: None,
            reopened_at: None,
            ignored_until: None,
            ignored_until_total: None,
            template: None,
        }
    }

    /// Every text in a message, with the limit Slack applies to it.
    fn texts_with_limits(message: &Value) -> Vec<(String, usize)> {
        let mut out = vec![(message["text"].as_str().unwrap().to_owned(), SECTION_CHARS)];
        for block in message["blocks"].as_array().unwrap() {
            match block["type"].as_str().unwrap() {
                "header" => out.push((block["text"]["text"].as_str().unwrap().into(), HEADER_CHARS)),
                "section" => {
                    if let Some(text) = block["text"]["text"].as_str() {
                        out.push((text.into(), SECTION_CHARS));
                    }
                    for field in block["fields"].as_array().into_iter().flatten() {
                        out.push((field["text"].as_str().unwrap().into(), FIELD_CHARS));
                    }
                }
                "context" => {
                    for element in block["elements"].as_array().unwrap() {
                        out.push((element["text"].as_str().unwrap().into(), SECTION_CHARS));
                    }
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn a_group_alert_has_a_fallback_the_facts_and_a_link_within_limits() {
        let huge = format!("<script>alert('x')</script> & ```{}", "boom ".repeat(2_000));
        let job = AlertJob {
            id: 42,
            attempts: 5,
            max_attempts: 5,
            payload: Some(json!({"card_number": "4242424242424242", "note": "<b>hi</b>"})),
        };
        let message = context().group_alert(Reason::New, &group(&huge), Some(&job));
        let blocks = message["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS);
        for (text, limit) in texts_with_limits(&message) {
            assert!(text.chars().count() <= limit, "{} chars > {limit}", text.chars().count());
        }
        let all = message.to_string();
        assert!(message["text"].as_str().unwrap().starts_with("[prod] New failure: charge_card (billing)"));
        assert!(!all.contains("4242424242424242"), "redacted payload keys never leave");
        assert!(!all.contains("<script>") && !all.contains("<b>"), "database text is escaped");
        assert!(all.contains("&lt;script&gt;"));
        assert!(all.contains("5/5") && all.contains("#42"));
        let button = blocks.last().unwrap();
        assert_eq!(button["elements"][0]["url"], "https://backstop.example.com/triage/7");
    }

    #[test]
    fn a_digest_lists_groups_and_stays_under_fifty_blocks() {
        let lines: Vec<DigestLine> = (0..120)
            .map(|i| DigestLine { group: ErrorGroup { id: i, ..group("gateway timeout") }, count: 10 })
            .collect();
        let message = context().digest(&lines, DigestRest::default(), Utc::now());
        assert!(message["blocks"].as_array().unwrap().len() <= MAX_BLOCKS);
        assert!(
            message["text"].as_str().unwrap().starts_with("[prod] 1200 more dead jobs in 120 known groups")
        );
        assert!(message.to_string().contains("…and 800 more in 80 other groups"));
        for (text, limit) in texts_with_limits(&message) {
            assert!(text.chars().count() <= limit);
        }
    }

    #[test]
    fn secrets_in_errors_and_nested_payload_keys_never_reach_slack() {
        let error = "login failed: password=ERRPASS1 via https://bob:URLPASS2@db.internal Authorization: Bearer BEARER3";
        let job = AlertJob {
            id: 42,
            attempts: 5,
            max_attempts: 5,
            payload: Some(json!({"account": {"auth": {"access_token": "NESTED4"}}, "keys": ["K5"]})),
        };
        let alert = context().group_alert(Reason::New, &group(error), Some(&job)).to_string();
        let digest = context()
            .digest(&[DigestLine { group: group(error), count: 2 }], DigestRest::default(), Utc::now())
            .to_string();
        for (name, message) in [("alert", &alert), ("digest", &digest)] {
            for secret in ["ERRPASS1", "URLPASS2", "BEARER3", "NESTED4", "K5"] {
                assert!(!message.contains(secret), "{name} leaks {secret}: {message}");
            }
        }
        assert!(alert.contains("password=[redacted]"), "what was masked stays readable: {alert}");
    }

    #[test]
    fn queue_health_messages_fit_slack_whatever_the_queue_is_called() {
        let queue = format!("<!channel> *{}* ```", "q".repeat(10_000));
        let alert = |problem: &str| QueueHealthAlert {
            queue: queue.clone(),
            problem: problem.into(),
            detail: json!({"waiting": 12_345_678, "waiting_capped": false, "oldest_wait_secs": 7_500,
                           "workers": 1, "dead_recent": 50, "dead_usual": 2.5, "window_secs": 600,
                           "lasted_secs": 200_000}),
        };
        for problem in ["falling_behind", "no_workers", "dead_spike"] {
            for healthy in [false, true] {
                let message = context().queue_health(&alert(problem), healthy, Utc::now()).unwrap();
                for (text, limit) in texts_with_limits(&message) {
                    assert!(text.chars().count() <= limit, "{problem}: {} > {limit}", text.chars().count());
                }
                let text = message["text"].as_str().unwrap();
                assert!(!text.contains("<!channel>"), "no mention from a queue name: {text}");
            }
        }
        let behind = context().queue_health(&alert("falling_behind"), false, Utc::now()).unwrap();
        assert!(
            behind["text"]
                .as_str()
                .unwrap()
                .contains("waited 2 h 5 min; 12,345,678 jobs wait, with 1 worker")
        );
        let over = context().queue_health(&alert("dead_spike"), true, Utc::now()).unwrap();
        assert!(over["text"].as_str().unwrap().contains("back to its usual dead letters: After 2 days."));
        assert_eq!(
            context().queue_health(&alert("on_fire"), false, Utc::now()),
            None,
            "a newer console's problem"
        );
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("ééééé", 3), "éé…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
