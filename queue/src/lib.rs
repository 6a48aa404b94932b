//! # Backstop: durable PostgreSQL jobs
//!
//! Once [`enqueue`] returns inside a committed transaction, the job will run, even if the
//! process dies a second later. Jobs live in your PostgreSQL (schema `backstop`), are claimed
//! with `FOR UPDATE SKIP LOCKED`, retried with backoff, and moved to a dead-letter table with
//! their whole error history when they run out of attempts.
//!
//! ## Setting up
//!
//! Apply the migrations once at start-up (they only touch schema `backstop`, and record what ran
//! in `backstop._sqlx_migrations`), before or after your own:
//!
//! ```no_run
//! # static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("tests/fixtures/app_migrations");
//! # async fn example(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! // Yours (`sqlx::migrate!()`): history in `_sqlx_migrations`.
//! MIGRATIONS.run(&pool).await?;
//! // Backstop's: history in `backstop._sqlx_migrations`.
//! backstop::MIGRATOR.run(&pool).await?;
//! # Ok(()) }
//! ```
//!
//! Each migrator sees only its own history, so neither meets versions it does not know; both
//! take sqlx's migration lock, so processes starting at once apply each migration once. A
//! database migrated by an older Backstop, which kept its rows in your `_sqlx_migrations`, has
//! them moved on the first run (see [`Migrator::run`]).
//!
//! ## Defining jobs
//!
//! A job is typed arguments with a stable string kind, plus a [`Worker`] that runs it and
//! returns a decision. The kind is stored in every row: never change it once deployed.
//!
//! ```
//! use backstop::{Job, JobContext, JobError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcomeEmail {
//!     user_id: i64,
//! }
//!
//! impl Job for SendWelcomeEmail {
//!     const KIND: &'static str = "send_welcome_email";
//! }
//!
//! struct Mailer;
//!
//! impl Worker for Mailer {
//!     type Job = SendWelcomeEmail;
//!
//!     async fn work(&self, job: SendWelcomeEmail, ctx: JobContext) -> Result<(), JobError> {
//!         println!("attempt {} for user {}", ctx.attempt, job.user_id);
//!         Ok(())
//!     }
//! }
//! ```
//!
//! A worker's `Err` says what happens next: [`JobError::retry`] (also what `?` gives you),
//! [`JobError::retry_at`], [`JobError::fail_now`] (straight to the dead-letter table) or
//! [`JobError::cancel`].
//!
//! ## Enqueuing in a transaction
//!
//! [`enqueue`] takes any executor, so the job commits or rolls back with your own writes:
//! no signup without its welcome email, no welcome email without its signup.
//!
//! ```no_run
//! # use backstop::{Job, NewJob};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct SendWelcomeEmail { user_id: i64 }
//! # impl Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! let mut tx = pool.begin().await?;
//! let user_id: i64 = sqlx::query_scalar("insert into users (email) values ($1) returning id")
//!     .bind("ada@example.com")
//!     .fetch_one(&mut *tx)
//!     .await?;
//! backstop::enqueue(&mut *tx, &SendWelcomeEmail { user_id }).await?;
//! tx.commit().await?; // both rows, or neither
//!
//! // Options: queue, priority, delay or run_at, max attempts, unique key.
//! let later = NewJob::new(&SendWelcomeEmail { user_id })
//!     .delay(std::time::Duration::from_secs(3600))
//!     .unique_key(format!("welcome:{user_id}"));
//! backstop::enqueue(&pool, later).await?;
//! # Ok(()) }
//! ```
//!
//! Many jobs at once go in one statement with [`enqueue_many`]. Workers are woken with one
//! `NOTIFY` per queue per transaction, not one per job.
//!
//! ## Running workers
//!
//! A [`Runner`] works the queues of one process: it claims jobs in batches, runs them with
//! per-queue concurrency, heartbeats so a crashed process's jobs are taken back, and on
//! SIGINT/SIGTERM finishes (or hands back) what it holds.
//!
//! ```no_run
//! # use backstop::{Job, JobContext, JobError, Runner, Worker};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct SendWelcomeEmail { user_id: i64 }
//! # impl Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
//! # struct Mailer;
//! # impl Worker for Mailer { type Job = SendWelcomeEmail;
//! #   async fn work(&self, _: SendWelcomeEmail, _: JobContext) -> Result<(), JobError> { Ok(()) } }
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! Runner::builder(pool)
//!     .register(Mailer)
//!     .queue("default", 24)
//!     .build()?
//!     .run_until_signal()
//!     .await
//! # }
//! ```
//!
//! ## Retries and dead letters
//!
//! By default a job gets 5 attempts, waiting about 30 s, 2 min, 10 min and 1 h between them
//! (±10 % jitter); override per kind with [`Job::retry_policy`]. Every failed attempt is kept
//! as data (time, attempt, worker, message). When attempts run out, the job moves to
//! `backstop.dead_jobs` in the same transaction that records the failure. The [`admin`] module
//! lists, retries, discards and deletes dead jobs.
//!
//! ## Idempotency
//!
//! Jobs run at least once, so sometimes twice. [`claim_idempotency_key`] is the
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING key` pattern: call it in the transaction that
//! records the effect, and do the effect only when it returns `true`.
//!
//! ## Cron
//!
//! [`CronSchedule`]s registered on the runner enqueue a job per tick, once across all worker
//! processes, with a choice for ticks missed during downtime ([`MissedTicks`]).
//!
//! ## Error trackers and tracing
//!
//! Off by default, two cargo features send failures where request failures already go:
//!
//! - `sentry`: an event per failed attempt and per dead letter through the current Sentry
//!   `Hub` (the job kind as transaction; queue, attempt and job id as tags; the payload, masked
//!   by [`redact`], as the request data; the console's job page as the request URL).
//! - `opentelemetry`: the job's `tracing` span exported by your `tracing-opentelemetry`
//!   layer, as a child of the span that enqueued the job (its W3C trace context is stored in
//!   the job row), and job counters and a run-time histogram through the global meter provider.
//!
//! Both start working once the application has set up the SDK; the runner takes a console URL
//! for links and extra secret key names (`RunnerBuilder::console_url`,
//! `RunnerBuilder::redact_keys`). The README's "Error trackers and tracing" says what is sent.

mod cron;
mod duration;
mod enqueue;
mod error;
mod idempotency;
mod job;
mod migrate;
mod retry;
mod rows;
mod runtime;
mod sql;
mod state;
#[cfg(any(feature = "sentry", feature = "opentelemetry"))]
mod telemetry;
mod text;

pub mod admin;
pub mod graphile;
pub mod redact;
#[cfg(feature = "testing")]
pub mod testing;
pub mod triage;

pub use cron::{CronSchedule, MissedTicks};
pub use enqueue::{Client, DEFAULT_MAX_PAYLOAD_BYTES, Enqueued, enqueue, enqueue_many};
pub use error::{Error, Result};
pub use idempotency::claim_idempotency_key;
pub use job::{Decision, Job, JobContext, JobError, JobId, NewJob, Worker};
pub use migrate::{MIGRATOR, MigrationStatus, Migrator};
pub use retry::RetryPolicy;
pub use runtime::{DEFAULT_CONCURRENCY, Runner, RunnerBuilder};
pub use state::{JobState, UnknownJobState};
pub use text::{
    MAX_ERROR_MESSAGE_BYTES, MAX_KEPT_ATTEMPT_ERRORS, MAX_KEY_BYTES, MAX_NAME_BYTES, MAX_PAYLOAD_DEPTH,
};
