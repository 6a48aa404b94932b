//! When a failed job runs again.

use std::time::Duration;

/// How many times a job is tried and how long to wait between tries.
///
/// The default follows the background-jobs field notes the project started from (a
/// practitioner's write-up of running queues on PostgreSQL, kept outside this repository):
/// 5 attempts, with waits near 30 s, 2 min, 10 min and 1 h, each moved by up to ±10 % of
/// jitter so a thousand jobs that failed together do not all come back in the same second.
///
/// ```
/// use std::time::Duration;
/// use backstop::RetryPolicy;
///
/// // A webhook that is usually back within a minute: retry quickly, give up after 8 tries.
/// let policy = RetryPolicy::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(600))
///     .max_attempts(8);
/// assert_eq!(policy.attempts(), 8);
/// assert_eq!(policy.base_delay(1), Duration::from_secs(5));
/// assert_eq!(policy.base_delay(3), Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    jitter: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Backoff {
    /// The n-th retry waits `delays[n-1]`; past the end, the last delay repeats.
    Schedule(Vec<Duration>),
    Exponential {
        initial: Duration,
        factor: f64,
        max: Duration,
    },
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::schedule(vec![
            Duration::from_secs(30),
            Duration::from_secs(120),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        ])
    }
}

impl RetryPolicy {
    /// Waits the given delays in order (the last one repeats), 5 attempts.
    ///
    /// # Panics
    /// If `delays` is empty.
    pub fn schedule(delays: Vec<Duration>) -> Self {
        assert!(!delays.is_empty(), "a retry schedule needs at least one delay");
        Self { max_attempts: 5, backoff: Backoff::Schedule(delays), jitter: 0.1 }
    }

    /// Waits `initial`, then `initial * factor`, and so on, never more than `max`; 5 attempts.
    pub fn exponential(initial: Duration, factor: f64, max: Duration) -> Self {
        Self { max_attempts: 5, backoff: Backoff::Exponential { initial, factor, max }, jitter: 0.1 }
    }

    /// Sets how many attempts a job gets in all (the first run included). At least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the jitter as a fraction of the delay (0.1 = ±10 %), clamped to 0..=1.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// How many attempts a job gets in all.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay after failed attempt number `attempt` (1-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let n = attempt.max(1);
        match &self.backoff {
            Backoff::Schedule(delays) => {
                let index = usize::try_from(n - 1).unwrap_or(usize::MAX).min(delays.len() - 1);
                delays[index]
            }
            Backoff::Exponential { initial, factor, max } => {
                let exponent = i32::try_from(n - 1).unwrap_or(i32::MAX);
                let secs = initial.as_secs_f64() * factor.powi(exponent);
                if secs.is_finite() && secs < max.as_secs_f64() {
                    Duration::from_secs_f64(secs)
                } else {
                    *max
                }
            }
        }
    }

    /// The delay after failed attempt `attempt`, with jitter applied. Saturates at
    /// `Duration::MAX` (a schedule of `Duration::MAX` means "retry never, in practice").
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let spread = (rand::random::<f64>() * 2.0 - 1.0) * self.jitter;
        Duration::try_from_secs_f64((base * (1.0 + spread)).max(0.0)).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_follows_the_field_notes() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts(), 5);
        let minutes: Vec<u64> = (1..=4).map(|a| policy.base_delay(a).as_secs()).collect();
        assert_eq!(minutes, [30, 120, 600, 3600]);
        // Past the schedule the last delay repeats rather than panicking.
        assert_eq!(policy.base_delay(9).as_secs(), 3600);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let policy = RetryPolicy::default();
        let delays: Vec<f64> = (0..200).map(|_| policy.delay(1).as_secs_f64()).collect();
        assert!(delays.iter().all(|d| (27.0..=33.0).contains(d)), "{delays:?}");
        let distinct = delays.iter().map(|d| (d * 1000.0) as u64).collect::<std::collections::HashSet<_>>();
        assert!(distinct.len() > 100, "jitter should spread retries, got {} distinct", distinct.len());
    }

    #[test]
    fn exponential_caps_at_max() {
        let p = RetryPolicy::exponential(Duration::from_secs(1), 10.0, Duration::from_secs(60));
        assert_eq!(p.base_delay(1), Duration::from_secs(1));
        assert_eq!(p.base_delay(2), Duration::from_secs(10));
        assert_eq!(p.base_delay(3), Duration::from_secs(60));
        assert_eq!(p.base_delay(400), Duration::from_secs(60));
    }

    #[test]
    fn the_longest_delays_saturate_instead_of_panicking() {
        let p = RetryPolicy::schedule(vec![Duration::MAX]);
        assert!(p.delay(1) >= Duration::from_secs(u64::MAX / 2));
        let p = RetryPolicy::exponential(Duration::MAX, f64::MAX, Duration::MAX);
        assert!(p.delay(3) >= Duration::from_secs(u64::MAX / 2));
    }

    #[test]
    fn zero_jitter_is_exact() {
        let p = RetryPolicy::default().jitter(0.0);
        assert_eq!(p.delay(2), Duration::from_secs(120));
    }
}
