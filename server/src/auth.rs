//! Who may use the console, decided for each request in one place ([`Access::identify`]).
//!
//! - No users and no proxy sign-in: the console is for whoever can reach the machine's loopback
//!   interface, and everyone is an operator (`local` in the audit log).
//! - `--user NAME:PASSWORD:ROLE`: HTTP Basic credentials; each user is a viewer or an operator.
//! - `--trusted-proxy` (see [`crate::sso`]): an authenticating proxy names the user in request
//!   headers, believed only on connections from the proxy's address; groups give the role.
//!
//! Both may be configured. On a connection from a trusted proxy that names a user, that user it
//! is (the proxy signed them in; an `Authorization` header it passed on is not looked at). One
//! that names nobody may still sign in with Basic credentials (a script through a route the
//! proxy leaves open), but is never the loopback `local` operator. Everywhere else the sign-in
//! headers are ignored (and logged), and Basic credentials are the only way in.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use app::model::{CurrentUser, Role};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::sso::ProxySignIn;

/// One console user, from `--user NAME:PASSWORD:ROLE`.
#[derive(Clone)]
pub struct User {
    name: String,
    password: String,
    role: Role,
}

// Never print a password, not even in debug output.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

impl FromStr for User {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let usage = "expected NAME:PASSWORD:ROLE with ROLE viewer or operator";
        let (name, rest) = spec.split_once(':').ok_or(usage)?;
        let (password, role) = rest.rsplit_once(':').ok_or(usage)?;
        let role = match role {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            other => return Err(format!("unknown role {other:?}: {usage}")),
        };
        if name.is_empty() || password.is_empty() {
            return Err(format!("empty name or password: {usage}"));
        }
        Ok(User { name: name.to_owned(), password: password.to_owned(), role })
    }
}

/// The configured users; empty means "loopback only, no sign-in".
#[derive(Debug, Clone, Default)]
pub struct Users(Arc<Vec<User>>);

/// Who an unauthenticated loopback console's requests come from, in the audit log.
const LOCAL_USER: &str = "local";

impl Users {
    pub fn new(users: Vec<User>) -> Self {
        Users(Arc::new(users))
    }

    /// Whether no users are configured (loopback only, no sign-in).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The user these Basic credentials name, if the password matches.
    fn authenticate(&self, authorization: Option<&HeaderValue>) -> Option<CurrentUser> {
        let encoded = authorization?.to_str().ok()?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (name, password) = decoded.split_once(':')?;
        let user = self.0.iter().find(|user| user.name == name)?;
        constant_time_eq(user.password.as_bytes(), password.as_bytes())
            .then(|| CurrentUser { name: user.name.clone(), role: user.role })
    }
}

/// Why a request is not let in, as the answer it gets.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    /// Whether to ask the browser for Basic credentials (401 with `WWW-Authenticate`).
    ask_for_password: bool,
}

impl Refusal {
    pub fn new(status: StatusCode, message: String) -> Self {
        Refusal { status, message, ask_for_password: false }
    }

    fn sign_in(message: String) -> Self {
        Refusal { status: StatusCode::UNAUTHORIZED, message, ask_for_password: true }
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message + "\n")
                .into_response();
        if self.ask_for_password {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        response
    }
}

const CHALLENGE: &str = r#"Basic realm="Backstop console", charset="UTF-8""#;

/// How people sign in: Basic users, proxy sign-in, both, or neither (loopback only).
#[derive(Debug, Clone, Default)]
pub struct Access {
    users: Users,
    proxy: Option<ProxySignIn>,
}

impl Access {
    pub fn new(users: Users, proxy: Option<ProxySignIn>) -> Self {
        Access { users, proxy }
    }

    /// Whether nobody signs in: no users, no proxy (loopback only, everyone an operator).
    pub fn is_open(&self) -> bool {
        self.users.is_empty() && self.proxy.is_none()
    }

    /// Whether a trusted proxy may be on this machine, so that anything on it, a browser too,
    /// can send the sign-in headers from a trusted address.
    pub fn trusts_loopback(&self) -> bool {
        self.proxy.as_ref().is_some_and(ProxySignIn::trusts_loopback)
    }

    /// Refuses a console that anyone on the network could change without signing in.
    pub fn check_bind(&self, bind: SocketAddr) -> anyhow::Result<()> {
        if self.is_open() && !bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve on {bind} without sign-in: anyone who can reach it could retry and \
                 delete jobs. Add users with --user NAME:PASSWORD:ROLE (or BACKSTOP_USERS, comma-separated; \
                 ROLE is viewer or operator), or sign in through an authenticating proxy with \
                 --trusted-proxy ADDRESS and --operator-group/--viewer-group, or bind to 127.0.0.1"
            );
        }
        Ok(())
    }

    /// Who `request` is from, and what they may do; or why it is refused. `peer` is the address
    /// of the TCP connection it came on (`None`: unknown, trusted for nothing).
    ///
    /// The one decision every console route takes its user from (see the module's header for
    /// the rules).
    pub fn identify(&self, request: &Parts, peer: Option<SocketAddr>) -> Result<CurrentUser, Refusal> {
        let authorization = request.headers.get(header::AUTHORIZATION);
        if let Some(proxy) = &self.proxy {
            let peer_ip = peer.map(|p| p.ip().to_canonical());
            if let Some(proxy_ip) = peer_ip.filter(|ip| proxy.trusts(*ip)) {
                if let Some(user) = proxy.identify(&request.headers)? {
                    return Ok(user);
                }
                if let Some(user) = self.users.authenticate(authorization) {
                    return Ok(user);
                }
                let missing = format!(
                    "The proxy at {proxy_ip} named no user in its {} header. Sign-in through the proxy \
                     needs it to pass the signed-in user in that header on every request (or set \
                     --proxy-user-header to the header it uses).",
                    proxy.user_header()
                );
                return Err(if self.users.is_empty() {
                    Refusal::new(StatusCode::FORBIDDEN, missing)
                } else {
                    Refusal::sign_in(missing)
                });
            }
            if proxy.is_claimed(&request.headers) {
                tracing::warn!(
                    peer = %peer_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
                    "ignored sign-in headers from an address that is not a --trusted-proxy"
                );
            }
            if self.users.is_empty() {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "This console signs people in through its proxy ({}), and this request did not come \
                         from it (it came from {}). Open the console through the proxy.",
                        proxy.proxies(),
                        peer_ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string())
                    ),
                ));
            }
        } else if self.users.is_empty() {
            return Ok(CurrentUser { name: LOCAL_USER.to_owned(), role: Role::Operator });
        }
        self.users
            .authenticate(authorization)
            .ok_or_else(|| Refusal::sign_in("Sign in to use the Backstop console.".to_owned()))
    }
}

/// The address of the connection a request came on, where the server recorded it.
fn peer(request: &Parts) -> Option<SocketAddr> {
    request.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
}

/// Who may read `/metrics`: whoever may read the console's pages (everyone on loopback when
/// nobody signs in; any signed-in user, viewer or operator, otherwise), and anyone with the
/// `--metrics-token` as a bearer token, for a scraper that should not hold a console password.
#[derive(Debug, Clone)]
pub struct MetricsReaders {
    access: Access,
    token: Option<Arc<str>>,
}

impl MetricsReaders {
    pub fn new(access: Access, token: Option<String>) -> Self {
        MetricsReaders { access, token: token.filter(|t| !t.is_empty()).map(Arc::from) }
    }

    fn may_read(&self, request: &Parts) -> Result<(), Refusal> {
        if self.access.is_open() {
            return Ok(());
        }
        let authorization = request.headers.get(header::AUTHORIZATION);
        let bearer = authorization.and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "));
        if let (Some(token), Some(given)) = (&self.token, bearer) {
            return if constant_time_eq(token.as_bytes(), given.trim().as_bytes()) {
                Ok(())
            } else {
                Err(Refusal::sign_in(METRICS_SIGN_IN.to_owned()))
            };
        }
        match self.access.identify(request, peer(request)) {
            Ok(_) => Ok(()),
            Err(refusal) if refusal.ask_for_password => Err(Refusal::sign_in(METRICS_SIGN_IN.to_owned())),
            Err(refusal) => Err(refusal),
        }
    }
}

const METRICS_SIGN_IN: &str =
    "Metrics need a console user's credentials, or the --metrics-token as a bearer token.";

/// Middleware for `/metrics`: refuses a request that may not read it (see [`MetricsReaders`]).
pub async fn require_metrics_reader(
    State(readers): State<MetricsReaders>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match readers.may_read(&parts) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Compares without returning early, so the time taken does not tell how much of a guessed
/// password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: puts the [`CurrentUser`] on the request, or refuses it (see
/// [`Access::identify`]).
pub async fn require_user(State(access): State<Access>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match access.identify(&parts, peer(&parts)) {
        Ok(user) => {
            let mut request = Request::from_parts(parts, body);
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn users_parse_from_flags() {
        let user: User = "alice:pa:ss:operator".parse().unwrap();
        assert_eq!(
            (user.name.as_str(), user.password.as_str(), user.role),
            ("alice", "pa:ss", Role::Operator)
        );
        assert!("alice:secret".parse::<User>().is_err());
        assert!("alice:secret:admin".parse::<User>().unwrap_err().contains("unknown role"));
        assert!(!format!("{user:?}").contains("pa:ss"), "debug output shows the password");
    }

    #[test]
    fn only_loopback_may_go_without_sign_in() {
        let none = Access::default();
        assert!(none.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(none.check_bind("[::1]:8080".parse().unwrap()).is_ok());
        let refused = none.check_bind("0.0.0.0:8080".parse().unwrap()).unwrap_err().to_string();
        assert!(refused.contains("--user") && refused.contains("--trusted-proxy"), "{refused}");
        let some = Access::new(Users::new(vec!["a:b:viewer".parse().unwrap()]), None);
        assert!(some.check_bind("0.0.0.0:8080".parse().unwrap()).is_ok());
        let proxy = crate::sso::ProxyArgs {
            trusted_proxies: vec!["10.0.0.5".parse().unwrap()],
            viewer_groups: vec!["staff".into()],
            ..crate::sso::ProxyArgs::none()
        };
        let sso = Access::new(Users::default(), crate::sso::ProxySignIn::new(&proxy).unwrap());
        assert!(sso.check_bind("0.0.0.0:8080".parse().unwrap()).is_ok(), "proxy sign-in is sign-in");
    }

    #[test]
    fn credentials_are_checked() {
        let users =
            Users::new(vec!["vera:v-pass:viewer".parse().unwrap(), "otto:o-pass:operator".parse().unwrap()]);
        assert_eq!(users.authenticate(Some(&basic("vera:v-pass"))).unwrap().role, Role::Viewer);
        assert_eq!(users.authenticate(Some(&basic("otto:o-pass"))).unwrap().role, Role::Operator);
        assert!(users.authenticate(Some(&basic("otto:v-pass"))).is_none());
        assert!(users.authenticate(Some(&basic("nobody:o-pass"))).is_none());
        assert!(users.authenticate(Some(&HeaderValue::from_static("Bearer x"))).is_none());
        assert!(users.authenticate(None).is_none());
    }
}
