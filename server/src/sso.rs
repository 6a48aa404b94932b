//! Single sign-on through an authenticating proxy (oauth2-proxy, Authelia, Pomerium, Traefik
//! forward-auth, nginx `auth_request`, Cloudflare Access through a tunnel): the proxy signs
//! people in and passes who they are in request headers, and the console believes those headers
//! only on connections whose TCP peer is one of the configured proxy addresses
//! (`--trusted-proxy`). Never `X-Forwarded-For` or any other header for that decision: whoever
//! connects writes those.
//!
//! Header values are untrusted text: one of each header at most (a proxy that appends rather
//! than replaces would otherwise let a client add a group of its own), UTF-8, no control or
//! bidirectional-override characters, and short. A value that breaks a rule refuses the
//! request; it is never used in part.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use app::model::{CurrentUser, Role};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::auth::Refusal;

/// The command-line options of proxy sign-in (flattened into `serve` and `demo`).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// The address (10.0.0.5, ::1) or network (10.0.0.0/8, fd00::/64) of an authenticating
    /// proxy whose sign-in headers are believed: only a connection from one of these carries a
    /// user in `--proxy-user-header`. Repeat for more. Needs `--operator-group` or
    /// `--viewer-group`.
    #[arg(long = "trusted-proxy", env = "BACKSTOP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyNet>,
    /// The header in which the proxy names the signed-in user (required on every request from
    /// the proxy).
    #[arg(long, env = "BACKSTOP_PROXY_USER_HEADER", default_value = "X-Forwarded-User")]
    pub proxy_user_header: HeaderName,
    /// The header with the user's e-mail address (optional); when present, it is the name the
    /// console shows and the audit log records.
    #[arg(long, env = "BACKSTOP_PROXY_EMAIL_HEADER", default_value = "X-Forwarded-Email")]
    pub proxy_email_header: HeaderName,
    /// The header with the user's groups, comma-separated.
    #[arg(long, env = "BACKSTOP_PROXY_GROUPS_HEADER", default_value = "X-Forwarded-Groups")]
    pub proxy_groups_header: HeaderName,
    /// A group whose members are operators (act). Repeat for more; `*` makes everyone the
    /// proxy signs in an operator. Compared exactly (case too), after trimming spaces.
    #[arg(long = "operator-group", env = "BACKSTOP_OPERATOR_GROUPS", value_delimiter = ',')]
    pub operator_groups: Vec<String>,
    /// A group whose members are viewers (read). Repeat for more; `*` makes everyone the proxy
    /// signs in (and not an operator) a viewer. Someone in neither kind of group is refused.
    #[arg(long = "viewer-group", env = "BACKSTOP_VIEWER_GROUPS", value_delimiter = ',')]
    pub viewer_groups: Vec<String>,
}

impl ProxyArgs {
    /// No proxy sign-in, default header names.
    #[cfg(test)]
    pub fn none() -> Self {
        ProxyArgs {
            trusted_proxies: Vec::new(),
            proxy_user_header: HeaderName::from_static("x-forwarded-user"),
            proxy_email_header: HeaderName::from_static("x-forwarded-email"),
            proxy_groups_header: HeaderName::from_static("x-forwarded-groups"),
            operator_groups: Vec::new(),
            viewer_groups: Vec::new(),
        }
    }
}

/// One `--trusted-proxy`: an address or a network, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    /// The network's address, host bits zero; IPv4 also when written `::ffff:a.b.c.d`.
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    /// Whether `ip` is in this network. An IPv4 peer on an IPv6 socket (`::ffff:10.0.0.1`, as
    /// a console bound to `[::]` sees it) is matched as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip.to_bits(), self.prefix) == net.to_bits(),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip.to_bits(), self.prefix) == net.to_bits(),
            _ => false,
        }
    }

    /// Whether any loopback address (127.0.0.0/8, `::1`) is in this network: a proxy on this
    /// machine.
    fn includes_loopback(&self) -> bool {
        match self.addr {
            // Two networks overlap when they agree on the shorter of their prefixes.
            IpAddr::V4(net) => {
                let common = self.prefix.min(8);
                mask_v4(net.to_bits(), common) == mask_v4(u32::from_be_bytes([127, 0, 0, 0]), common)
            }
            IpAddr::V6(_) => self.contains(std::net::Ipv6Addr::LOCALHOST.into()),
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { bits & (u32::MAX << (32 - u32::from(prefix))) }
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { bits & (u128::MAX << (128 - u32::from(prefix))) }
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let usage = "expected an address (10.0.0.5, ::1) or a network (10.0.0.0/8, fd00::/64)";
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (value, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{value:?}: {usage}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("{value:?}: the prefix length must be 0 to {max}")),
            },
        };
        // `::ffff:10.0.0.0/104` is 10.0.0.0/8: matched as IPv4, as peers are.
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            other => (other, prefix),
        };
        if prefix == 0 {
            return Err(format!(
                "{value:?} trusts every address: anyone who can connect could sign in as anyone by \
                 sending the header. Name the proxy's address or network"
            ));
        }
        let masked = match addr {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4.to_bits(), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6.to_bits(), prefix).into()),
        };
        if masked != addr {
            return Err(format!(
                "{value:?} has bits set beyond its /{prefix} prefix: did you mean {masked}/{prefix} (the \
                 network) or {addr} (the one address)?"
            ));
        }
        Ok(ProxyNet { addr, prefix })
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Longest user name or e-mail address accepted, in bytes (an e-mail address is at most 254).
const MAX_NAME: usize = 256;
/// Longest groups header accepted, in bytes, and most groups in it.
const MAX_GROUPS_BYTES: usize = 8192;
const MAX_GROUPS: usize = 256;
/// A configured group that every user the proxy signs in is in.
const EVERYONE: &str = "*";

/// Proxy sign-in: who the proxies are, which headers they set, and which groups get which role.
#[derive(Debug, Clone)]
pub struct ProxySignIn(Arc<Config>);

#[derive(Debug)]
struct Config {
    proxies: Vec<ProxyNet>,
    user: HeaderName,
    email: HeaderName,
    groups: HeaderName,
    operator_groups: Vec<String>,
    viewer_groups: Vec<String>,
}

impl ProxySignIn {
    /// Proxy sign-in as configured, `None` when it is not; an error for a configuration that
    /// could not work as meant.
    pub fn new(args: &ProxyArgs) -> anyhow::Result<Option<Self>> {
        let groups = |list: &[String]| -> Vec<String> {
            list.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect()
        };
        let (operator_groups, viewer_groups) = (groups(&args.operator_groups), groups(&args.viewer_groups));
        let mapped = !operator_groups.is_empty() || !viewer_groups.is_empty();
        match (args.trusted_proxies.is_empty(), mapped) {
            (true, false) => return Ok(None),
            (true, true) => anyhow::bail!(
                "--operator-group and --viewer-group map the groups an authenticating proxy sends: add \
                 --trusted-proxy with the proxy's address"
            ),
            (false, false) => anyhow::bail!(
                "--trusted-proxy needs --operator-group or --viewer-group (or both) to say who the proxy's \
                 users are: --viewer-group '*' makes everyone it signs in a viewer"
            ),
            (false, true) => {}
        }
        let (user, email, group) =
            (&args.proxy_user_header, &args.proxy_email_header, &args.proxy_groups_header);
        if user == email || user == group || email == group {
            anyhow::bail!("--proxy-user-header, --proxy-email-header and --proxy-groups-header must differ");
        }
        Ok(Some(ProxySignIn(Arc::new(Config {
            proxies: args.trusted_proxies.clone(),
            user: user.clone(),
            email: email.clone(),
            groups: group.clone(),
            operator_groups,
            viewer_groups,
        }))))
    }

    /// Whether a connection from `peer` comes from a trusted proxy.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.proxies.iter().any(|net| net.contains(peer))
    }

    /// Whether a trusted proxy may be on this machine, where anything (a browser, too) can
    /// connect from its address.
    pub fn trusts_loopback(&self) -> bool {
        self.0.proxies.iter().any(ProxyNet::includes_loopback)
    }

    /// The user header's name, for messages.
    pub fn user_header(&self) -> &HeaderName {
        &self.0.user
    }

    /// The configured proxies, for messages.
    pub fn proxies(&self) -> String {
        self.0.proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }

    /// Whether a request carries any of the sign-in headers (for a warning when one comes from
    /// elsewhere).
    pub fn is_claimed(&self, headers: &HeaderMap) -> bool {
        [&self.0.user, &self.0.email, &self.0.groups].into_iter().any(|name| headers.contains_key(name))
    }

    /// Who the proxy says a request is from, with the role their groups give: `Ok(None)` when it
    /// names nobody (no user header, or an empty one). Only for requests from a trusted proxy.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<CurrentUser>, Refusal> {
        let config = &self.0;
        let Some(user) = header_text(headers, &config.user, MAX_NAME)?.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let email = header_text(headers, &config.email, MAX_NAME)?.filter(|e| !e.is_empty());
        let groups = header_text(headers, &config.groups, MAX_GROUPS_BYTES)?.unwrap_or("");
        let groups = parse_groups(groups)
            .ok_or_else(|| bad_header(&config.groups, &format!("it lists more than {MAX_GROUPS} groups")))?;
        let name = email.unwrap_or(user).to_owned();
        match config.role(&groups) {
            Some(role) => Ok(Some(CurrentUser { name, role })),
            None => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Signed in as {name}, who is in none of this console's groups (operators: {}; viewers: \
                     {}). The proxy says {name} is in {}. Ask whoever runs the console to add you to one, \
                     or to map one of your groups with --operator-group or --viewer-group.",
                    list_or_none(&config.operator_groups),
                    list_or_none(&config.viewer_groups),
                    if groups.is_empty() {
                        format!("no groups (its {} header was empty or missing)", config.groups)
                    } else {
                        list_or_none(&groups)
                    },
                ),
            )),
        }
    }
}

impl Config {
    /// Operator if in any operator group, else viewer if in any viewer group, else nothing.
    fn role(&self, groups: &[&str]) -> Option<Role> {
        let member =
            |configured: &[String]| configured.iter().any(|c| c == EVERYONE || groups.iter().any(|g| g == c));
        if member(&self.operator_groups) {
            Some(Role::Operator)
        } else if member(&self.viewer_groups) {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// `a, b, c`, shortened past 20 names; `none` for none.
fn list_or_none<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut list = names.iter().take(20).map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    if names.len() > 20 {
        list.push_str(&format!(" and {} more", names.len() - 20));
    }
    list
}

/// The groups in a comma-separated header value, trimmed, without empty ones; `None` past
/// [`MAX_GROUPS`].
fn parse_groups(value: &str) -> Option<Vec<&str>> {
    let groups: Vec<&str> = value.split(',').map(str::trim).filter(|g| !g.is_empty()).collect();
    (groups.len() <= MAX_GROUPS).then_some(groups)
}

/// The one value of header `name` as text, trimmed: `Ok(None)` if absent, a refusal if it is
/// repeated, too long, not UTF-8, or has a control or bidirectional-override character.
fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    max: usize,
) -> Result<Option<&'a str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(bad_header(
            name,
            "it came more than once. The proxy must replace any copy the client sent, not add its own",
        ));
    }
    check_text(value, max).map(Some).map_err(|why| bad_header(name, why))
}

/// `value` as text, trimmed, or why it cannot be a name.
fn check_text(value: &HeaderValue, max: usize) -> Result<&str, &'static str> {
    if value.len() > max {
        return Err("it is too long");
    }
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| "it is not UTF-8")?;
    if text.chars().any(is_forbidden) {
        return Err("it contains a control or bidirectional-override character");
    }
    Ok(text.trim())
}

/// Control characters (C0, DEL, C1: tab too), and the characters that reorder displayed text,
/// which could make one name look like another in the header bar or the audit log.
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn bad_header(name: &HeaderName, why: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        format!("The sign-in header {name} from the proxy cannot be used: {why}."),
    )
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn net(spec: &str) -> ProxyNet {
        spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn sign_in(operators: &[&str], viewers: &[&str]) -> ProxySignIn {
        let args = ProxyArgs {
            trusted_proxies: vec![net("10.0.0.0/8")],
            operator_groups: operators.iter().map(|g| (*g).to_owned()).collect(),
            viewer_groups: viewers.iter().map(|g| (*g).to_owned()).collect(),
            ..ProxyArgs::none()
        };
        ProxySignIn::new(&args).unwrap().unwrap()
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn proxy_addresses_and_networks_parse() {
        assert_eq!(net("10.0.0.5").to_string(), "10.0.0.5");
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
        assert_eq!(net("fd00::/64").to_string(), "fd00::/64");
        assert_eq!(net("::1").to_string(), "::1");
        assert_eq!(net("::ffff:10.0.0.0/104"), net("10.0.0.0/8"), "a mapped network is its IPv4 one");
        assert_eq!(net("::ffff:10.1.2.3"), net("10.1.2.3"));
        for (bad, says) in [
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("0.0.0.0/0", "trusts every address"),
            ("::/0", "trusts every address"),
            ("10.0.0.0/33", "0 to 32"),
            ("fd00::/129", "0 to 128"),
            ("10.0.0.0/+8", "0 to 32"),
            ("10.0.0.0/", "0 to 32"),
            ("proxy.internal", "expected an address"),
            ("10.0.0", "expected an address"),
            ("", "expected an address"),
        ] {
            let error = bad.parse::<ProxyNet>().unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn peers_match_their_networks_ipv4_mapped_too() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.200.3.4")));
        assert!(ten.contains(ip("::ffff:10.0.0.1")), "an IPv4 peer on an IPv6 socket");
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(!ten.contains(ip("::ffff:11.0.0.1")));
        assert!(!ten.contains(ip("::a00:1")), "IPv4-compatible (not mapped) is IPv6");
        let one = net("127.0.0.2");
        assert!(one.contains(ip("127.0.0.2")) && !one.contains(ip("127.0.0.1")));
        let v6 = net("fd00:1::/32");
        assert!(v6.contains(ip("fd00:1:ffff::9")) && !v6.contains(ip("fd00:2::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(net("::1").contains(ip("::1")) && !net("::1").contains(ip("127.0.0.1")));
        for local in ["127.0.0.0/8", "127.0.0.2", "127.1.0.0/16", "64.0.0.0/2", "::1", "::/1"] {
            assert!(net(local).includes_loopback(), "{local}");
        }
        for elsewhere in ["10.0.0.0/8", "128.0.0.0/8", "126.0.0.0/8", "fd00::/8", "::2"] {
            assert!(!net(elsewhere).includes_loopback(), "{elsewhere}");
        }
    }

    proptest! {
        #[test]
        fn an_ipv4_network_holds_exactly_the_addresses_sharing_its_prefix(
            network in any::<u32>(), prefix in 1u8..=32, peer in any::<u32>()
        ) {
            let shift = 32 - u32::from(prefix);
            let network = (network >> shift) << shift;
            let net: ProxyNet = format!("{}/{prefix}", Ipv4Addr::from(network)).parse().unwrap();
            let inside = (peer >> shift) == (network >> shift);
            prop_assert_eq!(net.contains(Ipv4Addr::from(peer).into()), inside);
            prop_assert_eq!(net.contains(Ipv4Addr::from(peer).to_ipv6_mapped().into()), inside);
            let in_network = Ipv4Addr::from(network | (peer & (u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0))));
            prop_assert!(net.contains(in_network.into()));
        }

        #[test]
        fn an_ipv6_network_holds_exactly_the_addresses_sharing_its_prefix(
            network in any::<u128>(), prefix in 1u8..=128, peer in any::<u128>()
        ) {
            let shift = 128 - u32::from(prefix);
            let network = (network >> shift) << shift;
            let text = format!("{}/{prefix}", Ipv6Addr::from(network));
            // A mapped IPv4 network parses as IPv4: checked above.
            prop_assume!(Ipv6Addr::from(network).to_ipv4_mapped().is_none() || prefix < 96);
            let net: ProxyNet = text.parse().unwrap();
            prop_assert_eq!(net.contains(Ipv6Addr::from(peer).into()), (peer >> shift) == (network >> shift));
        }

        #[test]
        fn header_values_are_used_whole_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            match check_text(&value, MAX_NAME) {
                Ok(text) => {
                    prop_assert!(bytes.len() <= MAX_NAME);
                    prop_assert!(!text.chars().any(is_forbidden));
                    prop_assert_eq!(text, std::str::from_utf8(&bytes).unwrap().trim());
                }
                Err(_) => prop_assert!(
                    bytes.len() > MAX_NAME
                        || std::str::from_utf8(&bytes).map_or(true, |t| t.chars().any(is_forbidden))
                ),
            }
        }
    }

    #[test]
    fn groups_map_to_roles_operator_first() {
        let sso = sign_in(&["ops", "sre"], &["staff"]);
        let role = |groups: &'static [u8]| {
            let map = headers(&[("x-forwarded-user", b"ann"), ("x-forwarded-groups", groups)]);
            sso.identify(&map).map(|user| user.map(|u| u.role))
        };
        assert_eq!(role(b"staff").unwrap(), Some(Role::Viewer));
        assert_eq!(role(b"staff,ops").unwrap(), Some(Role::Operator), "operator wins");
        assert_eq!(role(b" staff , sre ").unwrap(), Some(Role::Operator), "spaces trimmed");
        assert_eq!(role(b",,staff,").unwrap(), Some(Role::Viewer), "empty entries skipped");
        let refused = role(b"OPS, Staff, devs").unwrap_err();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "names compare exactly, case too");
        assert!(refused.message().contains("operators: ops, sre; viewers: staff"), "{}", refused.message());
        assert!(refused.message().contains("is in OPS, Staff, devs"), "{}", refused.message());
        let refused = role(b"").unwrap_err();
        assert!(refused.message().contains("no groups"), "{}", refused.message());
        let no_groups = headers(&[("x-forwarded-user", b"ann")]);
        assert_eq!(sso.identify(&no_groups).unwrap_err().status(), StatusCode::FORBIDDEN);
        let everyone = sign_in(&[], &["*"]);
        assert_eq!(everyone.identify(&no_groups).unwrap().unwrap().role, Role::Viewer);
        let many = vec!["g"; MAX_GROUPS + 1].join(",");
        let map = headers(&[("x-forwarded-user", b"ann"), ("x-forwarded-groups", many.as_bytes())]);
        assert_eq!(sso.identify(&map).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_e_mail_address_names_the_user_when_there_is_one() {
        let sso = sign_in(&["*"], &[]);
        let user = |pairs: &[(&'static str, &[u8])]| sso.identify(&headers(pairs)).unwrap().map(|u| u.name);
        assert_eq!(user(&[("x-forwarded-user", b" ann ")]).as_deref(), Some("ann"));
        let both = [("x-forwarded-user", &b"1234567"[..]), ("x-forwarded-email", b"ann@example.com")];
        assert_eq!(user(&both).as_deref(), Some("ann@example.com"));
        let empty_email = [("x-forwarded-user", &b"ann"[..]), ("x-forwarded-email", b"")];
        assert_eq!(user(&empty_email).as_deref(), Some("ann"));
        assert_eq!(user(&[("x-forwarded-email", b"ann@example.com")]), None, "no user header: nobody");
        assert_eq!(user(&[("x-forwarded-user", b"  ")]), None, "an empty user is nobody");
        let utf8 = "José Ñúñez".as_bytes();
        assert_eq!(user(&[("x-forwarded-user", utf8)]).as_deref(), Some("José Ñúñez"));
    }

    #[test]
    fn hostile_header_values_are_refused_never_used_in_part() {
        let sso = sign_in(&["*"], &[]);
        let long = vec![b'a'; MAX_NAME + 1];
        type Headers<'a> = Vec<(&'static str, &'a [u8])>;
        let cases: [(&str, Headers, &str); 7] = [
            (
                "repeated user",
                vec![("x-forwarded-user", b"ann"), ("x-forwarded-user", b"root")],
                "more than once",
            ),
            (
                "repeated groups",
                vec![
                    ("x-forwarded-user", b"ann"),
                    ("x-forwarded-groups", b"staff"),
                    ("x-forwarded-groups", b"ops"),
                ],
                "more than once",
            ),
            ("not UTF-8", vec![("x-forwarded-user", b"caf\xe9")], "not UTF-8"),
            ("tab", vec![("x-forwarded-user", b"ann\tadmin")], "control"),
            ("C1 control", vec![("x-forwarded-user", "ann\u{85}".as_bytes())], "control"),
            (
                "right-to-left override",
                vec![
                    ("x-forwarded-email", "ann\u{202E}moc.elpmaxe@".as_bytes()),
                    ("x-forwarded-user", b"ann"),
                ],
                "bidirectional",
            ),
            ("too long", vec![("x-forwarded-user", &long)], "too long"),
        ];
        for (what, pairs, says) in cases {
            let refused = sso.identify(&headers(&pairs)).unwrap_err();
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{what}");
            assert!(refused.message().contains(says), "{what}: {}", refused.message());
        }
        assert!(sso.identify(&headers(&[("x-forwarded-user", &long[..MAX_NAME])])).is_ok());
    }

    #[test]
    fn a_configuration_that_cannot_work_as_meant_is_refused_at_start() {
        assert!(ProxySignIn::new(&ProxyArgs::none()).unwrap().is_none(), "off by default");
        let without_groups = ProxyArgs { trusted_proxies: vec![net("10.0.0.1")], ..ProxyArgs::none() };
        let error = ProxySignIn::new(&without_groups).unwrap_err().to_string();
        assert!(error.contains("--viewer-group '*'"), "{error}");
        let blank_groups = ProxyArgs { viewer_groups: vec![" ".into()], ..without_groups.clone() };
        assert!(ProxySignIn::new(&blank_groups).is_err());
        let without_proxy = ProxyArgs { operator_groups: vec!["ops".into()], ..ProxyArgs::none() };
        let error = ProxySignIn::new(&without_proxy).unwrap_err().to_string();
        assert!(error.contains("--trusted-proxy"), "{error}");
        let same_headers = ProxyArgs {
            operator_groups: vec!["ops".into()],
            proxy_email_header: HeaderName::from_static("x-forwarded-user"),
            ..without_groups
        };
        assert!(ProxySignIn::new(&same_headers).is_err());
    }
}
