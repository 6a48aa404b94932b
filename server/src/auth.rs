//! Who may use the console. With no users configured the console is for whoever can reach the
//! machine's loopback interface, and everyone is an operator; with users, every request needs
//! HTTP Basic credentials, and each user is a viewer (read) or an operator (act).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use app::model::{CurrentUser, Role};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

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

    /// Refuses a console that anyone on the network could change without signing in.
    pub fn check_bind(&self, bind: SocketAddr) -> anyhow::Result<()> {
        if self.0.is_empty() && !bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve on {bind} without sign-in: anyone who can reach it could retry and \
                 delete jobs. Add users with --user NAME:PASSWORD:ROLE (or BACKSTOP_USERS, comma-separated; \
                 ROLE is viewer or operator), or bind to 127.0.0.1"
            );
        }
        Ok(())
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

/// Who may read `/metrics`: whoever may read the console's pages (everyone on loopback when
/// there are no users; any signed-in user, viewer or operator, otherwise), and anyone with the
/// `--metrics-token` as a bearer token, for a scraper that should not hold a console password.
#[derive(Debug, Clone)]
pub struct MetricsReaders {
    users: Users,
    token: Option<Arc<str>>,
}

impl MetricsReaders {
    pub fn new(users: Users, token: Option<String>) -> Self {
        MetricsReaders { users, token: token.filter(|t| !t.is_empty()).map(Arc::from) }
    }

    fn may_read(&self, authorization: Option<&HeaderValue>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let bearer = authorization.and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "));
        if let (Some(token), Some(given)) = (&self.token, bearer) {
            return constant_time_eq(token.as_bytes(), given.trim().as_bytes());
        }
        self.users.authenticate(authorization).is_some()
    }
}

/// Middleware for `/metrics`: answers 401 to a request that may not read it (see
/// [`MetricsReaders`]).
pub async fn require_metrics_reader(
    State(readers): State<MetricsReaders>,
    request: Request,
    next: Next,
) -> Response {
    if readers.may_read(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, r#"Basic realm="Backstop console", charset="UTF-8""#)],
        "Metrics need a console user's credentials, or the --metrics-token as a bearer token.",
    )
        .into_response()
}

/// Compares without returning early, so the time taken does not tell how much of a guessed
/// password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: puts the [`CurrentUser`] on the request, or answers 401 asking for credentials.
pub async fn require_user(State(users): State<Users>, mut request: Request, next: Next) -> Response {
    let user = if users.0.is_empty() {
        Some(CurrentUser { name: LOCAL_USER.to_owned(), role: Role::Operator })
    } else {
        users.authenticate(request.headers().get(header::AUTHORIZATION))
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="Backstop console", charset="UTF-8""#)],
            "Sign in to use the Backstop console.",
        )
            .into_response(),
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
    fn only_loopback_may_go_without_users() {
        let none = Users::default();
        assert!(none.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(none.check_bind("[::1]:8080".parse().unwrap()).is_ok());
        let refused = none.check_bind("0.0.0.0:8080".parse().unwrap()).unwrap_err().to_string();
        assert!(refused.contains("--user"), "{refused}");
        let some = Users::new(vec!["a:b:viewer".parse().unwrap()]);
        assert!(some.check_bind("0.0.0.0:8080".parse().unwrap()).is_ok());
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
