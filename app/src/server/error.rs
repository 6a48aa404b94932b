//! One error type for the console's server functions: it knows its HTTP status and never shows
//! database internals to the page. Internal errors are logged once, here, at the edge.

use leptos::prelude::ServerFnError;

/// Why a server function failed.
///
/// Deliberately not a `std::error::Error`: server_fn converts every such error into a
/// `ServerFnError` with its message, which would skip the logging and status below.
#[derive(Debug)]
pub enum AppError {
    /// The user is a viewer.
    Forbidden,
    /// No such job (it may have completed meanwhile).
    NotFound(String),
    /// The request itself is wrong (bad JSON in a filter, say). The message is for the user.
    BadRequest(String),
    /// Anything else: logged in full, shown as a generic message.
    Internal(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Forbidden => {
                f.write_str("Forbidden: your role can read but not change jobs (ask for operator access).")
            }
            AppError::NotFound(what) => write!(f, "Not found: {what}"),
            AppError::BadRequest(message) => f.write_str(message),
            AppError::Internal(_) => f.write_str("Internal error (details are in the server log)."),
        }
    }
}

impl AppError {
    /// An internal error with details for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        AppError::Internal(detail.to_string())
    }

    fn status(&self) -> axum::http::StatusCode {
        match self {
            AppError::Forbidden => axum::http::StatusCode::FORBIDDEN,
            AppError::NotFound(_) => axum::http::StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => axum::http::StatusCode::BAD_REQUEST,
            AppError::Internal(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<backstop::Error> for AppError {
    fn from(error: backstop::Error) -> Self {
        // The request asked for something that cannot be done: say what, as the queue said it.
        if let backstop::Error::InvalidOption(reason) = &error {
            let mut sentence = reason.clone();
            if let Some(first) = sentence.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            return AppError::BadRequest(format!("{sentence}."));
        }
        // Input the queue cannot take (too big, too many, NUL characters): the request's fault,
        // and the queue's message says exactly what.
        if matches!(
            error,
            backstop::Error::PayloadTooLarge { .. }
                | backstop::Error::UnstorablePayload { .. }
                | backstop::Error::OverLimit { .. }
        ) {
            let sentence = error.to_string();
            let mut sentence = sentence.trim_end_matches('.').to_owned();
            if let Some(first) = sentence.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            return AppError::BadRequest(format!("{sentence}."));
        }
        // 57014 query_canceled: the console pool's statement timeout stopped the query.
        let cancelled = match &error {
            backstop::Error::Database(e) => {
                e.as_database_error().and_then(|e| e.code()).as_deref() == Some("57014")
            }
            _ => false,
        };
        if cancelled {
            AppError::BadRequest(
                "This search took too long and was stopped (the console's query time limit, \
                 --query-timeout). Kind, payload, error text and the retrying state are indexed; a \
                 time range alone, or several common filters whose combination is rare, still scan a \
                 large table. Add a rarer filter (a kind, a payload value, error words) or narrow the \
                 time range."
                    .into(),
            )
        } else {
            AppError::internal(error)
        }
    }
}

impl From<AppError> for ServerFnError {
    fn from(error: AppError) -> Self {
        if let AppError::Internal(detail) = &error {
            tracing::error!(%detail, "console request failed");
        }
        // The status belongs to a server-function call (`/api/...`); a page that renders the
        // error in place stays 200, whenever during streaming the error happens.
        let is_api_call = leptos::prelude::use_context::<axum::http::request::Parts>()
            .is_some_and(|parts| parts.uri.path().starts_with("/api/"));
        if let (true, Some(response)) =
            (is_api_call, leptos::prelude::use_context::<leptos_axum::ResponseOptions>())
        {
            response.set_status(error.status());
        }
        ServerFnError::ServerError(error.to_string())
    }
}
