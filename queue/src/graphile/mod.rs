//! graphile-worker beside Backstop: find its schema, read its jobs in the console's states, act
//! on them only through its own admin functions, and bring its permanently failed jobs into
//! Backstop's error groups and alerts.
//!
//! Nothing here changes graphile-worker's schema (no triggers, no indexes) or holds a lock on
//! its tables: every read is one short statement (the failure poller's reads a bounded slice),
//! every action one of its functions (`reschedule_jobs`, `permanently_fail_jobs`,
//! `complete_jobs`), which skip jobs a worker has locked. Backstop's own bookkeeping about them
//! lives in the `backstop` schema.
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! use backstop::graphile;
//!
//! if let Some(schema) = graphile::detect(&pool).await? {
//!     println!("graphile-worker {} (full support: {})", schema.version_label(), schema.supported);
//!     let failed = graphile::GraphileSearch {
//!         state: Some(backstop::JobState::Dead),
//!         ..graphile::GraphileSearch::default()
//!     };
//!     let dead = graphile::search(&pool, &schema, &failed, None, 50).await?;
//!     println!("{} permanently failed", dead.len());
//! }
//! # Ok(()) }
//! ```

mod actions;
mod detect;
mod jobs;
mod poll;

pub use actions::{GraphileAction, GraphileStep, act_on_graphile_jobs, act_on_graphile_matching_step};
pub use detect::{Flavour, GraphileSchema, SUPPORTED_NODE_MIGRATIONS, detect};
pub use jobs::{GraphileJob, GraphileSearch, count, graphile_job, search};
pub use poll::{History, Poll, SLICE, record_failures};

/// graphile-worker's jobs are shown in Backstop's states ([`GraphileJob::state`] says how its
/// columns map to them): this is [`JobState`](crate::JobState) under its earlier name.
pub use crate::JobState as GraphileState;

/// The source name graphile-worker's failures carry in error groups.
pub const SOURCE: &str = "graphile_worker";
