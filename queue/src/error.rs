//! The library's one error type.

/// Everything that can go wrong when talking to Backstop (as opposed to a job failing, which is
/// a [`JobError`](crate::JobError) returned by your worker).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or could not be reached. Transient errors (a restart, a dropped
    /// connection) are worth retrying; the worker runtime does so by itself.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying Backstop's migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The job's payload could not be turned into JSON.
    #[error("could not serialize the payload of a `{kind}` job: {reason}")]
    Serialize {
        /// The job kind.
        kind: String,
        /// What serde said.
        reason: String,
    },

    /// The payload is bigger than the client's limit (see
    /// [`Client::max_payload_bytes`](crate::Client::max_payload_bytes)). Nothing was written.
    #[error("the payload of a `{kind}` job is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The job kind.
        kind: String,
        /// The serialized size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The payload holds a NUL character (`\u0000`) in a string or a key, which PostgreSQL's
    /// `jsonb` cannot store. Nothing was written.
    #[error(
        "the payload of a `{kind}` job cannot be stored: PostgreSQL refuses the NUL character (\\u0000), found in {location}"
    )]
    UnstorablePayload {
        /// The job kind.
        kind: String,
        /// Where in the payload: a path such as `$.user.names[2]`, or `a key of $.user`.
        location: String,
    },

    /// The payload nests arrays and objects deeper than
    /// [`MAX_PAYLOAD_DEPTH`](crate::MAX_PAYLOAD_DEPTH) levels, more than serde_json reads, so no
    /// worker could read it. Nothing was written.
    #[error(
        "the payload of a `{kind}` job nests {depth} levels deep; workers read at most {limit} (serde_json's limit), so it could never run"
    )]
    PayloadTooDeep {
        /// The job kind.
        kind: String,
        /// How deep it nests.
        depth: usize,
        /// The most allowed.
        limit: usize,
    },

    /// A request asked for more than one call does (see
    /// [`admin::MAX_IDS_PER_ACTION`](crate::admin::MAX_IDS_PER_ACTION) and
    /// [`admin::MAX_COUNT`](crate::admin::MAX_COUNT)). Nothing was done: split the request.
    #[error("{what}: {given} is over the limit of {limit} per call")]
    OverLimit {
        /// What was too many.
        what: &'static str,
        /// How many were asked for.
        given: u64,
        /// The most one call takes.
        limit: u64,
    },

    /// A job option is out of range (for example `max_attempts(0)`).
    #[error("invalid job option: {0}")]
    InvalidOption(String),

    /// A [`testing`](crate::testing) helper could not do what it was asked: a payload that
    /// does not read as the job type, a job that was not runnable.
    #[cfg(feature = "testing")]
    #[error("testing helper: {0}")]
    Testing(String),

    /// A cron expression did not parse.
    #[error("invalid cron expression {expression:?} for schedule `{name}`: {reason}")]
    InvalidCron {
        /// The schedule's name.
        name: String,
        /// The expression as given.
        expression: String,
        /// What the parser said.
        reason: String,
    },
}

impl Error {
    /// Maps the database's check constraints on `backstop.jobs` to a readable error, by
    /// constraint name, so callers never have to parse messages.
    pub(crate) fn from_insert(err: sqlx::Error) -> Self {
        let constraint = err.as_database_error().and_then(|e| e.constraint()).map(str::to_owned);
        match constraint.as_deref() {
            Some("jobs_max_attempts_positive") => {
                Self::InvalidOption("max_attempts must be at least 1".into())
            }
            Some("jobs_kind_not_empty") => Self::InvalidOption("a job kind must not be empty".into()),
            Some("jobs_queue_not_empty") => Self::InvalidOption("a queue name must not be empty".into()),
            _ => Self::Database(err),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
