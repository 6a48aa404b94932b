//! Redaction: what a console, an alert or an audit page may show of a job without showing its
//! secrets. Pure functions, no I/O, so every place that shows or sends job data (pages, Slack
//! messages, the audit log) goes through the same rules.
//!
//! Two kinds of data are masked:
//!
//! - **JSON** ([`Redactor::json`], [`Redactor::json_for_editing`]): the value of every object
//!   key whose *name* says it is secret, at any depth, inside arrays too; and every string that
//!   contains secret-shaped text (below).
//! - **Free text** ([`Redactor::text`]): error messages, error history, unique keys, Slack
//!   messages. `password=…`, `secret: …`, `"token": "…"` pairs (any key name that is secret by
//!   the rule below), `Authorization: Bearer …` / `Basic …`, URL user-info
//!   (`https://user:pass@host`), PEM private keys, and well-known token shapes: Stripe
//!   `sk_live_…`, Slack `xoxb-…` and webhook URLs, GitHub `ghp_…`, JWTs `eyJ….….…`, AWS
//!   `AKIA…`, Google `AIza…`, GitLab `glpat-…`.
//!
//! A key name is split into words (`_`, `-`, `.` and spaces separate words, and so does a
//! camelCase hump: `apiKey` is `api key`, `APIKey` is `api key`), lower-cased, and is secret if
//! its joined words contain `token`, `secret`, `password`, `passwd`, `passphrase`,
//! `authorization`, `cookie`, `session`, `credential` or `cardnumber`, or one of its words is
//! `key`/`keys` (alone or as in `apikey`, `privatekey`), `auth`, `pwd`, `cvv` or `cvc`. So
//! `access_token`, `X-Auth-Token`, `clientSecret`, `privateKey` and `api_key` are secret;
//! `keyboard`, `monkey` and `author` are not (`key` only counts as a whole word part).
//! Extra names (the console's `--redact-keys`) match the same way as more substrings.
//!
//! Editing a masked payload: [`Redactor::json_for_editing`] writes each masked value as
//! `"[redacted /json/pointer]"`, naming where it came from, and [`Redactor::restore`] puts the
//! original value back from that path, wherever the operator moved it (an array element
//! removed before it, say). A masked key the operator deleted stays deleted; a value they typed
//! wins.
//!
//! ```
//! use backstop::redact::Redactor;
//! use serde_json::json;
//!
//! let redactor = Redactor::default();
//! let payload = json!({"user": {"id": 7, "accessToken": "abc"}, "note": "password=hunter2"});
//! assert_eq!(
//!     redactor.json(&payload),
//!     json!({"user": {"id": 7, "accessToken": "[redacted]"}, "note": "password=[redacted]"})
//! );
//! assert_eq!(
//!     redactor.text("login failed: https://bob:s3cret@db.internal/x"),
//!     "login failed: https://bob:[redacted]@db.internal/x"
//! );
//! // Shown for editing, each masked value names its place; saving it unchanged restores it.
//! let shown = redactor.json_for_editing(&payload);
//! assert_eq!(shown["user"]["accessToken"], "[redacted /user/accessToken]");
//! assert_eq!(redactor.restore(&shown, &payload).unwrap(), payload);
//! ```

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

/// What is shown in place of a secret.
pub const MASK: &str = "[redacted]";

/// Substrings of a key's joined, lower-cased words that make it secret.
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "authorization",
    "cookie",
    "session",
    "credential",
    "cardnumber",
];

/// Whole words of a key that make it secret.
const SECRET_WORDS: &[&str] = &["key", "keys", "auth", "pwd", "cvv", "cvc"];

/// Words that are a kind of key written as one word (`apikey`): the word `key` with one of
/// these before it. A list, not "ends with key", so `monkey` and `turkey` stay readable.
const KEY_PREFIXES: &[&str] =
    &["api", "private", "access", "secret", "signing", "master", "encryption", "client", "license", "ssh"];

/// Masks secrets in JSON and text; see the [module docs](self) for the rules.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Extra secret substrings, normalised like key names (lower case, letters and digits).
    extra: Vec<String>,
}

/// Why an edited payload cannot be saved as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A `"[redacted …]"` placeholder names no masked value of the original.
    #[error("the masked value at {at:?} does not name a masked value of this job; type the value instead")]
    UnknownMask {
        /// Where the placeholder is in the edited payload (a JSON pointer).
        at: String,
    },
    /// The placeholder was moved to where its value would be shown unmasked.
    #[error("the masked value at {at:?} would be shown unmasked there; keep masked values under secret keys")]
    WouldUnmask {
        /// Where the placeholder is in the edited payload (a JSON pointer).
        at: String,
    },
}

/// How masked JSON values are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `"[redacted]"`, and strings with secret-shaped text masked in place: for reading.
    Display,
    /// `"[redacted /path]"` for whole values, including strings with secret-shaped text: for
    /// editing and [`Redactor::restore`].
    Edit,
}

impl Redactor {
    /// A redactor that also treats key names containing any of `extra` as secret (compared
    /// like key names: case, `_`, `-` and camelCase do not matter).
    pub fn new(extra: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let extra = extra.into_iter().map(|name| words(name.as_ref()).concat()).filter(|n| !n.is_empty());
        Redactor { extra: extra.collect() }
    }

    /// Whether values under a key of this name are secret.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let words = words(key);
        let joined = words.concat();
        SECRET_PARTS
            .iter()
            .copied()
            .chain(self.extra.iter().map(String::as_str))
            .any(|part| joined.contains(part))
            || words.iter().any(|word| SECRET_WORDS.contains(&word.as_str()) || is_compound_key(word))
    }

    /// `text` with secret-shaped parts replaced by `[redacted]` (borrowed when nothing is).
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        // One pass over the text says which shapes occur (usually none); each is then replaced
        // in order. Measured (release, one core, 50 list rows of 2 KB payloads with 43 strings
        // each): 15 ms trying one regex at a time, 4 ms this way with the pair pre-check below
        // and keys cut from `find_iter` matches. The console benchmark's 3-key payloads cost a
        // tenth of that.
        for i in SHAPE_SET.matches(text).iter() {
            let (pattern, replacement) = &SHAPES[i];
            out = Cow::Owned(pattern.replace_all(&out, *replacement).into_owned());
        }
        if out.contains([':', '='])
            && let Some(masked) = self.mask_pairs(&out)
        {
            out = Cow::Owned(masked);
        }
        out
    }

    /// A copy of `value` with secret values replaced by `"[redacted]"` and secret-shaped text
    /// inside strings masked in place: for lists, previews, alerts and the audit log.
    pub fn json(&self, value: &Value) -> Value {
        self.walk(value, &mut String::new(), Mode::Display, &mut Vec::new())
    }

    /// A copy of `value` for a page that lets an operator edit it: each masked value (a secret
    /// key's value, or a whole string with secret-shaped text) becomes `"[redacted /pointer]"`,
    /// naming its JSON pointer, which [`Redactor::restore`] reads back.
    pub fn json_for_editing(&self, value: &Value) -> Value {
        self.walk(value, &mut String::new(), Mode::Edit, &mut Vec::new())
    }

    /// The JSON pointers of the values [`Redactor::json_for_editing`] masks, in document order:
    /// what may be revealed or restored.
    pub fn masked_paths(&self, value: &Value) -> Vec<String> {
        let mut paths = Vec::new();
        self.walk(value, &mut String::new(), Mode::Edit, &mut paths);
        paths
    }

    /// The original value at `pointer`, if it is one that is masked (never an unmasked part,
    /// so this cannot be used to read around the masking rules).
    pub fn reveal<'v>(&self, original: &'v Value, pointer: &str) -> Option<&'v Value> {
        self.masked_paths(original).iter().any(|p| p == pointer).then(|| original.pointer(pointer)).flatten()
    }

    /// `edited` (a payload shown by [`Redactor::json_for_editing`], then changed by an operator)
    /// with every placeholder still in it replaced by the original value it names. A bare
    /// `"[redacted]"` names the value at its own path. Everything else is kept as edited: a
    /// deleted key stays deleted, a typed value wins.
    ///
    /// Refused: a placeholder that names no masked value of `original`, and one moved to where
    /// its value would be shown unmasked (that would reveal it without [`Redactor::reveal`]).
    pub fn restore(&self, edited: &Value, original: &Value) -> Result<Value, RestoreError> {
        let masked = self.masked_paths(original);
        let mut restored_at = Vec::new();
        let mut out = edited.clone();
        restore_in(&mut out, &mut String::new(), original, &masked, &mut restored_at)?;
        if !restored_at.is_empty() {
            let still_masked = self.masked_paths(&out);
            for at in restored_at {
                let covered = still_masked.iter().any(|m| at == *m || at.starts_with(&format!("{m}/")));
                if !covered {
                    return Err(RestoreError::WouldUnmask { at });
                }
            }
        }
        Ok(out)
    }

    fn walk(&self, value: &Value, path: &mut String, mode: Mode, masked: &mut Vec<String>) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, inner)| {
                        let len = path.len();
                        push_token(path, key);
                        let shown = if self.is_secret_key(key) {
                            masked.push(path.clone());
                            placeholder(path, mode)
                        } else {
                            self.walk(inner, path, mode, masked)
                        };
                        path.truncate(len);
                        (key.clone(), shown)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let len = path.len();
                        push_token(path, &i.to_string());
                        let shown = self.walk(item, path, mode, masked);
                        path.truncate(len);
                        shown
                    })
                    .collect(),
            ),
            Value::String(text) => match self.text(text) {
                Cow::Borrowed(_) => value.clone(),
                Cow::Owned(partly) => {
                    masked.push(path.clone());
                    match mode {
                        Mode::Display => Value::String(partly),
                        Mode::Edit => placeholder(path, mode),
                    }
                }
            },
            other => other.clone(),
        }
    }

    /// Masks the values of `key=value` / `key: value` pairs whose key is secret. Keys are found
    /// with a regex; values are read by hand so a non-secret pair never swallows the text after
    /// it (`url=https://x?token=abc` still finds `token`).
    fn mask_pairs(&self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut copied = 0;
        // find_iter, not captures: the key is cut out of the match by hand, several times faster.
        for whole in PAIR_KEY.find_iter(text) {
            let quoted = whole.as_str().starts_with(['"', '\'']);
            let key = whole.as_str().trim_end_matches([' ', '\t']);
            let key = key[..key.len() - 1].trim_end_matches([' ', '\t']).trim_matches(['"', '\'']);
            let key_start = whole.start() + usize::from(quoted);
            // Inside a value masked already (`password="a token=b"`), or not secret.
            if key_start < copied || !self.is_secret_key(key) {
                continue;
            }
            let Some((start, end)) = pair_value(text, whole.end()) else { continue };
            out.push_str(&text[copied..start]);
            out.push_str(MASK);
            copied = end;
        }
        (copied > 0).then(|| {
            out.push_str(&text[copied..]);
            out
        })
    }
}

/// Where the secret part of a pair's value is: after a quote (up to the closing one), after an
/// HTTP auth scheme (`Bearer`, `Basic`, `Digest`), or up to the next space or delimiter.
fn pair_value(text: &str, from: usize) -> Option<(usize, usize)> {
    let rest = &text[from..];
    let (start, end) = if let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let inner = &rest[1..];
        let len = inner.find([quote, '\n']).unwrap_or(inner.len());
        (from + 1, from + 1 + len)
    } else {
        let scheme = AUTH_SCHEME.find(rest).map_or(0, |m| m.end());
        let value = &rest[scheme..];
        if value.starts_with(MASK) {
            // Masked already: `]` would end the value early and mask the mask.
            return None;
        }
        let len = value.find(|c: char| c.is_whitespace() || ",;&\"'}])<>".contains(c)).unwrap_or(value.len());
        (from + scheme, from + scheme + len)
    };
    (end > start && &text[start..end] != MASK).then_some((start, end))
}

/// A pair's key and separator: `password=`, `"token": `, `X-Api-Key: `. Leftmost-first, so a
/// name is read whole (`my_password=`); nothing before the key is consumed, so in
/// `error:password=x` the first pair's separator does not hide the second pair's key.
static PAIR_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"["']?[A-Za-z_][A-Za-z0-9_.\-]*["']?[ \t]*[:=][ \t]*"#).expect("pair pattern")
});

/// An HTTP auth scheme that precedes the secret in an `Authorization` value.
static AUTH_SCHEME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?i:bearer|basic|digest|token)[ \t]+").expect("scheme pattern"));

/// Secret shapes recognised anywhere in text, and what replaces them. Broad shapes first (a
/// private key block can contain anything).
static SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    SHAPE_PATTERNS
        .iter()
        .map(|(pattern, replacement)| (Regex::new(pattern).expect("secret shape pattern"), *replacement))
        .collect()
});

/// All of [`SHAPES`] at once, to find which occur in one pass.
static SHAPE_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(SHAPE_PATTERNS.iter().map(|(pattern, _)| pattern)).expect("secret shape patterns")
});

const SHAPE_PATTERNS: [(&str, &str); 12] = [
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", MASK),
    // URL user-info: the password goes, the user name stays (it says which account). Up
    // to the last `@` before the path, since people do put `@` in unencoded passwords.
    (r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*):[^/\s]*@", "${1}:[redacted]@"),
    // Slack webhook URLs are secrets in themselves.
    (r"hooks\.slack\.com/services/[A-Za-z0-9/_\-]+", "hooks.slack.com/services/[redacted]"),
    (r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}", MASK),
    (r"\bxox[abposr]-[A-Za-z0-9\-]{8,}", MASK),
    (r"\bgh[pousr]_[A-Za-z0-9]{20,}", MASK),
    (r"\bgithub_pat_[A-Za-z0-9_]{20,}", MASK),
    (r"\bglpat-[A-Za-z0-9_\-]{20,}", MASK),
    (r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", MASK),
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK),
    (r"\bAIza[0-9A-Za-z_\-]{35}", MASK),
    // A bearer token wherever it is, not only after `Authorization:`.
    (r"(?i)\b(bearer)[ \t]+[A-Za-z0-9._~+/\-]+=*", "$1 [redacted]"),
];

/// A key name's words, lower-cased: split at anything not a letter or digit and at camelCase
/// humps (`APIKey` → `api`, `key`; `s3Key` → `s3`, `key`).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let hump = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if hump && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `apikey`, `privatekeys`: a known kind of key written as one word.
fn is_compound_key(word: &str) -> bool {
    let stem = word.strip_suffix("keys").or_else(|| word.strip_suffix("key"));
    stem.is_some_and(|stem| KEY_PREFIXES.contains(&stem))
}

/// Appends one JSON-pointer token (RFC 6901: `~` is `~0`, `/` is `~1`).
fn push_token(path: &mut String, token: &str) {
    path.push('/');
    path.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

fn placeholder(path: &str, mode: Mode) -> Value {
    Value::String(match mode {
        Mode::Edit if !path.is_empty() => format!("[redacted {path}]"),
        _ => MASK.to_owned(),
    })
}

/// The pointer a placeholder names: its own for a bare `"[redacted]"`.
fn placeholder_source(text: &str, own: &str) -> Option<String> {
    let inner = text.strip_prefix("[redacted")?.strip_suffix(']')?;
    if inner.is_empty() {
        Some(own.to_owned())
    } else {
        inner.strip_prefix(' ').filter(|p| p.starts_with('/')).map(str::to_owned)
    }
}

fn restore_in(
    value: &mut Value,
    path: &mut String,
    original: &Value,
    masked: &[String],
    restored_at: &mut Vec<String>,
) -> Result<(), RestoreError> {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                let len = path.len();
                push_token(path, key);
                restore_in(inner, path, original, masked, restored_at)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter_mut().enumerate() {
                let len = path.len();
                push_token(path, &i.to_string());
                restore_in(inner, path, original, masked, restored_at)?;
                path.truncate(len);
            }
        }
        Value::String(text) => {
            if let Some(source) = placeholder_source(text, path) {
                let found = masked.contains(&source).then(|| original.pointer(&source)).flatten();
                let Some(previous) = found else {
                    return Err(RestoreError::UnknownMask { at: path.clone() });
                };
                *value = previous.clone();
                restored_at.push(path.clone());
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn r() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn key_names_are_compared_by_their_words() {
        for secret in [
            "password",
            "Password",
            "PASSWORD",
            "user_password",
            "passwd",
            "access_token",
            "accessToken",
            "AccessToken",
            "access-token",
            "X-Auth-Token",
            "refresh_tokens",
            "client_secret",
            "clientSecret",
            "api_key",
            "apiKey",
            "APIKey",
            "apikey",
            "API_KEY",
            "privateKey",
            "private_key",
            "ssh_keys",
            "s3Key",
            "key",
            "authorization",
            "Authorization",
            "auth",
            "cookie",
            "Set-Cookie",
            "session_id",
            "sessionId",
            "credentials",
            "awsCredential",
            "card_number",
            "cvv",
            "db.password",
        ] {
            assert!(r().is_secret_key(secret), "{secret} should be secret");
        }
        for plain in [
            "keyboard",
            "monkey",
            "turkey",
            "hockey",
            "author",
            "authored_by",
            "user_id",
            "email",
            "amount",
            "kind",
            "tokyo",
            "id",
            "",
            "donkeys",
        ] {
            assert!(!r().is_secret_key(plain), "{plain} should not be secret");
        }
    }

    #[test]
    fn extra_names_match_like_key_names() {
        let r = Redactor::new(["IBAN", "tax-id"]);
        assert!(r.is_secret_key("iban"));
        assert!(r.is_secret_key("payoutIban"));
        assert!(r.is_secret_key("TAX_ID"));
        assert!(!r.is_secret_key("tax"));
        assert!(!Redactor::new(["", " "]).is_secret_key("anything"));
    }

    #[test]
    fn nested_secrets_are_masked_at_any_depth_and_inside_arrays() {
        let payload = json!({
            "user": {"id": 1, "auth": {"access_token": "tok-1", "scope": "read"}},
            "items": [{"sku": 1}, {"apiKey": "k-2"}, [{"password": "p-3"}]],
            "credentials": {"user": "u", "pass": "p-4"},
        });
        let shown = r().json(&payload);
        assert_eq!(
            shown,
            json!({
                "user": {"id": 1, "auth": "[redacted]"},
                "items": [{"sku": 1}, {"apiKey": "[redacted]"}, [{"password": "[redacted]"}]],
                "credentials": "[redacted]",
            })
        );
        assert_eq!(
            r().masked_paths(&payload),
            // serde_json's maps are ordered by key.
            vec!["/credentials", "/items/1/apiKey", "/items/2/0/password", "/user/auth"]
        );
    }

    #[test]
    fn secret_shaped_text_in_strings_is_masked_in_place_for_reading_and_whole_for_editing() {
        let payload = json!({"callback": "https://bob:hunter2@hooks.example.com/x", "n": 1});
        assert_eq!(r().json(&payload)["callback"], "https://bob:[redacted]@hooks.example.com/x");
        assert_eq!(r().json_for_editing(&payload)["callback"], "[redacted /callback]");
    }

    #[test]
    fn free_text_pairs_headers_and_urls_are_masked() {
        let cases = [
            ("login failed: password=hunter2 for bob", "login failed: password=[redacted] for bob"),
            ("secret: abc123, retrying", "secret: [redacted], retrying"),
            ("error:password=hunter2", "error:password=[redacted]"),
            ("GET /cb?token=abc&next=1", "GET /cb?token=[redacted]&next=1"),
            ("url=https://x.test/cb?api_key=abc", "url=https://x.test/cb?api_key=[redacted]"),
            (
                r#"body {"password": "a b c", "user": "bob"}"#,
                r#"body {"password": "[redacted]", "user": "bob"}"#,
            ),
            ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [redacted]"),
            ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic [redacted]"),
            ("sent Bearer abcdef123 upstream", "sent Bearer [redacted] upstream"),
            ("X-Api-Key: 0123456789", "X-Api-Key: [redacted]"),
            ("connect postgres://app:s3cret@db:5432/x", "connect postgres://app:[redacted]@db:5432/x"),
            ("redis://:pw@cache:6379", "redis://:[redacted]@cache:6379"),
            ("postgres://app:p@ss:w@db/x", "postgres://app:[redacted]@db/x"),
            ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc used", "key [redacted] used"),
            ("slack xoxb-123456789012-abcdefghijkl", "slack [redacted]"),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [redacted]"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl expired", "jwt [redacted] expired"),
            ("aws AKIAIOSFODNN7EXAMPLE denied", "aws [redacted] denied"),
            (
                "post https://hooks.slack.com/services/T000/B000/XXXX failed",
                "post https://hooks.slack.com/services/[redacted] failed",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nnext",
                "[redacted]\nnext",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(r().text(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "connection refused (os error 111)",
            r#"duplicate key value violates unique constraint "users_email_key""#,
            "Key (email)=(a@example.com) already exists.",
            "timeout after 30s: https://api.example.com/v1/charges",
            "postgres://app@db/x",
            "the keyboard: monkey business",
            "Error: upstream said no",
        ] {
            assert!(matches!(r().text(text), Cow::Borrowed(_)), "{text} changed to {}", r().text(text));
        }
    }

    #[test]
    fn restore_brings_back_the_right_secret_after_an_array_element_is_removed() {
        let original = json!({"hooks": [
            {"url": "a", "token": "first"},
            {"url": "b", "token": "second"},
        ]});
        let mut edited = r().json_for_editing(&original);
        edited["hooks"].as_array_mut().unwrap().remove(0);
        assert_eq!(
            r().restore(&edited, &original).unwrap(),
            json!({"hooks": [{"url": "b", "token": "second"}]})
        );
    }

    #[test]
    fn restore_keeps_deletions_and_typed_values() {
        let original = json!({"user": {"id": 1, "password": "old", "api_key": "k"}});
        let mut edited = r().json_for_editing(&original);
        edited["user"].as_object_mut().unwrap().remove("api_key");
        edited["user"]["id"] = json!(2);
        let saved = r().restore(&edited, &original).unwrap();
        assert_eq!(saved, json!({"user": {"id": 2, "password": "old"}}));
        edited["user"]["password"] = json!("new");
        assert_eq!(r().restore(&edited, &original).unwrap(), json!({"user": {"id": 2, "password": "new"}}));
    }

    #[test]
    fn a_bare_mask_means_the_value_at_the_same_path() {
        let original = json!({"password": "p", "nested": {"token": "t"}});
        let edited = json!({"password": "[redacted]", "nested": {"token": "[redacted]"}});
        assert_eq!(r().restore(&edited, &original).unwrap(), original);
    }

    #[test]
    fn restore_refuses_placeholders_that_would_read_around_the_mask() {
        let original = json!({"password": "p", "note": "hello"});
        // Moved under a key that is not secret: the value would show.
        let moved = json!({"note": "[redacted /password]"});
        assert_eq!(r().restore(&moved, &original), Err(RestoreError::WouldUnmask { at: "/note".into() }));
        // Naming a value that was never masked, or nothing.
        for forged in [json!({"token": "[redacted /note]"}), json!({"token": "[redacted /nope]"})] {
            assert_eq!(
                r().restore(&forged, &original),
                Err(RestoreError::UnknownMask { at: "/token".into() })
            );
        }
        // Moved under another secret key: still masked, so allowed.
        let renamed = json!({"secret": "[redacted /password]"});
        assert_eq!(r().restore(&renamed, &original).unwrap(), json!({"secret": "p"}));
    }

    #[test]
    fn reveal_reads_only_masked_values() {
        let original = json!({"items": [{"token": "t", "id": 3}], "s": "password=x"});
        assert_eq!(r().reveal(&original, "/items/0/token"), Some(&json!("t")));
        assert_eq!(r().reveal(&original, "/s"), Some(&json!("password=x")));
        assert_eq!(r().reveal(&original, "/items/0/id"), None);
        assert_eq!(r().reveal(&original, "/items/0"), None);
        assert_eq!(r().reveal(&original, ""), None);
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let original = json!({"a/b": {"~token": "t"}});
        assert_eq!(r().masked_paths(&original), vec!["/a~1b/~0token"]);
        let shown = r().json_for_editing(&original);
        assert_eq!(r().restore(&shown, &original).unwrap(), original);
    }

    /// Key names that are secret, in the spellings payloads use.
    fn secret_key() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "token",
            "secret",
            "password",
            "passwd",
            "key",
            "authorization",
            "cookie",
            "session",
            "credential",
        ]);
        let other = prop::sample::select(vec!["", "user", "api", "access", "client", "refresh", "db"]);
        (other, word, prop::sample::select(vec!["_", "-", "", "camel", "upper"])).prop_map(
            |(before, word, style)| {
                let parts = [before, word].into_iter().filter(|w| !w.is_empty()).collect::<Vec<_>>();
                match style {
                    "camel" => parts
                        .iter()
                        .enumerate()
                        .map(|(i, w)| if i == 0 { (*w).to_owned() } else { capitalise(w) })
                        .collect(),
                    "upper" => parts.join("_").to_uppercase(),
                    // Run together, `key` is a word part only after a known prefix (`apikey`, not
                    // `userkey`): see KEY_PREFIXES.
                    "" if word == "key" && !KEY_PREFIXES.contains(&before) => parts.join("_"),
                    sep => parts.join(sep),
                }
            },
        )
    }

    fn capitalise(word: &str) -> String {
        let mut chars = word.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
    }

    /// JSON without secrets: keys from a small alphabet that spells no secret word.
    fn plain_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z0-9 ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-j]{1,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every object and array in `value`, as pointers.
    fn containers(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                out.push(path.to_owned());
                for (k, v) in map {
                    containers(v, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(items) => {
                out.push(path.to_owned());
                for (i, v) in items.iter().enumerate() {
                    containers(v, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// A plain JSON object with one secret (`SECRETVALUE` and a number) under `key`, put in a
    /// container chosen by `pick`.
    fn with_secret(mut plain: Value, key: &str, n: u32, pick: usize) -> (Value, String) {
        if !plain.is_object() {
            plain = json!({"wrapped": plain});
        }
        let mut places = Vec::new();
        containers(&plain, "", &mut places);
        let place = &places[pick % places.len()];
        let secret = format!("SECRETVALUE{n}");
        match plain.pointer_mut(place).unwrap() {
            Value::Object(map) => {
                map.insert(key.to_owned(), json!(secret));
            }
            Value::Array(items) => items.push(json!({ key: secret })),
            _ => unreachable!(),
        }
        (plain, secret)
    }

    proptest! {
        #[test]
        fn secret_keys_in_any_spelling_are_secret(key in secret_key()) {
            prop_assert!(r().is_secret_key(&key), "{key}");
        }

        #[test]
        fn a_secret_never_shows_and_an_unchanged_edit_restores_everything(
            plain in plain_json(), key in secret_key(), n in any::<u32>(), pick in any::<usize>(),
        ) {
            let (payload, secret) = with_secret(plain, &key, n, pick);
            for shown in [r().json(&payload), r().json_for_editing(&payload)] {
                prop_assert!(!shown.to_string().contains(&secret), "{shown}");
            }
            let shown = r().json_for_editing(&payload);
            prop_assert_eq!(r().restore(&shown, &payload).unwrap(), payload);
        }

        #[test]
        fn plain_json_is_shown_as_it_is(plain in plain_json()) {
            prop_assert_eq!(r().json(&plain), plain.clone());
            prop_assert!(r().masked_paths(&plain).is_empty());
        }

        #[test]
        fn secret_pairs_in_text_never_show(
            before in "[a-z ]{0,20}", key in secret_key(), sep in prop::sample::select(vec!["=", ": ", ":", " = "]),
            secret in "[A-Za-z0-9]{1,20}", after in prop::sample::select(vec!["", " ok", ", next", "&x=1", "\nline"]),
        ) {
            let secret = format!("Q{secret}");
            let text = format!("{before} {key}{sep}{secret}{after}");
            let masked = r().text(&text);
            prop_assert!(!masked.contains(&secret), "{text} -> {masked}");
        }

        #[test]
        fn masking_text_twice_changes_nothing_more(text in ".{0,80}") {
            let once = r().text(&text).into_owned();
            prop_assert_eq!(r().text(&once).into_owned(), once);
        }

        #[test]
        fn url_passwords_never_show(
            scheme in "(https?|postgres|redis|amqp)", user in "[a-z]{0,8}", pass in "[A-Za-z0-9!$%*]{1,16}",
            host in "[a-z]{1,10}(\\.[a-z]{2,3})?",
        ) {
            let pass = format!("Q{pass}");
            let text = format!("error at {scheme}://{user}:{pass}@{host}/path");
            prop_assert!(!r().text(&text).contains(&pass));
        }
    }
}
