//! The console mounted in a host application: [`Console::builder`] gives an axum [`Router`] to
//! nest under a path of the host's (`/admin/jobs`), with the host's own authentication deciding
//! who each request is from and whether they may only read (viewer) or also act (operator).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use app::model::CurrentUser;
use app::server::RedactKeys;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

use crate::security;

/// The Backstop console, to mount in a host application's axum router.
///
/// ```no_run
/// # async fn host(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use backstop_console::{Console, CurrentUser, Role};
///
/// let console = Console::builder(pool)
///     .prefix("/admin/jobs")
///     // The host's own sign-in has run (its middleware put its user on the request).
///     .authorize(|request: &axum::http::request::Parts| {
///         let user = request.extensions.get::<String>()?;
///         Some(CurrentUser { name: user.clone(), role: Role::Operator })
///     })
///     .build()?;
/// let app = axum::Router::new().nest("/admin/jobs", console);
/// # let _: axum::Router = app;
/// # Ok(())
/// # }
/// ```
///
/// Nest the router at exactly the prefix given here (axum's [`Router::nest`]): the console's
/// links, assets and server functions (`/admin/jobs/api/...`) are all under it. The console
/// refuses cross-site writes and sets its own security headers (a Content-Security-Policy with a
/// nonce on its pages); it does not check host names, answer `/metrics` or `/healthz`, send
/// alerts, or run migrations: run `backstop::MIGRATOR` on the pool first (the queue needs it
/// anyway).
#[derive(Debug)]
pub struct Console;

impl Console {
    /// A console over the database with Backstop's tables.
    pub fn builder(pool: PgPool) -> ConsoleBuilder {
        ConsoleBuilder {
            pool,
            prefix: String::new(),
            authorize: None,
            site_root: PathBuf::from("target/site"),
            query_timeout: Duration::from_secs(3),
            redact_keys: Vec::new(),
        }
    }
}

/// The host's decision for one request (see [`ConsoleBuilder::authorize`]).
type Authorize = Arc<dyn Fn(&Parts) -> Option<CurrentUser> + Send + Sync>;

/// Settings of a mounted console; [`ConsoleBuilder::build`] makes the router.
pub struct ConsoleBuilder {
    pool: PgPool,
    prefix: String,
    authorize: Option<Authorize>,
    site_root: PathBuf,
    query_timeout: Duration,
    redact_keys: Vec<String>,
}

impl std::fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleBuilder")
            .field("prefix", &self.prefix)
            .field("authorize", &self.authorize.is_some())
            .field("site_root", &self.site_root)
            .field("query_timeout", &self.query_timeout)
            .field("redact_keys", &self.redact_keys)
            .finish_non_exhaustive()
    }
}

/// Why a console could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// No [`ConsoleBuilder::authorize`]: the console would be open to anyone who reaches it.
    #[error("the console needs `authorize`: the host's decision of who may read and who may act")]
    NoAuthorize,
    /// The prefix is not a path such as `/admin/jobs`.
    #[error(
        "the prefix {0:?} is not a path such as /admin/jobs (a leading slash, no trailing one, no query)"
    )]
    BadPrefix(String),
    /// The site root's path cannot be used (it is not UTF-8).
    #[error("{0:#}")]
    SiteRoot(anyhow::Error),
    /// The built site's wasm was built with other flags than this library (`--cfg
    /// erase_components` on one side only): its pages would not hydrate. The message says how
    /// to build them alike.
    #[error(transparent)]
    SiteBuild(#[from] crate::assets::BuildMismatch),
}

impl ConsoleBuilder {
    /// Where the host nests the router, such as `/admin/jobs` (default: the root, `""`, for a
    /// host that merges the router instead).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The host's authentication: who a request is from, as a [`CurrentUser`] whose role says
    /// whether they may act (operator) or only read (viewer); `None` refuses the request (403).
    ///
    /// Called for every request to the console (pages, server functions, assets) with the
    /// request's head, after the host's own middleware: a host whose sign-in is async (a
    /// session looked up in its database) runs it as middleware in front of the console and
    /// puts its user on the request's extensions, for this to read. Required.
    pub fn authorize(
        mut self,
        authorize: impl Fn(&Parts) -> Option<CurrentUser> + Send + Sync + 'static,
    ) -> Self {
        self.authorize = Some(Arc::new(authorize));
        self
    }

    /// The built site (`pkg/backstop.js`, `pkg/backstop_bg.wasm`, `pkg/backstop.css`, as
    /// `scripts/build-site.sh` writes them; default `target/site`). A release build made by
    /// `scripts/build-site.sh --release` carries the site itself and ignores this.
    pub fn site_root(mut self, site_root: impl Into<PathBuf>) -> Self {
        self.site_root = site_root.into();
        self
    }

    /// Longest a console query may run before PostgreSQL cancels it (default 3 s).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// More payload key names to mask, beyond the built-in ones (as `backstop serve
    /// --redact-keys`).
    pub fn redact_keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.redact_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The console's router, to nest at the prefix.
    pub fn build(self) -> Result<Router, MountError> {
        let authorize = self.authorize.ok_or(MountError::NoAuthorize)?;
        let prefix = check_prefix(&self.prefix)?;
        let options = crate::web::site_options(&self.site_root, ([127, 0, 0, 1], 0).into())
            .map_err(MountError::SiteRoot)?;
        crate::web::check_site_root(&self.site_root)?;
        let console = app::server::Console {
            pool: crate::web::console_pool(&self.pool, self.query_timeout.as_secs()),
            redact: RedactKeys::new(&self.redact_keys),
        };
        // Leaked once per console built: the app's router keeps its base for good.
        let prefix: &'static str = Box::leak(prefix.into_boxed_str());
        Ok(crate::web::console_routes(options, console, prefix)
            // As `backstop serve`: headers on everything, cross-site refusal before the host's
            // decision, so a forged request is refused whoever's session it carries.
            .layer(axum::middleware::from_fn_with_state(authorize, require_authorized))
            .layer(axum::middleware::from_fn(security::refuse_cross_site))
            .layer(axum::middleware::from_fn(security::security_headers)))
    }
}

fn check_prefix(prefix: &str) -> Result<String, MountError> {
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains(['?', '#', '"', '\'', '<', '>', '\\', ' ']));
    if ok { Ok(prefix.to_owned()) } else { Err(MountError::BadPrefix(prefix.to_owned())) }
}

/// Middleware: puts the host's [`CurrentUser`] on the request, or refuses it.
async fn require_authorized(State(authorize): State<Authorize>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match authorize(&parts) {
        Some(user) => {
            let mut request = Request::from_parts(parts, body);
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "You may not use the Backstop console.\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_are_paths() {
        for good in ["", "/admin/jobs", "/jobs"] {
            assert!(super::check_prefix(good).is_ok(), "{good}");
        }
        for bad in ["admin", "/admin/", "/", "/a?b", "/a b", "/a\"b"] {
            assert!(super::check_prefix(bad).is_err(), "{bad}");
        }
    }
}
