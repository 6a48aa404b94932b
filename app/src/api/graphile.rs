//! The server half of graphile-worker as a source: the console's filter in its terms, and what
//! to tell the reader about what this role can see and do.

use backstop::graphile::{GraphileSchema, GraphileSearch};

use crate::model::JobFilter;
use crate::server::AppError;

/// The error for a request about graphile-worker's jobs in a database without its schema.
pub(super) fn no_schema() -> AppError {
    AppError::NotFound(
        "This database has no graphile_worker schema: graphile-worker has not run here.".into(),
    )
}

/// The filter as graphile-worker's search takes it. Payload and time filters are Backstop's
/// only (graphile-worker has no index for them, and its payload may be unreadable).
pub(super) fn search(filter: &JobFilter) -> Result<GraphileSearch, AppError> {
    if filter.payload.is_some() || filter.from.is_some() || filter.to.is_some() {
        return Err(AppError::BadRequest(
            "graphile-worker's jobs filter by state, queue, kind (task) and error text; clear the payload and time filters."
                .into(),
        ));
    }
    Ok(GraphileSearch {
        state: filter.state,
        task: filter.kind.clone(),
        queue: filter.queue.clone(),
        error_text: filter.error.clone(),
        ids: None,
        group: filter.group,
    })
}

/// What the reader must know about what the console can see and do here.
pub(super) fn notice(schema: &GraphileSchema) -> Option<String> {
    if !schema.supported && !schema.has_view {
        Some(format!(
            "graphile-worker {}: Backstop does not know this schema and it has no public jobs view, so its jobs cannot be listed.",
            schema.version_label()
        ))
    } else if !schema.supported {
        Some(format!(
            "graphile-worker {}: Backstop does not know this schema, so it shows the public graphile_worker.jobs view, read-only and without payloads.",
            schema.version_label()
        ))
    } else if !schema.payloads_readable {
        Some(
            "The console's database role cannot read graphile-worker's private tables (row-level security shows it no rows): jobs are listed from the public graphile_worker.jobs view, without payloads. Connect as the role that owns graphile_worker's tables to see payloads."
                .into(),
        )
    } else {
        None
    }
}
