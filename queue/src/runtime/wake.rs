//! How the listener wakes a queue's fetcher and urgent lane: the wake-up itself, and how
//! urgent the work it announces is, so a fetcher partway through a backlog knows whether to
//! look back at the head of the queue (see `claim_cursor`), and the urgent lane whether the
//! work is more urgent than what the fetcher last claimed (see `urgent_lane`).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::sync::Notify;

/// No priority announced since the fetcher last looked.
const NOTHING: i32 = i32::MAX;

pub(super) struct Wake {
    notify: Notify,
    /// The most urgent (lowest) priority announced since the fetcher last took it.
    most_urgent: AtomicI32,
    /// Whether something was announced without a priority since then.
    unspecified: AtomicBool,
    /// The urgent lane's own wake-up and most urgent announced priority, so that neither
    /// task takes the other's announcements.
    urgent: Notify,
    urgent_most: AtomicI32,
    /// The priority of the last job the fetcher claimed (`NOTHING` before its first).
    claimed: AtomicI32,
}

/// What was announced since the fetcher last looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Announced {
    /// The most urgent priority announced (lower runs first).
    pub most_urgent: Option<i16>,
    /// Something arrived or changed without saying its priority (pause, run now, retry, a
    /// reconnected listener): look from the head.
    pub unspecified: bool,
}

impl Wake {
    pub fn new() -> Self {
        Self {
            notify: Notify::new(),
            most_urgent: AtomicI32::new(NOTHING),
            unspecified: AtomicBool::new(false),
            urgent: Notify::new(),
            urgent_most: AtomicI32::new(NOTHING),
            claimed: AtomicI32::new(NOTHING),
        }
    }

    /// Runnable jobs of `priority` arrived (`None`: something arrived or changed, no priority
    /// said). Wakes the fetcher if it sleeps, and otherwise is kept for its next claim.
    pub fn announce(&self, priority: Option<i16>) {
        match priority {
            Some(priority) => {
                self.most_urgent.fetch_min(i32::from(priority), Ordering::AcqRel);
                self.urgent_most.fetch_min(i32::from(priority), Ordering::AcqRel);
                self.urgent.notify_one();
            }
            None => self.unspecified.store(true, Ordering::Release),
        }
        self.notify.notify_one();
    }

    /// The most urgent priority announced since the last call, waiting for one if none was.
    pub async fn next_priority(&self) -> i16 {
        loop {
            if let Some(announced) = priority(self.urgent_most.swap(NOTHING, Ordering::AcqRel)) {
                return announced;
            }
            // A permit stored by an announcement made since the swap returns at once.
            self.urgent.notified().await;
        }
    }

    /// Records the priority of the last job the fetcher claimed.
    pub fn set_claimed(&self, priority: Option<i16>) {
        self.claimed.store(priority.map_or(NOTHING, i32::from), Ordering::Release);
    }

    /// The priority of the last job the fetcher claimed, if it claimed any.
    pub fn claimed(&self) -> Option<i16> {
        priority(self.claimed.load(Ordering::Acquire))
    }

    /// Returns once an announcement arrives (at once if one arrived since the last call).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// What was announced since the last call, clearing it.
    pub fn take(&self) -> Announced {
        Announced {
            most_urgent: priority(self.most_urgent.swap(NOTHING, Ordering::AcqRel)),
            unspecified: self.unspecified.swap(false, Ordering::AcqRel),
        }
    }
}

fn priority(most_urgent: i32) -> Option<i16> {
    // Announced priorities are i16s, so anything else is `NOTHING`.
    i16::try_from(most_urgent).ok()
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
        assert_eq!(wake.take(), Announced::default());
        wake.announce(Some(5));
        wake.announce(Some(-3));
        wake.announce(Some(0));
        let announced = Announced { most_urgent: Some(-3), unspecified: false };
        assert_eq!(wake.take(), announced);
        assert_eq!(wake.take(), Announced::default(), "taking it clears it");
        wake.announce(Some(i16::MIN));
        assert_eq!(wake.take().most_urgent, Some(i16::MIN));
        wake.announce(Some(i16::MAX));
        assert_eq!(wake.take().most_urgent, Some(i16::MAX));
    }

    #[test]
    fn an_announcement_without_a_priority_does_not_hide_one_with() {
        let wake = Wake::new();
        wake.announce(None);
        wake.announce(Some(-1));
        assert_eq!(wake.take(), Announced { most_urgent: Some(-1), unspecified: true });
        wake.announce(None);
        assert_eq!(wake.take(), Announced { most_urgent: None, unspecified: true });
    }

    #[tokio::test]
    async fn the_urgent_lane_and_the_fetcher_each_see_every_announced_priority() {
        let wake = Wake::new();
        wake.announce(Some(4));
        wake.announce(Some(-2));
        wake.announce(None);
        assert_eq!(wake.next_priority().await, -2, "the most urgent since the lane last looked");
        assert_eq!(wake.take().most_urgent, Some(-2), "the lane took nothing from the fetcher");
        let waiting = wake.next_priority();
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "nothing announced since");
        wake.announce(None);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "no priority, nothing for the lane");
        wake.announce(Some(7));
        assert_eq!(waiting.await, 7);
    }

    #[test]
    fn the_claimed_priority_is_what_the_fetcher_last_set() {
        let wake = Wake::new();
        assert_eq!(wake.claimed(), None);
        wake.set_claimed(Some(i16::MIN));
        assert_eq!(wake.claimed(), Some(i16::MIN));
        wake.set_claimed(Some(i16::MAX));
        assert_eq!(wake.claimed(), Some(i16::MAX));
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
