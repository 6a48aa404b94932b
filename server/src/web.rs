//! `backstop serve`: the web console. Server-side rendering and server functions from the `app`
//! crate, plus the static files `scripts/build-site.sh` puts in the site root (the hydration
//! wasm and JS under `pkg/`, and the stylesheet), behind sign-in, cross-site request refusal
//! and security headers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context as _;
use app::server::{Console, RedactKeys};
use app::{App, shell};
use axum::Router;
use axum::serve::ListenerExt as _;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::{Access, MetricsReaders, User, Users};
use crate::security;
use crate::sso::{ProxyArgs, ProxySignIn};

mod monitoring;

/// Where, under the site root, the wasm, JS and CSS live.
const PKG_DIR: &str = "pkg";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (the log says which). Anything but
    /// loopback needs sign-in: --user or --trusted-proxy.
    #[arg(long, env = "BACKSTOP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory with the built site (`pkg/backstop.js`, `pkg/backstop_bg.wasm`,
    /// `pkg/backstop.css`), as written by `scripts/build-site.sh`.
    #[arg(long, env = "BACKSTOP_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// A console user, NAME:PASSWORD:ROLE with ROLE `viewer` (read) or `operator` (act).
    /// Repeat for more users. With none, only loopback binds are allowed and everyone acts.
    #[arg(long = "user", env = "BACKSTOP_USERS", value_delimiter = ',', hide_env_values = true)]
    pub users: Vec<User>,
    /// Longest a console query may run before PostgreSQL cancels it, in seconds: a filter the
    /// indexes cannot serve on a huge table gets a clear message instead of loading the database.
    #[arg(long, env = "BACKSTOP_QUERY_TIMEOUT", default_value_t = 3)]
    pub query_timeout: u64,
    /// More payload key names to mask, beyond the built-in ones (password, token, secret, key,
    /// authorization, cookie, session, credential, ...): matched at any depth, ignoring case,
    /// `_`, `-` and camelCase, as part of a longer name too (`iban` masks `payoutIban`).
    #[arg(long, env = "BACKSTOP_REDACT_KEYS", value_delimiter = ',')]
    pub redact_keys: Vec<String>,
    /// Without --user, a host name besides the loopback ones (`localhost`, `*.localhost`,
    /// 127.0.0.0/8, `[::1]`) that browsers may use to reach the console, such as a local proxy's
    /// (any port). Repeat for more. Other names are refused, so that a web page whose name is
    /// made to resolve to this machine (DNS rebinding) cannot use the console.
    #[arg(long = "allowed-host", env = "BACKSTOP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<security::AllowedHost>,
    /// The first time the console looks at a graphile-worker schema, alert its failures from
    /// before too. By default they join their error groups (shown in triage) without alerts;
    /// alerts start with the failures after that first look.
    #[arg(long, env = "BACKSTOP_GRAPHILE_ALERT_HISTORY")]
    pub graphile_alert_history: bool,
    /// A bearer token that may read `/metrics` (Prometheus' `authorization: {credentials: ...}`),
    /// besides any console user. Without users the console, `/metrics` included, is open to
    /// loopback anyway.
    #[arg(long, env = "BACKSTOP_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[command(flatten)]
    pub proxy: ProxyArgs,
    #[command(flatten)]
    pub alerts: crate::alerts::AlertArgs,
}

/// Serves the console for `pool` until `shutdown` is cancelled, then finishes the requests in
/// flight. Applies Backstop's migrations first (the console needs its audit log).
pub async fn serve(args: ServeArgs, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Checked before binding too, so that a refused configuration never listens.
    Access::new(Users::new(args.users.clone()), ProxySignIn::new(&args.proxy)?).check_bind(args.bind)?;
    check_site_root(&args.site_root)?;
    let listener =
        tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("listen on {}", args.bind))?;
    serve_on(listener, args, pool, shutdown).await
}

/// [`serve`] on a listener already bound (tests bind one on a free port first).
async fn serve_on(
    listener: tokio::net::TcpListener,
    args: ServeArgs,
    pool: PgPool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("read the listening address")?;
    let access = Access::new(Users::new(args.users.clone()), ProxySignIn::new(&args.proxy)?);
    access.check_bind(addr)?;
    backstop::MIGRATOR.run(&pool).await.context("apply Backstop's migrations")?;
    regroup_in_background(pool.clone());
    let console =
        Console { pool: console_pool(&pool, args.query_timeout), redact: RedactKeys::new(&args.redact_keys) };
    let hosts = security::ServedHosts::new(host_rule(&access), &args.allowed_hosts);
    let monitoring = monitoring::Monitoring::new(console.pool.clone(), chrono::Utc::now());
    let metrics_readers = MetricsReaders::new(access.clone(), args.metrics_token.clone());
    let app = router(leptos_options(&args)?, console, access, hosts, monitoring, metrics_readers);
    let alert_runner =
        crate::alerts::start(&pool, &args.alerts, addr, RedactKeys::new(&args.redact_keys), shutdown.clone())
            .await?;
    let history = if args.graphile_alert_history {
        backstop::graphile::History::Alert
    } else {
        backstop::graphile::History::Quiet
    };
    let graphile_poller =
        tokio::spawn(crate::sources::poll_graphile(pool.clone(), history, shutdown.clone()));
    tracing::info!(site_root = %args.site_root.display(), "console listening on http://{addr}");
    println!("backstop: console on http://{addr}");
    // Pages stream: the shell first, then each part as its data arrives. With Nagle's algorithm
    // on, every part after the first waited for the client's delayed ACK: measured, a page took
    // 44 ms instead of 3 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });

    // Each request carries its connection's peer address (`ConnectInfo`): proxy sign-in believes
    // headers only from a trusted proxy's.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serve the console")?;
    graphile_poller.await.context("the graphile-worker poller panicked")?;
    if let Some(runner) = alert_runner {
        runner.await.context("the alert runner panicked")?.context("the alert runner failed")?;
    }
    tracing::info!("console stopped");
    Ok(())
}

/// Which host names the console answers to (see [`security::ServedHosts`]): only loopback and
/// `--allowed-host` names when nobody signs in, or when sign-in headers are believed from this
/// machine; any name otherwise.
fn host_rule(access: &Access) -> Option<security::HostRule> {
    if access.is_open() {
        Some(security::HostRule::NoSignIn)
    } else if access.trusts_loopback() {
        Some(security::HostRule::LoopbackProxy)
    } else {
        None
    }
}

/// The console's own small pool: the same connection settings as `pool`, with a statement
/// timeout, so no page can hold the database for long, and kept apart from any workers'
/// connections (the demo shares its database with its workers).
///
/// No parallel query: every console query is built to read few rows, and parallel workers
/// would take CPUs from the application whose database this is. Measured at 9 M live jobs, a
/// parallel newest-first scan took 50 ms to find what one backend finds in 8 ms.
///
/// No JIT compilation either, for the same reason: PostgreSQL compiles a query whose estimated
/// cost is high, and the error-text search carries a step that runs only when its first,
/// cheap steps did not fill the page but is costed as if it always ran (see
/// `JOB_SEARCH` in the queue crate). Compiling it took 57 ms of a 60 ms dead-letter search.
pub(crate) fn console_pool(pool: &PgPool, timeout_secs: u64) -> PgPool {
    let timeout_ms = (timeout_secs.max(1) * 1000).to_string();
    let options = (*pool.connect_options()).clone().options([
        ("statement_timeout", timeout_ms.as_str()),
        ("max_parallel_workers_per_gather", "0"),
        ("jit", "off"),
    ]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_lazy_with(options)
}

/// Options built here rather than read from `[package.metadata.leptos]`: the site is built by
/// `scripts/build-site.sh`, not cargo-leptos, so only the names the two agree on matter.
fn leptos_options(args: &ServeArgs) -> anyhow::Result<LeptosOptions> {
    site_options(&args.site_root, args.bind)
}

/// [`leptos_options`] for a site root (and an address, which only cargo-leptos' tooling reads).
pub(crate) fn site_options(site_root: &Path, addr: SocketAddr) -> anyhow::Result<LeptosOptions> {
    let root = site_root
        .to_str()
        .with_context(|| format!("site root is not valid UTF-8: {}", site_root.display()))?;
    // The page loads `pkg/<name>.js`, `pkg/<name>_bg.wasm` and `pkg/<name>.css` (app::shell).
    Ok(LeptosOptions::builder()
        .output_name(crate::assets::output_name(site_root))
        .site_root(root)
        .site_pkg_dir(PKG_DIR)
        .site_addr(addr)
        .build())
}

/// The app's routes, listed once per process. `generate_route_list` renders the app with
/// resource loading switched off *process-wide* (`leptos_server::SuppressResourceLoad`, an
/// `AtomicBool`), so a page rendered at the same moment on another thread would never resolve
/// its `<Transition>` and hang: list the routes before serving, and only once.
static ROUTES: LazyLock<Vec<AxumRouteListing>> = LazyLock::new(|| generate_route_list(App));

/// The console's routes: every page of the app (rendered on the server), its server functions
/// under `/api`, and, for anything else, a static file from the site root or the app's 404 page;
/// all behind the host check, sign-in, cross-site refusal and security headers. The checks are
/// layers around the whole console router, so a route added to it is behind them too.
///
/// Beside it, `/metrics` is behind the host check and its own reader check (a console user or
/// the metrics token), and `/healthz` and `/readyz` only get the security headers: a load
/// balancer probes them by address, without credentials, and they tell nothing about the jobs.
fn router(
    options: LeptosOptions,
    console: Console,
    access: Access,
    hosts: security::ServedHosts,
    monitoring: monitoring::Monitoring,
    metrics_readers: MetricsReaders,
) -> Router {
    use axum::routing::get;
    let pages = console_routes(options, console, "")
        // Layers run bottom-up on the way in: headers on everything, then the host check (a page
        // of another site that rebound its name to this machine goes no further), then
        // cross-site refusal (before sign-in, so a forged request is refused whoever's
        // credentials it carries).
        .layer(axum::middleware::from_fn_with_state(access, crate::auth::require_user))
        .layer(axum::middleware::from_fn(security::refuse_cross_site));
    let metrics = Router::new()
        .route("/metrics", get(monitoring::metrics))
        .with_state(monitoring.clone())
        .layer(axum::middleware::from_fn_with_state(metrics_readers, crate::auth::require_metrics_reader));
    let health = Router::new()
        .route("/healthz", get(monitoring::healthz))
        .route("/readyz", get(monitoring::readyz))
        .with_state(monitoring);
    health
        .merge(
            pages
                .merge(metrics)
                .layer(axum::middleware::from_fn_with_state(hosts, security::refuse_unknown_hosts)),
        )
        .layer(axum::middleware::from_fn(security::security_headers))
}

/// The console itself, without sign-in or browser protections (the caller layers them): every
/// page of the app (rendered on the server), its server functions under `/api`, and, for
/// anything else, a static file from the site root or the app's 404 page.
///
/// `prefix` is where the console is mounted (`""`: at the root; see [`app::mount`]). Its routes
/// are the same either way: a host nests this router under the prefix, and axum strips it from
/// the URI before these routes see it. The app's router matches and renders full URLs, so every
/// page and server function gets the prefix as context, and a page is rendered for the URL the
/// browser asked for, prefix included.
pub(crate) fn console_routes(options: LeptosOptions, console: Console, prefix: &'static str) -> Router {
    let pool = console.pool.clone();
    let context = move || {
        provide_context(console.clone());
        provide_context(app::mount::Mount(prefix));
        if !prefix.is_empty() {
            provide_request_url_under(prefix);
        }
    };
    Router::new()
        .leptos_routes_with_context(&options, ROUTES.clone(), context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(static_file_or_404(context))
        .with_state(options)
        .layer(compress_pages())
        .layer(axum::middleware::from_fn_with_state((pool, prefix), redirect_merged_groups))
}

/// Replaces the URL Leptos renders for (the request's URI, which axum's `nest` stripped of the
/// prefix) with the one the browser asked for, so that the router, whose base is the prefix,
/// matches it as the browser will when it hydrates. Leptos provides the request's parts before
/// the caller's context, so this comes second and wins.
fn provide_request_url_under(prefix: &str) {
    use axum::extract::OriginalUri;
    let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() else { return };
    let path_and_query = |uri: &axum::http::Uri| uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let asked = parts
        .extensions
        .get::<OriginalUri>()
        .map(|OriginalUri(uri)| path_and_query(uri))
        .filter(|asked| asked.starts_with(prefix))
        .unwrap_or_else(|| format!("{prefix}{}", path_and_query(&parts.uri)));
    provide_context(leptos_router::location::RequestUrl::new(&format!("http://leptos.dev{asked}")));
}

/// Pages (server-rendered HTML, about 30 KB) compressed as the browser accepts (brotli, gzip).
/// Only HTML: the site's files are precompressed at build time, and server function answers,
/// which can carry what an operator revealed, stay as they are, out of reach of
/// compression-length attacks (BREACH).
fn compress_pages() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    let html = |_: axum::http::StatusCode,
                _: axum::http::Version,
                headers: &axum::http::HeaderMap,
                _: &axum::http::Extensions| {
        headers.get(axum::http::header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/html"))
    };
    tower_http::compression::CompressionLayer::new().compress_when(html)
}

/// Error groups from before learned templates take part in learning as soon as a console of
/// this version runs (`backstop regroup`, which does the same by hand, is idempotent), so the
/// first failure of a known problem after an upgrade joins its old group rather than alerting
/// as new. In the background: serving does not wait for it.
fn regroup_in_background(pool: PgPool) {
    tokio::spawn(async move {
        match backstop::triage::regroup(&pool, 500, |_| {}).await {
            Ok(done) if done.given_a_template + done.merged > 0 => tracing::info!(
                given_a_template = done.given_a_template,
                merged = done.merged,
                "error groups from before learned templates regrouped"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not regroup older error groups (run `backstop regroup`)")
            }
        }
    });
}

/// `/triage/{id}` of a group merged into another answers with a redirect to that group (under
/// the console's prefix), so links to it (in Slack messages, say) keep working. Two primary-key lookups, only on that path.
async fn redirect_merged_groups(
    axum::extract::State((pool, prefix)): axum::extract::State<(sqlx::PgPool, &'static str)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let group = request.uri().path().strip_prefix("/triage/").and_then(|id| id.parse::<i64>().ok());
    if let Some(id) = group {
        // A failed lookup is left to the page, which reports it.
        if let Ok(Some(group)) = backstop::triage::error_group(&pool, id).await
            && group.id != id
        {
            return axum::response::IntoResponse::into_response(axum::response::Redirect::permanent(
                &format!("{prefix}/triage/{}", group.id),
            ));
        }
    }
    next.run(request).await
}

/// Anything that is not a page or a server function: a file embedded in the binary (release
/// builds), else a file from the site root, else the app's 404 page.
fn static_file_or_404(
    context: impl Fn() + Clone + Send + 'static,
) -> impl Fn(
    axum::http::Uri,
    axum::extract::State<LeptosOptions>,
    axum::extract::Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send>>
+ Clone
+ Send
+ 'static {
    let from_disk = leptos_axum::file_and_error_handler_with_context(context, shell);
    move |uri, state, request: axum::extract::Request| match crate::assets::response(
        uri.path(),
        request.headers().get(axum::http::header::ACCEPT_ENCODING),
    ) {
        Some(response) => Box::pin(std::future::ready(response)),
        None => from_disk(uri, state, request),
    }
}

/// Refuses a built site whose wasm would not hydrate this server's pages (built otherwise, see
/// [`crate::assets::BuildMismatch`]). Pages still render without the built site, but unstyled
/// and not interactive: say so once, at start-up, rather than leaving only 404s for `/pkg/...`
/// in the browser console.
pub(crate) fn check_site_root(site_root: &Path) -> Result<(), crate::assets::BuildMismatch> {
    let manifest = crate::assets::manifest(site_root);
    crate::assets::check_build(manifest.as_ref())?;
    if crate::assets::embedded() {
        tracing::info!("serving the site embedded in this binary");
        return Ok(());
    }
    let pkg = site_root.join(PKG_DIR);
    let name = crate::assets::output_name(site_root);
    let missing: Vec<String> = [format!("{name}.js"), format!("{name}_bg.wasm"), format!("{name}.css")]
        .into_iter()
        .filter(|file| !pkg.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            pkg = %pkg.display(),
            missing = missing.join(", "),
            "site files missing: pages will not be styled or interactive; run scripts/build-site.sh \
             or point --site-root at its output"
        );
    } else if manifest.is_none() {
        tracing::warn!(
            manifest = %site_root.join(crate::assets::SITE_MANIFEST).display(),
            "the site has no manifest: cannot check its wasm was built as this server was \
             (--cfg erase_components); if pages do not become interactive, rebuild it with \
             scripts/build-site.sh"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
