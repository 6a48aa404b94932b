//! Dead-letter triage: dead jobs grouped by the problem their error shows, so a thousand
//! failures of one bug are one line to act on, and one alert, not a thousand.
//!
//! Grouping learns which parts of a message vary ([`Signature`] masks the shapes that always
//! do, [`place`] learns the rest as wildcards of a [`Template`]). It happens in the transaction
//! that dead-letters a job: a group's counts are never behind its dead jobs, and the Slack alert
//! a new group calls for is enqueued as a Backstop job in that same transaction (the
//! `backstop.record_error_arrival` SQL function). When a template widens over another group's,
//! the younger group merges into the older one, which keeps its id; the younger id redirects.
//! An operator can merge two groups ([`merge_groups`]) or split one by what varies at one of
//! its wildcards ([`split_group`]). Cancelled jobs are not failures and join no group. [`Grouper`] runs the same decisions in
//! memory (`backstop group-errors`).
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! use backstop::triage::{self, GroupFilter};
//!
//! for group in triage::error_groups(&pool, &GroupFilter::default()).await? {
//!     println!("{} x{}: {}", group.kind, group.total, group.message);
//! }
//! # Ok(()) }
//! ```

mod alerts;
mod grouper;
mod groups;
mod learn;
mod signature;
mod split;
mod template;

pub(crate) use alerts::delete_alerts_enqueued_here;
pub use alerts::{
    ALERT_KIND, ALERT_MAX_ATTEMPTS, ALERT_QUEUE, ALERT_ROUTING_WINDOW_SECS, AlertWebhook, DIGEST_KIND,
    TEST_ALERT_MAX_ATTEMPTS, WEBHOOK_STALE_AFTER_SECS, alert_webhooks, console, enqueue_test_alerts,
    waiting_alert_jobs,
};

pub use grouper::Grouper;
pub use groups::{
    ErrorGroup, GroupArrivals, GroupFilter, GroupStatus, NEW_GROUP_HOURS, error_group, error_groups,
    group_arrivals, ignore_group, reopen_group, resolve_group,
};
pub(crate) use learn::record_dead_job_arrival;
pub use learn::{Arrival, Regrouped, merge_groups, record_arrival, regroup};
pub use signature::{LINE_BREAK, MAX_TOKENS, Signature};
pub use split::{MAX_SPLIT_JOBS, MAX_SPLIT_VALUES, Split, SplitGroup, split_group};
pub use template::{Learned, MAX_CANDIDATES, Placement, SIMILARITY_THRESHOLD, Template, WILDCARD, place};
