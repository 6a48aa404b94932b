//! The states a person sees a job in: the one definition of their names.
//!
//! This file is also compiled into the console's browser build (`app/src/model.rs` includes it
//! by path, since the browser cannot link this crate's database dependencies), so it uses
//! nothing but `std` and `serde`, and links to nothing else in the crate.
//!
//! How each job table's columns map to a state is written once per table, in Rust and in SQL,
//! beside the rows: `JobRecord::state` and `sql::live_state_is!` for Backstop's jobs,
//! `GraphileJob::state` and `graphile_state_is!` for graphile-worker's (tests check that each
//! pair agrees on jobs in every state).

use std::fmt;
use std::str::FromStr;

/// The states a person sees. Backstop's dead jobs are in its dead-letter table;
/// graphile-worker's stay in its jobs table, out of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`, never tried.
    Scheduled,
    /// Ready to run.
    Queued,
    /// A worker holds it.
    Running,
    /// Failed at least once, waiting for its next attempt.
    Retrying,
    /// Out of attempts (or failed for good, or cancelled).
    Dead,
}

impl JobState {
    /// Every state, in the order a job moves through them.
    pub const ALL: [JobState; 5] =
        [JobState::Scheduled, JobState::Queued, JobState::Running, JobState::Retrying, JobState::Dead];

    /// Its name in SQL, URLs and JSON: `scheduled`, `queued`, `running`, `retrying`, `dead`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a job state's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownJobState(pub String);

impl fmt::Display for UnknownJobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a job state (scheduled, queued, running, retrying or dead)", self.0)
    }
}

impl std::error::Error for UnknownJobState {}

impl FromStr for JobState {
    type Err = UnknownJobState;

    /// Reads the name [`JobState::as_str`] writes.
    fn from_str(name: &str) -> Result<JobState, UnknownJobState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownJobState(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_survives_its_name() {
        for state in JobState::ALL {
            let name = state.as_str();
            assert_eq!(name.parse::<JobState>(), Ok(state));
            assert_eq!(state.to_string(), name);
            // serde writes the same name.
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<JobState>(&json).unwrap(), state);
        }
        assert!("Dead".parse::<JobState>().is_err());
        assert!("".parse::<JobState>().is_err());
    }

    #[test]
    fn all_lists_every_state_once() {
        // No wildcard: a new state fails to compile here until it is in ALL.
        let position = |state: JobState| match state {
            JobState::Scheduled => 0,
            JobState::Queued => 1,
            JobState::Running => 2,
            JobState::Retrying => 3,
            JobState::Dead => 4,
        };
        for (i, state) in JobState::ALL.into_iter().enumerate() {
            assert_eq!(position(state), i);
        }
    }
}
