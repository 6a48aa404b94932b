//! The console mounted in a host application's router under `/admin/jobs` (issue 13 item 2):
//! pages and their links under the prefix, server functions there, the host's decision on
//! every request.

use crate::{Console, CurrentUser, Role};

use super::*;

/// A host app with its own page at `/`, nesting the console at `/admin/jobs`; the `x-user`
/// header stands in for its sign-in (`alice` operates, `vera` views, anyone else is refused).
fn host(pool: PgPool) -> Router {
    let console = Console::builder(pool)
        .prefix("/admin/jobs")
        .site_root("does-not-exist")
        .authorize(|request| {
            let name = request.headers.get("x-user")?.to_str().ok()?;
            let role = match name {
                "alice" => Role::Operator,
                "vera" => Role::Viewer,
                _ => return None,
            };
            Some(CurrentUser { name: name.to_owned(), role })
        })
        .build()
        .unwrap();
    Router::new().route("/", axum::routing::get(|| async { "the host's home" })).nest("/admin/jobs", console)
}

fn as_user(user: &'static str, mut request: Request<Body>) -> Request<Body> {
    request.headers_mut().insert("x-user", header::HeaderValue::from_static(user));
    request
}

/// Every `href`, `src` and `action` of a page, and the hydration script's root.
fn urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in [" href=\"", " src=\"", " action=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            urls.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    urls
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn every_link_asset_and_form_of_a_mounted_page_is_under_the_prefix(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "card declined").await;
    let router = host(pool);
    for page in
        ["/admin/jobs", "/admin/jobs/dead-letters", &format!("/admin/jobs/jobs/{id}"), "/admin/jobs/triage"]
    {
        let (status, headers, html) = send(&router, as_user("alice", get(page))).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        assert!(html.contains(r#"<meta name="backstop-mount" content="/admin/jobs""#), "{page}");
        let urls = urls(&html);
        assert!(urls.len() > 10, "{page}: {urls:?}");
        for url in &urls {
            assert!(
                url.starts_with("/admin/jobs/") || url == "/admin/jobs" || url.starts_with("/admin/jobs?"),
                "{page}: {url}"
            );
        }
        assert!(
            html.contains(r#"("/admin/jobs", "pkg", "backstop""#),
            "{page}: the wasm loads from under the prefix"
        );
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("script-src 'self' 'nonce-"), "{policy}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    }
    let (_, _, html) = send(&router, as_user("alice", get("/admin/jobs/dead-letters"))).await;
    assert!(html.contains("card declined"), "the page was rendered for its route, not the 404");
    assert!(html.contains(&format!(r#"href="/admin/jobs/jobs/{id}""#)), "job links under the prefix");
    // The nav marks the current section as the browser will.
    assert!(html.contains(r#"href="/admin/jobs/dead-letters" aria-current="page""#), "{html}");

    let (status, _, _) = send(&router, as_user("alice", get("/admin/jobs/no-such-page"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = send(&router, as_user("alice", get("/"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "the host's home"), "the host keeps its own routes");
    let (status, _, _) = send(&router, as_user("alice", get("/dead-letters"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the console is only under its prefix");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_hosts_decision_decides_who_reads_and_who_acts(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let router = host(pool.clone());
    let retry = ActOnJobs { action: JobAction::Retry, state: State::Dead, ids: vec![id], source: None };
    let call_at = |user: Option<&'static str>| {
        let mut request = call("act_on_jobs", &retry);
        *request.uri_mut() = "/admin/jobs/api/act_on_jobs".parse().unwrap();
        match user {
            Some(user) => as_user(user, request),
            None => request,
        }
    };

    let (status, _, text) = send(&router, get("/admin/jobs")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nobody: {text}");
    let (status, _, _) = send(&router, as_user("mallory", get("/admin/jobs/pkg/backstop.css"))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a host user without a console role gets nothing, assets neither"
    );
    let (status, _, _) = send(&router, call_at(None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, text) = send(&router, call_at(Some("vera"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer may not act: {text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 1);

    let (status, _, html) = send(&router, as_user("vera", get("/admin/jobs/dead-letters"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-testid="read-only""#), "the viewer is told the list is read-only");

    let mut forged = call_at(Some("alice"));
    forged.headers_mut().insert("sec-fetch-site", header::HeaderValue::from_static("cross-site"));
    let (status, _, _) = send(&router, forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "cross-site writes are refused under the prefix too");

    let (status, _, text) = send(&router, call_at(Some("alice"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0, "retried");
    let actor: String = sqlx::query_scalar("select actor from backstop.audit_log order by id desc limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actor, "alice", "the audit log names the host's user");
}

#[tokio::test]
async fn a_console_without_the_hosts_decision_is_not_built() {
    let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://localhost/none").unwrap();
    let error = Console::builder(pool.clone()).prefix("/admin/jobs").build().unwrap_err();
    assert!(matches!(error, crate::MountError::NoAuthorize), "{error}");
    let error = Console::builder(pool).prefix("admin/").authorize(|_| None).build().unwrap_err();
    assert!(matches!(error, crate::MountError::BadPrefix(_)), "{error}");
}

/// An embedder's workspace without Backstop's `--cfg erase_components` builds a library whose
/// pages the shipped wasm cannot hydrate: `build()` refuses such a site, and says how to fix it,
/// instead of a console whose buttons do nothing.
#[tokio::test]
async fn a_site_built_otherwise_than_the_library_is_refused() {
    let site = std::env::temp_dir().join(format!("backstop-mismatched-site-{}", std::process::id()));
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let console = |manifest: serde_json::Value| {
        std::fs::write(site.join("pkg/site.json"), manifest.to_string()).unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://localhost/none").unwrap();
        Console::builder(pool).prefix("/admin/jobs").site_root(&site).authorize(|_| None).build()
    };
    let ours = crate::assets::ERASE_COMPONENTS;
    let refused = console(serde_json::json!({ "output_name": "backstop", "erase_components": !ours }));
    // `backstop serve` checks the same, before it listens.
    let serve_refused = crate::web::check_site_root(&site);
    let matching = console(serde_json::json!({ "output_name": "backstop", "erase_components": ours }));
    std::fs::remove_dir_all(&site).unwrap();

    let error = refused.unwrap_err();
    assert!(matches!(error, crate::MountError::SiteBuild(_)), "{error}");
    assert!(error.to_string().contains("would not hydrate"), "{error}");
    assert!(error.to_string().contains("erase_components"), "{error}");
    assert!(serve_refused.is_err());
    assert!(matching.is_ok());
}
