//! `backstop serve`: the web console. Server-side rendering and server functions from the `app`
//! crate, plus the static files `scripts/build-site.sh` puts in the site root (the hydration
//! wasm and JS under `pkg/`, and the stylesheet).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::{App, shell};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio_util::sync::CancellationToken;

/// The name wasm-bindgen gives the browser build (`--out-name backstop`): the page loads
/// `pkg/backstop.js` and `pkg/backstop_bg.wasm`, and the stylesheet is `pkg/backstop.css`.
const OUTPUT_NAME: &str = "backstop";
/// Where, under the site root, the wasm, JS and CSS live.
const PKG_DIR: &str = "pkg";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (the log says which).
    #[arg(long, env = "BACKSTOP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory with the built site (`pkg/backstop.js`, `pkg/backstop_bg.wasm`,
    /// `pkg/backstop.css`), as written by `scripts/build-site.sh`.
    #[arg(long, env = "BACKSTOP_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

/// Serves the console until `shutdown` is cancelled, then finishes the requests in flight.
pub async fn serve(args: ServeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_site_root(&args.site_root);
    let app = router(leptos_options(&args)?);
    let listener =
        tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("listen on {}", args.bind))?;
    let addr = listener.local_addr().context("read the listening address")?;
    tracing::info!(site_root = %args.site_root.display(), "console listening on http://{addr}");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serve the console")?;
    tracing::info!("console stopped");
    Ok(())
}

/// Options built here rather than read from `[package.metadata.leptos]`: the site is built by
/// `scripts/build-site.sh`, not cargo-leptos, so only the names the two agree on matter.
fn leptos_options(args: &ServeArgs) -> anyhow::Result<LeptosOptions> {
    let site_root = args
        .site_root
        .to_str()
        .with_context(|| format!("site root is not valid UTF-8: {}", args.site_root.display()))?;
    Ok(LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_root)
        .site_pkg_dir(PKG_DIR)
        .site_addr(args.bind)
        .build())
}

/// The console's routes: every page of the app (rendered on the server), its server functions
/// under `/api`, and, for anything else, a static file from the site root or the app's 404 page.
///
/// Build it once, before serving: `generate_route_list` renders the app with resource loading
/// switched off *process-wide* (`leptos_server::SuppressResourceLoad`, an `AtomicBool`), so a
/// page rendered at the same moment never resolves its `<Suspense>`/`<Transition>` and hangs.
fn router(options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
}

/// Pages still render without the built site, but unstyled and not interactive: say so once,
/// at start-up, rather than leaving only 404s for `/pkg/...` in the browser console.
fn check_site_root(site_root: &Path) {
    let pkg = site_root.join(PKG_DIR);
    let missing: Vec<&str> = ["backstop.js", "backstop_bg.wasm", "backstop.css"]
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
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt as _;

    use super::*;

    /// One router for all tests, as in `serve`: building one per test, in parallel, hung about
    /// one run in twenty (see `router`).
    static ROUTER: LazyLock<Router> = LazyLock::new(|| {
        let args = ServeArgs { bind: "127.0.0.1:0".parse().unwrap(), site_root: "does-not-exist".into() };
        router(leptos_options(&args).unwrap())
    });

    async fn send(request: Request<Body>) -> (StatusCode, String) {
        let response = ROUTER.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn overview_is_rendered_on_the_server() {
        let (status, html) = send(get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<title>Overview · Backstop</title>"), "{html}");
        assert!(html.contains("Live updates: on"), "{html}");
        assert!(html.contains("/pkg/backstop.js"), "hydration script missing: {html}");
        assert!(html.contains("/pkg/backstop.css"), "stylesheet missing: {html}");
    }

    #[tokio::test]
    async fn unknown_pages_are_404() {
        let (status, html) = send(get("/no/such/page")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(html.contains("Page not found"), "{html}");
    }

    #[tokio::test]
    async fn console_status_server_function_answers() {
        let request = Request::post("/api/console_status")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let status: app::ServerStatus = serde_json::from_str(&body).unwrap();
        assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
        assert!(status.server_time.ends_with(" UTC"), "{}", status.server_time);
    }
}
