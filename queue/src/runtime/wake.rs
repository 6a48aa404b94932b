//! How the listener wakes a queue's fetcher: the wake-up itself, and how urgent the work it
//! announces is, so a fetcher partway through a backlog knows whether to look back at the head
//! of the queue (see `claim_cursor`).

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::sync::Notify;

/// No announcement since the fetcher last looked.
const NOTHING: i32 = i32::MAX;
/// An announcement that did not say its priority: look from the head.
const UNKNOWN: i32 = i32::MIN;

pub(super) struct Wake {
    notify: Notify,
    /// The most urgent (lowest) priority announced since the fetcher last took it.
    most_urgent: AtomicI32,
}

impl Wake {
    pub fn new() -> Self {
        Self { notify: Notify::new(), most_urgent: AtomicI32::new(NOTHING) }
    }

    /// Runnable jobs of `priority` arrived (`None`: something arrived or changed, no priority
    /// said). Wakes the fetcher if it sleeps, and otherwise is kept for its next claim.
    pub fn announce(&self, priority: Option<i16>) {
        self.most_urgent.fetch_min(priority.map_or(UNKNOWN, i32::from), Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// Returns once an announcement arrives (at once if one arrived since the last call).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The most urgent announcement since the last call: `None` if there was none,
    /// `Some(Urgency::Unknown)` if one did not say its priority.
    pub fn take_most_urgent(&self) -> Option<Urgency> {
        match self.most_urgent.swap(NOTHING, Ordering::AcqRel) {
            NOTHING => None,
            UNKNOWN => Some(Urgency::Unknown),
            // Announced priorities are i16s, so this always fits.
            priority => Some(Urgency::Priority(i16::try_from(priority).unwrap_or(i16::MIN))),
        }
    }
}

/// How urgent announced work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// Jobs of this priority (lower runs first).
    Priority(i16),
    /// Not said: treat as more urgent than anything.
    Unknown,
}

/// Reads a notification payload: `<priority>:<queue>` from an enqueue, or a bare queue name
/// from everything else (and from processes older than the priority in the payload). A payload
/// that is exactly a known queue's name is that queue, whatever it looks like.
pub(super) fn parse_payload(payload: &str, is_queue: impl Fn(&str) -> bool) -> (&str, Option<i16>) {
    if is_queue(payload) {
        return (payload, None);
    }
    match payload.split_once(':') {
        Some((priority, queue)) => match priority.parse::<i16>() {
            Ok(priority) => (queue, Some(priority)),
            Err(_) => (payload, None),
        },
        None => (payload, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_urgent_announcement_wins_until_taken() {
        let wake = Wake::new();
        assert_eq!(wake.take_most_urgent(), None);
        wake.announce(Some(5));
        wake.announce(Some(-3));
        wake.announce(Some(0));
        assert_eq!(wake.take_most_urgent(), Some(Urgency::Priority(-3)));
        assert_eq!(wake.take_most_urgent(), None, "taking it clears it");
        wake.announce(Some(i16::MIN));
        assert_eq!(wake.take_most_urgent(), Some(Urgency::Priority(i16::MIN)));
        wake.announce(Some(i16::MAX));
        wake.announce(None);
        assert_eq!(wake.take_most_urgent(), Some(Urgency::Unknown), "an unsaid priority beats any said one");
    }

    #[test]
    fn payloads_name_a_queue_and_maybe_a_priority() {
        let known = |q: &str| ["mail", "7:odd", "a:b"].contains(&q);
        assert_eq!(parse_payload("0:mail", known), ("mail", Some(0)));
        assert_eq!(parse_payload("-32768:mail", known), ("mail", Some(i16::MIN)));
        assert_eq!(parse_payload("mail", known), ("mail", None));
        assert_eq!(parse_payload("7:odd", known), ("7:odd", None), "an exact queue name wins");
        assert_eq!(parse_payload("3:7:odd", known), ("7:odd", Some(3)));
        assert_eq!(parse_payload("a:b", known), ("a:b", None));
        assert_eq!(parse_payload("x:a:b", known), ("x:a:b", None), "not a priority: the whole payload");
        assert_eq!(parse_payload("99999:mail", known), ("99999:mail", None), "out of i16 range");
        assert_eq!(parse_payload("", known), ("", None));
    }
}
