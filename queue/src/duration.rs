//! Durations from configuration, saturated to what chrono and PostgreSQL can hold.
//!
//! `Duration::MAX` reads naturally as "never" (`idempotency_key_max_age(Duration::MAX)`: keep
//! keys for ever), but chrono panics on timestamps past year 262,143, PostgreSQL refuses
//! intervals past 178 million years and timestamps past 294,276 AD, and
//! `Duration::from_secs_f64` panics past `u64::MAX` seconds. Every configured duration that
//! reaches a timestamp or the database goes through [`saturate`] first.

use std::time::Duration;

/// Longer than any job, retry, heartbeat or retention anyone means: 100 years. Durations
/// beyond it are treated as it.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `duration`, or [`FOREVER`] if longer.
pub(crate) fn saturate(duration: Duration) -> Duration {
    duration.min(FOREVER)
}

/// [`saturate`]d, as a chrono duration (which cannot fail: 100 years fits).
pub(crate) fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(saturate(duration)).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_saturates_and_stays_in_range() {
        let now = chrono::Utc::now();
        let forever = to_chrono(Duration::MAX);
        assert_eq!(forever, to_chrono(FOREVER));
        // Neither direction overflows.
        assert!(now - forever < now && now + forever > now);
        assert_eq!(saturate(Duration::from_secs(5)), Duration::from_secs(5));
    }
}
