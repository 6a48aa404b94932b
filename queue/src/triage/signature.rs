//! The first half of grouping: an error message becomes a short sequence of tokens in which the
//! shapes that always vary (URLs' paths, e-mail addresses, UUIDs, timestamps, IP addresses, hex
//! and hashes, random ids, long numbers, line numbers) are already placeholders. What else
//! varies (a short invoice number, a user's name) is left to [`super::template`], which learns
//! it from the messages themselves.

use std::sync::LazyLock;

use regex::Regex;

/// How many lines of an error are kept: the message and the top of a trace, which is where
/// two different bugs with the same message differ (for a PostgreSQL error, its DETAIL and
/// CONTEXT lines: which relation). Deeper frames vary with the caller.
const KEPT_LINES: usize = 4;

/// The most tokens kept: enough for any message's distinguishing words, and a bound on the
/// work per message and the size of a stored template, whatever arrives (a 10 KB HTML page).
pub const MAX_TOKENS: usize = 48;

/// The longest token kept, in characters (a quoted JSON body is one token).
const MAX_TOKEN_CHARS: usize = 120;

/// The token that separates lines, so that line two of one message lines up with line two of
/// another.
pub const LINE_BREAK: &str = "\n";

/// A month's name, abbreviated or in full (a pattern).
macro_rules! month {
    () => {
        "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
    };
}

/// Replacements, in order: the broad shapes first (a URL contains paths and numbers, a
/// timestamp contains four-digit years), so a later rule never sees half of an earlier one.
static MASKS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // A panic names the thread it happened on, which is never the problem.
        (r"^thread '[^']*' panicked", "thread '<thread>' panicked"),
        // A URL keeps its scheme and host (a partner that is down is one problem, another
        // partner another); its path and query are where ids live.
        (r#"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^\s/@"'<>()]*@)?([^\s/?#"'<>()]+)[^\s"'<>()]*"#, "$1$2/<path>"),
        (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "<email>"),
        (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<uuid>"),
        (
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|UTC|[+-]\d{2}(?::?\d{2})?))?)?",
            "<time>",
        ),
        // Dates with month names, as syslog, RFC 2822 and people write them, with the weekday,
        // time and year around them: `Fri Jun 17 20:55:07 2005`, `Fri, 17 Jun 2005 20:55:07 +0000`.
        (
            concat!(
                r"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?",
                r"(?:",
                month!(),
                r"\.?\s+\d{1,2}(?:st|nd|rd|th)?,?|\d{1,2}\s+",
                month!(),
                r"\.?,?)",
                r"(?:\s+\d{4}\b)?(?:\s+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:\s+(?:\d{4}\b|[+-]\d{4}\b|GMT\b|UTC\b))?"
            ),
            "<time>",
        ),
        (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<time>"),
        // An IPv4 address; its port stays (6379 and 5432 are different services).
        (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "<ip>"),
        // A source location: the file names the code, the line and column move with every edit.
        (r"(\.[A-Za-z]{1,6})(?::\d+){1,2}\b", "$1:<n>"),
        (r"\bline \d+", "line <n>"),
        // Random ids (`ch_3MmlLr2eZvKYlo2C`, `req_snuyJnTyoFru8V`, `blk_-1608999687919862906`):
        // candidates here, [`is_random_id`] decides.
        (r"\b[A-Za-z0-9_-]{8,}\b", "<id>"),
        (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
        (r"\b[0-9a-fA-F]{16,}\b", "<hex>"),
        (r"\d{5,}", "<n>"),
    ]
    .into_iter()
    .map(|(pattern, placeholder)| (Regex::new(pattern).expect("mask pattern"), placeholder))
    .collect()
});

/// A random id is only masked when it is at least this long: `utf8mb4`, `x86_64` and
/// `sha256` are words.
const MIN_ID_CHARS: usize = 8;

/// An error message as grouping sees it: its tokens, with the shapes that always vary
/// replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The tokens: words, numbers, quoted strings (one token each, spaces and all) and
    /// placeholders such as `<uuid>`, with [`LINE_BREAK`] between lines.
    pub tokens: Vec<String>,
}

impl Signature {
    /// Reads a message: the message and the top of its trace, masked and split into tokens.
    ///
    /// ```
    /// use backstop::triage::Signature;
    ///
    /// let a = Signature::of("order 3f2a9c4e-1b7d-4e8a-9f0c-2d5b6a7c8e9f failed: POST https://api.example.com/v1/orders/17 returned 503");
    /// assert_eq!(a.tokens, ["order", "<uuid>", "failed:", "POST", "https://api.example.com/<path>", "returned", "503"]);
    /// ```
    pub fn of(message: &str) -> Signature {
        let mut tokens = Vec::new();
        for line in kept_lines(message) {
            if !tokens.is_empty() {
                tokens.push(LINE_BREAK.to_owned());
            }
            let masked = MASKS.iter().fold(line.to_owned(), |text, (pattern, placeholder)| {
                if *placeholder == "<id>" {
                    mask_ids(pattern, &text)
                } else {
                    pattern.replace_all(&text, *placeholder).into_owned()
                }
            });
            tokens.extend(split_tokens(&masked));
            if tokens.len() >= MAX_TOKENS {
                tokens.truncate(MAX_TOKENS);
                break;
            }
        }
        Signature { tokens }
    }
}

fn mask_ids(pattern: &Regex, text: &str) -> String {
    pattern
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let id = &caps[0];
            if is_random_id(id) { "<id>".to_owned() } else { id.to_owned() }
        })
        .into_owned()
}

/// A run of at least eight letters, digits, `_` and `-` is a random id when it mixes letters
/// and digits (two digits or more: `a1b2c3d4`; one among upper and lower case letters:
/// `snuyJnTyoFru8V`), when it is an API-style `prefix_` and a long mixed-case tail
/// (`req_KWpotspeVLrhdk`, `cus_NffrFeUfNVHib`), or when it is a long run of capitals and digits
/// with few vowels, as random ids have and words do not (`BHYRTVVROWFGWKGI`; `ECONNREFUSED`
/// stays). `utf8mb4`, `x86_64`, `sha256` and `TypeError` stay words.
fn is_random_id(run: &str) -> bool {
    if run.chars().count() < MIN_ID_CHARS || !run.chars().any(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    let tail = run.rsplit(['_', '-']).find(|part| !part.is_empty()).unwrap_or(run);
    let digits = run.chars().filter(char::is_ascii_digit).count();
    let upper = tail.chars().filter(char::is_ascii_uppercase).count();
    let lower = tail.chars().filter(char::is_ascii_lowercase).count();
    let mixed_case = upper > 0 && lower > 0;
    let prefixed = run.len() > tail.len() && tail.len() >= 10;
    // A word in CamelCase starts each capital with a run of small letters; a random tail
    // puts capitals together or scatters them (`KWpotspeVLrhdk`).
    let scattered =
        tail.as_bytes().windows(2).filter(|w| w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase()).count()
            + usize::from(tail.starts_with(|c: char| c.is_ascii_lowercase()) && upper > 0)
            >= 1;
    let letters = upper + lower;
    let vowels = tail.chars().filter(|c| "AEIOUaeiou".contains(*c)).count();
    digits >= 2
        || (digits == 1 && mixed_case && tail.len() >= MIN_ID_CHARS)
        || (prefixed && mixed_case && scattered)
        || (lower == 0 && letters >= 12 && vowels * 4 < letters)
}

/// The lines that say what went wrong, cleaned of characters that are not text. Most errors
/// say it first and then give a trace; a Python traceback says it last, so its exception line
/// comes first here, then its innermost frame.
fn kept_lines(message: &str) -> Vec<String> {
    let clean = |line: &str| line.chars().filter(|c| !c.is_control() || *c == '\t').collect::<String>();
    let raw: Vec<String> = message.lines().map(clean).filter(|line| !line.trim().is_empty()).collect();
    if raw.first().is_some_and(|first| first.starts_with("Traceback (most recent call last)")) {
        // Frames and their source lines are indented; the exception line is not.
        let exception = raw.iter().skip(1).rev().find(|line| !line.starts_with(char::is_whitespace));
        let frame = raw.iter().rev().find(|line| line.trim_start().starts_with("File "));
        return exception.into_iter().chain(frame).map(|line| line.trim().to_owned()).collect();
    }
    raw.iter()
        .map(|line| line.trim())
        .take_while(|line| !TRACE_MACHINERY.iter().any(|marker| line.starts_with(marker)))
        .filter(|line| !ADVICE.iter().any(|marker| line.starts_with(marker)))
        .take(KEPT_LINES)
        .map(str::to_owned)
        .collect()
}

/// Lines that only advise (PostgreSQL's `HINT:`, the same for every error of its kind): kept,
/// they would push a line that locates the problem (`CONTEXT: ... relation "accounts"`) out.
const ADVICE: &[&str] = &["HINT:"];

/// Lines after which a trace only says how to get a trace, or starts with the runtime's own
/// frames: nothing that tells two problems apart.
const TRACE_MACHINERY: &[&str] =
    &["stack backtrace:", "note: run with `RUST_BACKTRACE", "note: Some details are omitted"];

/// Splits on whitespace, keeping as one token a quoted string (after a non-word character)
/// and a bracketed value (`(611, 149, pending)`, `=(Jane Doe)`): a value's spaces must not
/// change how many tokens a message has.
fn split_tokens(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            i += 1;
            continue;
        }
        let after_word = i > 0 && chars[i - 1].is_alphanumeric();
        let glued_end = match c {
            '"' | '\'' | '`' if !after_word => {
                chars[i + 1..].iter().position(|&d| d == c).map(|at| i + 1 + at)
            }
            '(' | '[' | '{' => list_end(&chars, i, i > 0 && chars[i - 1] == '='),
            _ => None,
        };
        let end = glued_end.unwrap_or(i);
        current.extend(&chars[i..=end]);
        i = end + 1;
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
        .into_iter()
        .map(|token| match token.char_indices().nth(MAX_TOKEN_CHARS) {
            Some((cut, _)) => token[..cut].to_owned(),
            None => token,
        })
        .collect()
}

/// Where the bracket opened at `open` closes, if what it encloses is a value: a list (it holds
/// ", ": a tuple, an array), or anything right after `=` (`Key (name)=(Jane Doe)`).
/// `(503 Service Unavailable)` is words.
fn list_end(chars: &[char], open: usize, assigned: bool) -> Option<usize> {
    let close = match chars[open] {
        '(' => ')',
        '[' => ']',
        _ => '}',
    };
    let mut depth = 0usize;
    for (at, &c) in chars.iter().enumerate().skip(open) {
        if c == chars[open] {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                let inside: String = chars[open + 1..at].iter().collect();
                return (assigned || inside.contains(", ")).then_some(at);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{MAX_TOKENS, Signature};

    fn tokens(message: &str) -> Vec<String> {
        Signature::of(message).tokens
    }

    #[test]
    fn lists_of_values_are_one_token() {
        assert_eq!(
            tokens("Failing row contains (611, null, O'Brien & Sons)."),
            ["Failing", "row", "contains", "(611, null, O'Brien & Sons)."]
        );
        assert_eq!(tokens("HTTP (503 Service Unavailable)"), ["HTTP", "(503", "Service", "Unavailable)"]);
    }

    #[test]
    fn quoted_strings_are_one_token_and_keep_their_text() {
        assert_eq!(
            tokens(r#"duplicate key value violates unique constraint "users_email_key""#),
            ["duplicate", "key", "value", "violates", "unique", "constraint", "\"users_email_key\""]
        );
        assert_eq!(tokens(r#"invalid name "Jane Doe" given"#), ["invalid", "name", "\"Jane Doe\"", "given"]);
        assert_eq!(tokens("can't charge, don't retry"), ["can't", "charge,", "don't", "retry"]);
    }

    #[test]
    fn shapes_that_always_vary_become_placeholders() {
        assert_eq!(
            tokens(
                "order 3f2a9c4e-1b7d-4e8a-9f0c-2d5b6a7c8e9f locked at 2026-11-25T04:34:52.123Z by 0x7ffd5e8c (commit 9fceb02d0ae598e95dc970b74767f19372d61af8) for ada@example.com"
            ),
            ["order", "<uuid>", "locked", "at", "<time>", "by", "<id>", "(commit", "<id>)", "for", "<email>"]
        );
        assert_eq!(tokens("connect ECONNREFUSED 10.0.4.12:6379"), ["connect", "ECONNREFUSED", "<ip>:6379"]);
        assert_eq!(tokens("No such customer: 'cus_NffrFeUfNV2Hib'"), ["No", "such", "customer:", "'<id>'"]);
        // However an id is written, it is masked the same way.
        assert_eq!(tokens("block blk_-1608999687919862906 lost"), ["block", "<id>", "lost"]);
        assert_eq!(tokens("block blk_7503483334202473044 lost"), ["block", "<id>", "lost"]);
        assert_eq!(
            tokens("at 0x7f and 9fceb02d0ae598e95dc970b74767f19372d61af8"),
            ["at", "<hex>", "and", "<id>"]
        );
        assert_eq!(tokens("request req_snuyJnTyoFru8V ch_3MmlLr2eZvKYlo2C"), ["request", "<id>", "<id>"]);
        assert_eq!(tokens("took 12:03:44.5 wall, job 918273"), ["took", "<time>", "wall,", "job", "<n>"]);
        // Dates with month names, however they are written, with what goes with them.
        for date in
            ["Fri Jun 17 20:55:07 2005", "Fri, 17 Jun 2005 20:55:07 +0000", "June 17th, 2005", "17 Jun 2005"]
        {
            assert_eq!(
                tokens(&format!("connection at {date} refused")),
                ["connection", "at", "<time>", "refused"],
                "{date}"
            );
        }
        assert_eq!(
            tokens("May I ask: June 2 tries"),
            ["May", "I", "ask:", "<time>", "tries"],
            "a month needs its day"
        );
    }

    #[test]
    fn short_numbers_and_word_like_ids_stay_for_the_learner() {
        assert_eq!(
            tokens("invoice 26 declined (os error 2) utf8mb4 x86_64"),
            ["invoice", "26", "declined", "(os", "error", "2)", "utf8mb4", "x86_64"]
        );
    }

    #[test]
    fn urls_keep_their_host_and_hide_path_query_and_credentials() {
        assert_eq!(
            tokens(
                "error sending request for url (https://user:pw@api.stripe.com/v1/charges/ch_3Mm?x=1): timed out"
            ),
            ["error", "sending", "request", "for", "url", "(https://api.stripe.com/<path>):", "timed", "out"]
        );
    }

    #[test]
    fn source_locations_keep_the_file_and_drop_line_and_column() {
        assert_eq!(
            tokens(
                "thread 'tokio-runtime-worker' panicked at src/jobs/charge.rs:42:17:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind"
            ),
            // The thread is never the problem; the backtrace's header is not either.
            [
                "thread",
                "'<thread>'",
                "panicked",
                "at",
                "src/jobs/charge.rs:<n>:",
                "\n",
                "called",
                "`Option::unwrap()`",
                "on",
                "a",
                "`None`",
                "value"
            ]
        );
    }

    #[test]
    fn a_python_traceback_leads_with_its_exception_then_its_innermost_frame() {
        let message = "Traceback (most recent call last):\n  File \"/srv/app/jobs/export.py\", line 88, in run\n    rows = fetch(batch_id)\n  File \"/srv/app/db.py\", line 12, in fetch\n    return cache[key]\nKeyError: 'customer_id'";
        assert_eq!(
            tokens(message),
            [
                "KeyError:",
                "'customer_id'",
                "\n",
                "File",
                "\"/srv/app/db.py\",",
                "line",
                "<n>,",
                "in",
                "fetch"
            ]
        );
    }

    #[test]
    fn control_characters_are_dropped_and_size_is_bounded() {
        assert_eq!(tokens("upstream said \u{0}oops\u{7}"), ["upstream", "said", "oops"]);
        let huge = "word ".repeat(10_000);
        assert_eq!(tokens(&huge).len(), MAX_TOKENS);
        let long_token = "x".repeat(10_000);
        assert_eq!(tokens(&long_token)[0].chars().count(), 120);
        assert!(tokens("").is_empty());
        assert!(tokens(" \n\t \n").is_empty());
    }

    #[test]
    fn hostile_text_is_kept_as_text() {
        assert_eq!(
            tokens("<script>alert(1)</script> '; drop table users; --"),
            ["<script>alert(1)</script>", "';", "drop", "table", "users;", "--"]
        );
    }
}
