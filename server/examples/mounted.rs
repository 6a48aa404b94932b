//! A host application with the Backstop console mounted at `/admin/jobs`.
//!
//! The host has its own pages and its own (toy, but real) sign-in: HTTP Basic against its user
//! table, where each user may or may not use the console, as a viewer or an operator. The
//! console takes the host's decision for every request, its server functions included.
//!
//! ```sh
//! scripts/build-site.sh            # the console's wasm, JS and CSS, in target/site
//! DATABASE_URL=postgres://... cargo run -p backstop-server --example mounted
//! # http://127.0.0.1:3000/admin/jobs as alice:alice-pass (operator), vera:vera-pass (viewer);
//! # bob:bob-pass signs in to the host but may not use the console.
//! ```
//!
//! `MOUNTED_BIND` sets the address (default 127.0.0.1:3000), `BACKSTOP_SITE_ROOT` the built
//! site (default target/site).

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use backstop_console::{Console, CurrentUser, Role};
use base64::Engine as _;

/// One of the host's users, as its sign-in leaves it on the request.
#[derive(Clone, Debug)]
struct HostUser {
    name: &'static str,
    /// What the host lets this user do in the job console, if anything.
    console: Option<Role>,
}

/// The host's user table: name, password, console role.
const USERS: &[(&str, &str, Option<Role>)] = &[
    ("alice", "alice-pass", Some(Role::Operator)),
    ("vera", "vera-pass", Some(Role::Viewer)),
    ("bob", "bob-pass", None),
];

/// The host's sign-in, in front of everything but its health check: HTTP Basic, else 401.
async fn sign_in(mut request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok()?.strip_prefix("Basic "))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let user = credentials.and_then(|credentials| {
        let (name, password) = credentials.split_once(':')?;
        USERS.iter().find(|(n, p, _)| *n == name && *p == password)
    });
    match user {
        Some(&(name, _, console)) => {
            request.extensions_mut().insert(HostUser { name, console });
            next.run(request).await
        }
        None => {
            let mut response = (StatusCode::UNAUTHORIZED, "Sign in to Example Corp.\n").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="Example Corp""#));
            response
        }
    }
}

/// The host's decision for the console: its signed-in user, in the role the host gives them.
fn console_user(request: &axum::http::request::Parts) -> Option<CurrentUser> {
    let user = request.extensions.get::<HostUser>()?;
    Some(CurrentUser { name: user.name.to_owned(), role: user.console? })
}

async fn home(Extension(user): Extension<HostUser>) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><title>Example Corp</title><h1>Hello, {}</h1>\
         <p><a href=\"/admin/jobs\">Background jobs</a></p>",
        user.name
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(5).connect(&url).await?;
    // The console needs Backstop's tables (its audit log too), as the queue does.
    backstop::MIGRATOR.run(&pool).await?;

    let console = Console::builder(pool)
        .prefix("/admin/jobs")
        .authorize(console_user)
        .site_root(std::env::var("BACKSTOP_SITE_ROOT").unwrap_or_else(|_| "target/site".to_owned()))
        .build()?;
    let app = Router::new()
        .route("/", get(home))
        .route("/healthz", get(|| async { "ok" }))
        .nest("/admin/jobs", console)
        .layer(axum::middleware::from_fn(sign_in));

    let bind = std::env::var("MOUNTED_BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("example host on http://{}, the console at /admin/jobs", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
