//! Server functions: the console's API. On the server they run directly (during SSR) or behind
//! `POST /api/<endpoint>`; in the browser the same call becomes that HTTP request.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the server says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The version of the server binary (the `app` crate's version: they ship together).
    pub version: String,
    /// The server's clock, UTC, to the second.
    pub server_time: String,
}

/// The server's version and clock. Served at `POST /api/console_status`. (The macro also
/// defines a struct `ConsoleStatus`: the call's arguments, here none.)
#[server(endpoint = "console_status")]
pub async fn console_status() -> Result<ServerStatus, ServerFnError> {
    Ok(ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        server_time: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    })
}
