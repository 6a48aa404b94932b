//! Putting jobs on the queue, inside the caller's transaction.

use std::collections::HashMap;

use sqlx::PgExecutor;

use crate::job::{JobId, NewJob};
use crate::sql;
use crate::text::{MAX_KEY_BYTES, MAX_NAME_BYTES, check_length};
use crate::{Error, Result};

/// Payloads bigger than this are refused by default. Jobs should carry ids, not documents:
/// a large payload is copied on every claim and kept in the dead-letter table.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// What happened to one enqueued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job was written.
    Created(JobId),
    /// A live job already holds the unique key; nothing was written. Its id, when it could
    /// be read (a job holding the key that committed during this call is not visible yet).
    Duplicate(Option<JobId>),
}

impl Enqueued {
    /// The new job's id, if one was created.
    pub fn created(self) -> Option<JobId> {
        match self {
            Self::Created(id) => Some(id),
            Self::Duplicate(_) => None,
        }
    }
}

/// Enqueue settings. [`enqueue`] and [`enqueue_many`] use [`Client::default`].
#[derive(Debug, Clone)]
pub struct Client {
    max_payload_bytes: usize,
}

impl Default for Client {
    fn default() -> Self {
        Self { max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES }
    }
}

impl Client {
    /// A client with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse payloads whose JSON is longer than `bytes` (default
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`]).
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Enqueues one job through `executor`: a pool, a connection, or `&mut *tx` so the job
    /// commits or rolls back with the caller's own writes.
    pub async fn enqueue<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        job: impl Into<NewJob>,
    ) -> Result<Enqueued> {
        let job = job.into();
        let unique_key = job.unique_key.clone();
        let rows = self.insert(executor, vec![job]).await?;
        let created = rows.iter().find(|r| r.created).map(|r| r.id);
        Ok(match created {
            Some(id) => Enqueued::Created(id),
            None => Enqueued::Duplicate(rows.iter().find(|r| r.unique_key == unique_key).map(|r| r.id)),
        })
    }

    /// Enqueues many jobs in one statement (and one round trip). Returns one [`Enqueued`] per
    /// input, in order. Two jobs in the same batch with the same unique key: the first wins.
    pub async fn enqueue_many<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        jobs: impl IntoIterator<Item = NewJob>,
    ) -> Result<Vec<Enqueued>> {
        let jobs: Vec<NewJob> = jobs.into_iter().collect();
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Option<String>> = jobs.iter().map(|j| j.unique_key.clone()).collect();
        let rows = self.insert(executor, jobs).await?;

        // Jobs without a key are always created, and come back in insertion order; jobs with a
        // key are matched by key.
        let mut created_by_key = HashMap::new();
        let mut existing_by_key = HashMap::new();
        let mut created_without_key = Vec::new();
        for row in rows {
            match (row.unique_key, row.created) {
                (Some(key), true) => drop(created_by_key.insert(key, row.id)),
                (Some(key), false) => drop(existing_by_key.insert(key, row.id)),
                (None, _) => created_without_key.push(row.id),
            }
        }
        created_without_key.sort_unstable();
        let mut without_key = created_without_key.into_iter();
        Ok(keys
            .into_iter()
            .map(|key| match key {
                None => Enqueued::Created(without_key.next().expect("every keyless job is inserted")),
                Some(key) => match created_by_key.remove(&key) {
                    Some(id) => Enqueued::Created(id),
                    None => Enqueued::Duplicate(existing_by_key.get(&key).copied()),
                },
            })
            .collect())
    }

    async fn insert<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<sql::InsertedJob>> {
        let mut columns = sql::JobInsertColumns::default();
        // The enqueuing span's trace context, for the job's span to join (read once: every
        // job of the call is enqueued in the same span).
        #[cfg(feature = "opentelemetry")]
        let trace_context = crate::telemetry::otel::current_trace_context();
        for job in jobs {
            let payload =
                job.payload.map_err(|reason| Error::Serialize { kind: job.kind.clone(), reason })?;
            if payload.len() > self.max_payload_bytes {
                return Err(Error::PayloadTooLarge {
                    kind: job.kind,
                    size: payload.len(),
                    limit: self.max_payload_bytes,
                });
            }
            if let Some(location) = crate::text::json_nul_location(&payload) {
                return Err(Error::UnstorablePayload { kind: job.kind, location });
            }
            crate::text::check_payload_depth(&job.kind, &payload)?;
            // PostgreSQL's text columns refuse NUL too: say which option, not "invalid byte
            // sequence".
            for (what, value) in [
                ("job kind", Some(&job.kind)),
                ("queue name", Some(&job.queue)),
                ("unique key", job.unique_key.as_ref()),
            ] {
                if value.is_some_and(|v| v.contains('\0')) {
                    return Err(Error::InvalidOption(format!(
                        "a {what} must not contain the NUL character (a `{}` job)",
                        job.kind.replace('\0', "\u{FFFD}")
                    )));
                }
            }
            check_length("a job kind", &job.kind, MAX_NAME_BYTES)?;
            check_length("a queue name", &job.queue, MAX_NAME_BYTES)?;
            if let Some(key) = &job.unique_key {
                check_length("a unique key", key, MAX_KEY_BYTES)?;
            }
            if job.max_attempts < 1 {
                return Err(Error::InvalidOption(format!(
                    "max_attempts must be at least 1 (got {} for a `{}` job)",
                    job.max_attempts, job.kind
                )));
            }
            columns.queues.push(job.queue);
            columns.kinds.push(job.kind);
            columns.payloads.push(payload);
            columns.priorities.push(job.priority);
            columns.run_ats.push(job.run_at);
            columns.delays_secs.push(job.delay.map(|d| crate::duration::saturate(d).as_secs_f64()));
            columns.max_attempts.push(job.max_attempts);
            columns.unique_keys.push(job.unique_key);
            #[cfg(feature = "opentelemetry")]
            columns.trace_contexts.push(trace_context.clone());
        }
        sql::job_insert_many(executor, &columns).await.map_err(Error::from_insert)
    }
}

/// Enqueues one job with the default [`Client`]. See [`Client::enqueue`].
pub async fn enqueue<'e, E: PgExecutor<'e>>(executor: E, job: impl Into<NewJob>) -> Result<Enqueued> {
    Client::default().enqueue(executor, job).await
}

/// Enqueues many jobs in one statement with the default [`Client`]. See
/// [`Client::enqueue_many`].
pub async fn enqueue_many<'e, E: PgExecutor<'e>>(
    executor: E,
    jobs: impl IntoIterator<Item = NewJob>,
) -> Result<Vec<Enqueued>> {
    Client::default().enqueue_many(executor, jobs).await
}
