//! Browser-facing protections: host names the console answers to, cross-site request refusal
//! for every write, and the security headers every response carries.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: refuses state-changing requests that a browser says come from another site.
///
/// Every console write is a `POST` (server functions). Browsers send `Sec-Fetch-Site` on every
/// request (all current ones) and `Origin` on every cross-origin `POST`; a request with either
/// saying "another site" is refused. One with neither is not from a browser (curl, scripts), so
/// it cannot ride on a signed-in user's browser, which is what cross-site request forgery
/// needs. This is the check Go's `http.CrossOriginProtection` makes, and it needs no token in
/// every form.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_safe_method(request.method()) || is_same_origin(request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "Cross-site request refused: console actions must come from the console's own pages.",
        )
            .into_response()
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // "none": typed in the address bar or a bookmark, by the user themselves.
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
            host.is_some() && origin_host == host
        }
    }
}

/// Middleware: the headers every response carries. The page's Content-Security-Policy is set by
/// the app itself (`app::shell`), because it includes the nonce of that page's inline scripts.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; object-src 'none'"));
    response
}

/// The host names the console answers to.
///
/// Without sign-in the console trusts whoever can reach loopback, and a browser is one of those:
/// a web page on `evil.example` can make its name resolve to 127.0.0.1 (DNS rebinding), and its
/// scripts then call the console as the same origin, with no credentials needed. What such a
/// request cannot hide is its `Host`, the attacker's name: so without sign-in only loopback names
/// (and `--allowed-host` ones) are served. The same holds with a trusted proxy on this machine
/// (a loopback `--trusted-proxy`): a rebound page's scripts come from a trusted address and may
/// set any header, the sign-in ones too. With users (and proxies elsewhere), every request needs
/// credentials the browser keeps for the console's own name, or must come from the proxy, so any
/// name may be used (a proxy's, a DNS name).
#[derive(Debug, Clone)]
pub struct ServedHosts {
    /// `None`: any host (users sign in).
    only: Option<Arc<Vec<AllowedHost>>>,
    /// Why only those: what the refusal explains.
    why: HostRule,
}

/// Why a console answers only to some host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRule {
    /// Nobody signs in.
    NoSignIn,
    /// Sign-in headers are believed from a proxy on this machine.
    LoopbackProxy,
}

impl ServedHosts {
    /// A console that answers to any name (`None`), or only to loopback names and `allowed`.
    pub fn new(only: Option<HostRule>, allowed: &[AllowedHost]) -> Self {
        ServedHosts {
            only: only.is_some().then(|| Arc::new(allowed.to_vec())),
            why: only.unwrap_or(HostRule::NoSignIn),
        }
    }

    /// Whether a request naming `authority` (a `Host` header or URI authority) is served.
    fn serves(&self, authority: Option<&str>) -> bool {
        let Some(only) = &self.only else { return true };
        let Some(name) = authority.and_then(host_name) else { return false };
        is_loopback_name(&name) || only.iter().any(|allowed| allowed.0 == name)
    }
}

/// `localhost`, any `*.localhost` (RFC 6761: always loopback), 127.0.0.0/8 and `::1` (also as
/// `::ffff:127.x.y.z`).
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Middleware: answers 421 Misdirected Request, in plain words, to a request for a host name
/// the console does not serve (see [`ServedHosts`]). A request without any host name (no
/// browser sends one) is refused too.
pub async fn refuse_unknown_hosts(
    State(hosts): State<ServedHosts>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/2 names the host in the URI (`:authority`), HTTP/1.1 in the Host header.
    let authority = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).and_then(|host| host.to_str().ok()),
    };
    if hosts.serves(authority) {
        return next.run(request).await;
    }
    let named = match authority.and_then(host_name) {
        Some(name) => {
            let name: String = name.chars().take(100).collect();
            format!(
                "the host \"{name}\". If that name is yours (a proxy in front of the console, say), \
                     start the console with --allowed-host {name}"
            )
        }
        None => "no host it can read: open http://127.0.0.1 or http://localhost, or start the console \
                 with --allowed-host NAME"
            .to_owned(),
    };
    let because = match hosts.why {
        HostRule::NoSignIn => "without sign-in (--user or --trusted-proxy)",
        HostRule::LoopbackProxy => {
            "believing sign-in headers from a proxy on this machine (a loopback --trusted-proxy)"
        }
    };
    let message = format!(
        "Refused: {because}, this console answers only to loopback names (localhost, 127.0.0.1, \
         [::1]) and --allowed-host names, so that another web site cannot reach it through the \
         browser. This request named {named}.\n"
    );
    (StatusCode::MISDIRECTED_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message)
        .into_response()
}

/// One `--allowed-host` name: a host name or address browsers may use besides the loopback
/// ones, lower-case, without a port (any port is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost(String);

impl std::str::FromStr for AllowedHost {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match host_name(value.trim()) {
            Some(name) if !name.contains(['/', '@', ' ', ':']) || name.parse::<IpAddr>().is_ok() => {
                Ok(AllowedHost(name))
            }
            _ => Err(format!("{value:?} is not a host name or address (such as proxy.internal or 10.0.0.5)")),
        }
    }
}

/// The host name in a `Host` header or URI authority (`name`, `name:port`, `[v6]:port`),
/// lower-case and without a trailing dot; `None` if it does not parse.
fn host_name(authority: &str) -> Option<String> {
    let name = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        v6
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return None,
            None => authority,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

fn is_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn host_names_parse_with_or_without_a_port() {
        assert_eq!(host_name("LocalHost:8080").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host_name("[::1]").as_deref(), Some("::1"));
        assert_eq!(host_name("example.com.").as_deref(), Some("example.com"));
        assert_eq!(host_name("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("a:b:c"), None, "a bare IPv6 address needs brackets");
        assert_eq!(host_name("example.com:http"), None);
        assert_eq!(host_name(""), None);
        assert!("proxy.internal:8443".parse::<AllowedHost>().is_ok());
        assert!("https://proxy.internal/".parse::<AllowedHost>().is_err());
    }

    #[test]
    fn without_users_only_loopback_names_and_allowed_ones_are_served() {
        let hosts = ServedHosts::new(Some(HostRule::NoSignIn), &["Proxy.Internal".parse().unwrap()]);
        for served in [
            "localhost",
            "a.b.localhost:1",
            "127.0.0.1",
            "127.255.0.9:80",
            "[::1]:8080",
            "[::ffff:127.0.0.1]",
            "proxy.internal:8443",
        ] {
            assert!(hosts.serves(Some(served)), "{served}");
        }
        for refused in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "localhost:notaport",
        ] {
            assert!(!hosts.serves(Some(refused)), "{refused}");
        }
        assert!(!hosts.serves(None));
        assert!(ServedHosts::new(None, &[]).serves(Some("evil.example")), "with users, any name");
    }

    #[test]
    fn same_origin_requests_pass() {
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(is_same_origin(&headers(&[("host", "127.0.0.1:8080")])), "no browser headers: not a browser");
    }

    #[test]
    fn cross_site_requests_are_refused() {
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!is_same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])));
    }
}
