//! Backstop's web console as a library: [`Console`] builds an axum [`Router`](axum::Router) that a
//! host application nests under a path of its own (`/admin/jobs`), with the host's own
//! authentication deciding each request's role. The `backstop` binary (`backstop serve`) is
//! built on the same crate.
//!
//! See the README's "Mount the console in your app" and `examples/mounted.rs`.

mod mount;

pub use app::model::{CurrentUser, Role};
pub use assets::BuildMismatch;
pub use mount::{Console, ConsoleBuilder, MountError};

// The rest is the `backstop` binary's, public only for it.
#[doc(hidden)]
pub mod alerts;
mod assets;
mod auth;
#[doc(hidden)]
pub mod database;
#[doc(hidden)]
pub mod demo;
mod embedded_pg;
#[doc(hidden)]
pub mod group_errors;
mod security;
#[doc(hidden)]
pub mod shutdown;
mod sources;
mod sso;
#[cfg(test)]
mod test_support;
#[doc(hidden)]
pub mod web;
#[doc(hidden)]
pub mod with_postgres;
