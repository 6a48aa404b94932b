//! Which graphile-worker schema a database has, and what this connection's role may see.

use std::ops::RangeInclusive;

use sqlx::PgExecutor;

use crate::{Result, sql};

/// The migrations of graphile-worker 0.16 to 0.18 (the Node package numbers them 1, 2, ...):
/// from 16 on, jobs live in `_private_jobs` behind the admin functions Backstop calls. The
/// releases end at 18 (0.16.x), 19 (0.17.x) and 20 (0.18.0), as read from the npm packages.
pub const SUPPORTED_NODE_MIGRATIONS: RangeInclusive<i64> = 16..=20;

/// The Node release a schema's last migration belongs to.
fn node_release(migration: &str) -> Option<&'static str> {
    match migration {
        "16" | "17" | "18" => Some("0.16"),
        "19" => Some("0.17"),
        "20" => Some("0.18"),
        _ => None,
    }
}

/// Which implementation created the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavour {
    /// The `graphile-worker` npm package.
    Node,
    /// The `graphile_worker` Rust crate (it adds a `_private_workers` table).
    RustPort,
}

/// A `graphile_worker` schema as found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GraphileSchema {
    /// Who made it.
    pub flavour: Flavour,
    /// Its latest migration, as recorded in `graphile_worker.migrations`.
    pub migration: Option<String>,
    /// Whether Backstop knows this schema: jobs are read from the private tables (payload
    /// included) and acted on. If not, they are read from the public `graphile_worker.jobs`
    /// view, read-only.
    pub supported: bool,
    /// Whether this role can read the private jobs table's rows. Row-level security hides
    /// them from roles that do not own the table, *without an error*: zero rows. Detected by
    /// comparing with the public view, which runs as its owner.
    pub payloads_readable: bool,
    /// Whether the public `graphile_worker.jobs` view exists (migration 17 on): the read-only
    /// fallback for schemas Backstop does not know.
    pub has_view: bool,
}

impl GraphileSchema {
    /// "0.18 (migration 20)", "Rust port (migration ...)", "unknown version (migration 9)".
    pub fn version_label(&self) -> String {
        let migration = self.migration.as_deref().unwrap_or("none");
        match (self.flavour, self.supported) {
            (Flavour::Node, true) => match node_release(migration) {
                Some(release) => format!("{release} (migration {migration})"),
                None => format!("0.16–0.18 (migration {migration})"),
            },
            (Flavour::RustPort, true) => format!("Rust port (migration {migration})"),
            (_, false) => format!("unknown version (migration {migration})"),
        }
    }

    /// Whether jobs come from the private tables (payloads, actions) or the public view.
    pub fn reads_private_tables(&self) -> bool {
        self.supported && self.payloads_readable
    }

    /// Whether its jobs can be listed at all (private tables, or the public view).
    pub fn readable(&self) -> bool {
        self.reads_private_tables() || self.has_view
    }
}

/// Looks for the `graphile_worker` schema. `None`: there is none.
pub async fn detect<'e, E: PgExecutor<'e> + Copy>(executor: E) -> Result<Option<GraphileSchema>> {
    let found = sql::graphile_catalog(executor).await?;
    if !found.has_schema {
        return Ok(None);
    }
    let migration: Option<String> =
        if found.has_migrations { sql::graphile_migration_latest(executor).await? } else { None };
    let flavour = if found.rust_port { Flavour::RustPort } else { Flavour::Node };
    let known_version = match flavour {
        Flavour::RustPort => true,
        Flavour::Node => migration
            .as_deref()
            .and_then(|m| m.parse::<i64>().ok())
            .is_some_and(|m| SUPPORTED_NODE_MIGRATIONS.contains(&m)),
    };
    let supported = found.has_api && known_version;
    // Without the public view (before migration 17) there is nothing to compare with.
    let payloads_readable =
        found.private_readable && supported && (!found.has_view || rows_visible(executor).await?);
    Ok(Some(GraphileSchema { flavour, migration, supported, payloads_readable, has_view: found.has_view }))
}

/// Whether the private jobs table shows this role the rows the public view shows its owner.
async fn rows_visible<'e, E: PgExecutor<'e>>(executor: E) -> Result<bool> {
    let hidden = sql::graphile_private_rows_hidden(executor).await?;
    Ok(!hidden)
}
