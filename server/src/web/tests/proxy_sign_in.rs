//! Sign-in through an authenticating proxy (issue 13, item 3), over real sockets: the console
//! is served by `serve_on` as `backstop serve` serves it, and requests come from real client
//! addresses. All of 127.0.0.0/8 is loopback on Linux, so a client bound to 127.0.0.2 is "the
//! proxy" and one on 127.0.0.1 is someone else on the network.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use super::*;

/// The proxy's address in these tests.
const PROXY: &str = "127.0.0.2";
/// Anyone else's.
const ELSEWHERE: &str = "127.0.0.1";

/// A console serving on a real socket until dropped.
struct Served {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Proxy sign-in from `proxies`, operators in `ops`, viewers in `staff`.
fn proxy_args(proxies: &[&str]) -> ProxyArgs {
    ProxyArgs {
        trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        operator_groups: vec!["ops".into()],
        viewer_groups: vec!["staff".into()],
        ..ProxyArgs::none()
    }
}

/// Serves the console for `pool` on `bind` (port 0) with these `--user`s and proxy sign-in.
async fn serve_console(pool: PgPool, bind: &str, users: &[&str], proxy: ProxyArgs) -> Served {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let args = ServeArgs {
        bind: addr,
        site_root: "does-not-exist".into(),
        users: users.iter().map(|spec| spec.parse().unwrap()).collect(),
        query_timeout: 3,
        redact_keys: Vec::new(),
        allowed_hosts: Vec::new(),
        graphile_alert_history: false,
        metrics_token: None,
        proxy,
        alerts: crate::alerts::AlertArgs::none(),
    };
    let shutdown = CancellationToken::new();
    // Connections wait in the listen backlog until it accepts: no need to wait for it here.
    tokio::spawn(serve_on(listener, args, pool, shutdown.clone()));
    Served { addr, shutdown }
}

/// An HTTP client whose connections come from `ip`.
fn client_from(ip: &str) -> reqwest::Client {
    crate::alerts::install_tls_provider();
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().unwrap()).no_proxy().build().unwrap()
}

/// The proxy's headers for `user` in `groups` (comma-separated, as the header has them).
fn signed_in(user: &str, email: Option<&str>, groups: &str) -> Vec<(&'static str, String)> {
    let mut headers = vec![("x-forwarded-user", user.to_owned()), ("x-forwarded-groups", groups.to_owned())];
    headers.extend(email.map(|e| ("x-forwarded-email", e.to_owned())));
    headers
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A server-function call as the console's page makes it, from `client`, with `headers`.
    async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        args: &impl serde::Serialize,
        headers: &[(&'static str, String)],
    ) -> (StatusCode, String) {
        let mut request = client
            .post(self.url(&format!("/api/{endpoint}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(serde_qs::to_string(args).unwrap());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answer(request).await
    }

    async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> (StatusCode, String) {
        let mut request = client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, String) {
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.text().await.unwrap())
}

/// Sends `request` as written (an HTTP client sets `Host` itself) from `from` to `to`, and
/// returns the whole answer.
async fn raw_request(from: &str, to: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn retry(id: i64) -> ActOnJobs {
    ActOnJobs { action: JobAction::Retry, state: State::Dead, ids: vec![id], source: None }
}

async fn audit_actors(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select actor from backstop.audit_log order by id").fetch_all(pool).await.unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_trusted_proxy_signs_people_in_with_the_role_their_groups_give(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let console = serve_console(pool.clone(), "127.0.0.1:0", &[], proxy_args(&[PROXY])).await;
    let proxy = client_from(PROXY);
    let vera = signed_in("vera", Some("vera@example.com"), "staff");
    let otto = signed_in("4711", Some("otto@example.com"), "staff, ops");

    let (status, text) = console.call(&proxy, "whoami", &app::api::Whoami {}, &vera).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, r#"{"name":"vera@example.com","role":"viewer"}"#);
    let (status, html) = console.get(&proxy, "/dead-letters", &vera).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("declined") && html.contains(r#"data-testid="read-only""#), "{html}");

    // The viewer's role is enforced on the server, not only by hidden buttons.
    let (status, text) = console.call(&proxy, "act_on_jobs", &retry(id), &vera).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 1, "a viewer changed a job");

    // In both groups: the operator role wins. The audit log names them by e-mail.
    let (status, text) = console.call(&proxy, "act_on_jobs", &retry(id), &otto).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, 1, "the job is back in the queue");
    assert_eq!(audit_actors(&pool).await, ["otto@example.com"]);

    // In neither group: refused, saying why.
    let (status, text) = console.get(&proxy, "/", &signed_in("mallory", None, "Ops, contractors")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("mallory, who is in none of this console's groups"), "{text}");
    assert!(
        text.contains("operators: ops; viewers: staff") && text.contains("is in Ops, contractors"),
        "{text}"
    );

    // The proxy naming nobody is a broken proxy, not the loopback "local" operator.
    let (status, text) =
        console.call(&proxy, "whoami", &app::api::Whoami {}, &[("x-forwarded-groups", "ops".into())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("named no user in its x-forwarded-user header"), "{text}");
    let (status, _) = console.get(&proxy, "/", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn forged_sign_in_headers_from_elsewhere_are_refused(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let console = serve_console(pool.clone(), "127.0.0.1:0", &[], proxy_args(&[PROXY])).await;
    let mut forged = signed_in("otto", Some("otto@example.com"), "ops");
    // Headers that name the proxy as the client change nothing: only the connection counts.
    forged.extend([
        ("x-forwarded-for", PROXY.to_owned()),
        ("x-real-ip", PROXY.to_owned()),
        ("forwarded", format!("for={PROXY}")),
    ]);
    let elsewhere = client_from(ELSEWHERE);
    let delete = ActOnJobs { action: JobAction::Delete, state: State::Dead, ids: vec![id], source: None };

    let (status, text) = console.call(&elsewhere, "act_on_jobs", &delete, &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("did not come from it (it came from 127.0.0.1)"), "{text}");
    for path in ["/", "/dead-letters", "/metrics"] {
        let (status, text) = console.get(&elsewhere, path, &forged).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
    }
    assert_eq!(
        count(&pool, "select count(*) from backstop.dead_jobs").await,
        1,
        "a forged request deleted a job"
    );
    assert!(audit_actors(&pool).await.is_empty());
    let (status, _) = console.get(&elsewhere, "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK, "health stays open");

    // The same request from the proxy's address is believed: the refusal above was the address.
    let (status, text) = console.call(&client_from(PROXY), "act_on_jobs", &delete, &forged).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn beside_basic_users_forged_headers_are_ignored_and_credentials_still_count(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let console =
        serve_console(pool.clone(), "127.0.0.1:0", &["vera:v-pass:viewer"], proxy_args(&[PROXY])).await;
    let elsewhere = client_from(ELSEWHERE);
    let forged = signed_in("otto", None, "ops");

    // Forged operator headers with a viewer's password: the viewer, nothing more.
    let mut with_password = forged.clone();
    with_password.push(("authorization", basic("vera:v-pass")));
    let (status, text) = console.call(&elsewhere, "whoami", &app::api::Whoami {}, &with_password).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"name":"vera","role":"viewer"}"#));
    let (status, text) = console.call(&elsewhere, "act_on_jobs", &retry(id), &with_password).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");

    // Forged headers alone: asked to sign in.
    let response = elsewhere
        .get(console.url("/"))
        .header("x-forwarded-user", "otto")
        .header("x-forwarded-groups", "ops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 1);

    // From the proxy, its user wins over a password it passes on; naming nobody, a password
    // still signs in (a script through a route the proxy leaves open), but never as "local".
    let proxy = client_from(PROXY);
    let (_, text) = console.call(&proxy, "whoami", &app::api::Whoami {}, &with_password).await;
    assert_eq!(text, r#"{"name":"otto","role":"operator"}"#);
    let password_only = [("authorization", basic("vera:v-pass"))];
    let (_, text) = console.call(&proxy, "whoami", &app::api::Whoami {}, &password_only).await;
    assert_eq!(text, r#"{"name":"vera","role":"viewer"}"#);
    let (status, text) = console.get(&proxy, "/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn hostile_sign_in_headers_from_the_proxy_are_refused_whole(pool: PgPool) {
    let console = serve_console(pool.clone(), "127.0.0.1:0", &[], proxy_args(&[PROXY])).await;
    let proxy = client_from(PROXY);
    let whoami = |headers: reqwest::header::HeaderMap| {
        let request =
            proxy.post(console.url("/api/whoami")).header("sec-fetch-site", "same-origin").headers(headers);
        answer(request)
    };
    let header_map = |pairs: &[(&'static str, &[u8])]| {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    };
    let huge = vec![b'a'; 64 * 1024];
    for (what, pairs, says) in [
        (
            "a client's copy the proxy appended to",
            vec![
                ("x-forwarded-user", &b"mallory"[..]),
                ("x-forwarded-user", b"vera"),
                ("x-forwarded-groups", b"staff"),
            ],
            "more than once",
        ),
        (
            "a second groups header",
            vec![
                ("x-forwarded-user", &b"vera"[..]),
                ("x-forwarded-groups", b"staff"),
                ("x-forwarded-groups", b"ops"),
            ],
            "more than once",
        ),
        (
            "Latin-1, not UTF-8",
            vec![("x-forwarded-user", &b"Jos\xe9"[..]), ("x-forwarded-groups", b"staff")],
            "not UTF-8",
        ),
        ("a tab", vec![("x-forwarded-user", &b"vera\tops"[..]), ("x-forwarded-groups", b"staff")], "control"),
        ("64 KB", vec![("x-forwarded-user", &huge[..]), ("x-forwarded-groups", b"staff")], "too long"),
    ] {
        let (status, text) = whoami(header_map(&pairs)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        assert!(text.contains(says), "{what}: {text}");
    }
    // UTF-8 names and markup are names: shown as text, recorded as they are.
    let name = "<img src=x onerror=alert(1)> José";
    let headers = header_map(&[("x-forwarded-user", name.as_bytes()), ("x-forwarded-groups", b" ops ")]);
    let (status, text) = whoami(headers.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("José") && text.contains("operator"), "{text}");
    let response = proxy.get(console.url("/")).headers(headers).send().await.unwrap();
    let html = response.text().await.unwrap();
    assert!(!html.contains("<img src=x"), "the name was rendered as markup");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; José"), "{html}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn cross_site_and_host_checks_still_apply_behind_the_proxy(pool: PgPool) {
    let id = dead_job(&pool, "charge", serde_json::json!({}), "declined").await;
    let console = serve_console(pool.clone(), "127.0.0.1:0", &[], proxy_args(&[PROXY])).await;
    let proxy = client_from(PROXY);
    let otto = signed_in("otto", None, "ops");
    let delete = ActOnJobs { action: JobAction::Delete, state: State::Dead, ids: vec![id], source: None };
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let mut request = proxy
            .post(console.url("/api/act_on_jobs"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(name, value)
            .body(serde_qs::to_string(&delete).unwrap());
        for (header, value) in &otto {
            request = request.header(*header, value);
        }
        let (status, text) = answer(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {text}");
    }
    // The proxy is on this machine, so a page that rebinds its name to 127.0.0.1 could send the
    // headers from here: only loopback (and --allowed-host) names are served.
    let request = "GET / HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-User: otto\r\n\
                   X-Forwarded-Groups: ops\r\nConnection: close\r\n\r\n";
    let answer = raw_request(PROXY, console.addr, request).await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(
        answer.contains("a loopback --trusted-proxy") && answer.contains("--allowed-host evil.example"),
        "{answer}"
    );
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 1);

    // Metrics take a proxy user like any console user; health needs no one.
    let (status, text) = console.get(&proxy, "/metrics", &signed_in("vera", None, "staff")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("# TYPE backstop_jobs gauge"), "{text}");
    let (status, _) = console.get(&proxy, "/metrics", &signed_in("mallory", None, "contractors")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = console.get(&client_from(ELSEWHERE), "/readyz", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn an_ipv4_proxy_is_recognised_on_a_dual_stack_socket(pool: PgPool) {
    // Bound to [::], the console sees an IPv4 client as ::ffff:127.0.0.2; the configured
    // network is IPv4, as people write it.
    let console = serve_console(pool, "[::]:0", &[], proxy_args(&["127.0.0.0/31"])).await;
    let at = |console: &Served, path: &str| format!("http://127.0.0.1:{}{path}", console.addr.port());
    let whoami = |client: reqwest::Client| {
        let request = client
            .post(at(&console, "/api/whoami"))
            .header("sec-fetch-site", "same-origin")
            .header("x-forwarded-user", "vera")
            .header("x-forwarded-groups", "staff");
        answer(request)
    };
    let (status, text) = whoami(client_from("127.0.0.1")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"name":"vera","role":"viewer"}"#));
    let (status, text) = whoami(client_from(PROXY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "127.0.0.2 is outside 127.0.0.0/31: {text}");
    assert!(text.contains("it came from 127.0.0.2"), "the address as IPv4: {text}");
}
