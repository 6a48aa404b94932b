//! The error normaliser behind error groups: two failures of the same bug differ in ids,
//! amounts, times and addresses, never in the words around them. Replacing the parts that vary
//! with placeholders gives every occurrence of one problem the same text, and so one group.

use std::sync::LazyLock;

use regex::Regex;

/// How many lines of an error are kept: the message and the top of a trace, which is where
/// two different bugs with the same message differ. Deeper frames vary with the caller.
const KEPT_LINES: usize = 3;

/// The longest normalised message, in characters.
const MAX_CHARS: usize = 1_000;

/// Replacements, in order: the broad shapes first (a URL contains paths and numbers, a
/// timestamp contains four-digit years), so a later rule never sees half of an earlier one.
static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>()]+"#, "<url>"),
        (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "<email>"),
        (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<uuid>"),
        (
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|UTC|[+-]\d{2}(?::?\d{2})?))?)?",
            "<time>",
        ),
        (r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b", "<time>"),
        (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
        (r"\b[0-9a-fA-F]{16,}\b", "<hex>"),
        // A quote only opens after a non-word character, so "can't" and "don't" stay words.
        (r#"(^|[^\w"])"[^"\n]*""#, "$1\"<str>\""),
        (r"(^|[^\w'])'[^'\n]*'", "$1'<str>'"),
        // Absolute and relative paths, with an optional :line:column. (One segment after a lone slash is not a path: "</script>", "and/or".)
        (r"(^|[^\w.~])(?:(?:~|\.{1,2})/[\w.-]+|/[\w.-]+/[\w.-]+)(?:/[\w.-]+)*(?::\d+)*", "$1<path>"),
        (r"\b[\w.-]+(?:/[\w.-]+)+\.\w+(?::\d+)*", "<path>"),
        (r"\d{4,}", "<n>"),
        (r"[ \t]+", " "),
    ]
    .into_iter()
    .map(|(pattern, placeholder)| (Regex::new(pattern).expect("normaliser pattern"), placeholder))
    .collect()
});

/// Normalises an error message for grouping: the first lines of it, with URLs, e-mail
/// addresses, UUIDs, timestamps, hex addresses and hashes, quoted values, file paths and
/// numbers of four or more digits replaced by placeholders.
///
/// ```
/// use backstop::triage::normalize_error;
///
/// let a = normalize_error(r#"duplicate key value violates unique constraint "users_email_key" (user 91827)"#);
/// let b = normalize_error(r#"duplicate key value violates unique constraint "users_email_key" (user 55512)"#);
/// assert_eq!(a, b);
/// assert_eq!(a, r#"duplicate key value violates unique constraint "<str>" (user <n>)"#);
/// ```
pub fn normalize_error(message: &str) -> String {
    let lines: Vec<String> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .take(KEPT_LINES)
        .map(|line| {
            RULES.iter().fold(line.to_owned(), |text, (pattern, placeholder)| {
                pattern.replace_all(&text, *placeholder).into_owned()
            })
        })
        .collect();
    let joined = lines.join("\n");
    match joined.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => joined[..cut].to_owned(),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_error;

    #[test]
    fn postgres_unique_violation_groups_across_values() {
        let a = "error returned from database: duplicate key value violates unique constraint \"users_email_key\"\nDETAIL: Key (email)=(ada@example.com) already exists.";
        let b = "error returned from database: duplicate key value violates unique constraint \"users_email_key\"\nDETAIL: Key (email)=(grace.hopper@navy.example.org) already exists.";
        assert_eq!(normalize_error(a), normalize_error(b));
        assert_eq!(
            normalize_error(a),
            "error returned from database: duplicate key value violates unique constraint \"<str>\"\nDETAIL: Key (email)=(<email>) already exists."
        );
    }

    #[test]
    fn postgres_connection_error_hides_host_and_port() {
        let message = r#"error communicating with database: connection to server at "10.0.3.7", port 5432 failed: Connection refused"#;
        assert_eq!(
            normalize_error(message),
            r#"error communicating with database: connection to server at "<str>", port <n> failed: Connection refused"#
        );
    }

    #[test]
    fn postgres_errors_without_variable_parts_are_unchanged() {
        for message in [
            "canceling statement due to statement timeout",
            "could not serialize access due to concurrent update",
            "deadlock detected",
        ] {
            assert_eq!(normalize_error(message), message);
        }
    }

    #[test]
    fn http_client_errors_hide_urls_but_keep_status_codes() {
        let a = "error sending request for url (https://api.stripe.com/v1/charges/ch_3MmlLr2eZvKYlo2C): operation timed out";
        let b =
            "error sending request for url (https://api.stripe.com/v1/charges/ch_9QqZx): operation timed out";
        assert_eq!(normalize_error(a), normalize_error(b));
        assert_eq!(normalize_error(a), "error sending request for url (<url>): operation timed out");
        assert_eq!(
            normalize_error(
                "HTTP status server error (503 Service Unavailable) for url (https://hooks.example.com/x?id=123)"
            ),
            "HTTP status server error (503 Service Unavailable) for url (<url>)"
        );
    }

    #[test]
    fn panics_keep_the_message_and_the_top_of_the_trace_without_locations() {
        let a = "thread 'tokio-runtime-worker' panicked at src/jobs/charge.rs:42:17:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n   1: core::panicking::panic_fmt";
        let b = "thread 'tokio-runtime-worker-3' panicked at src/jobs/charge.rs:44:9:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n   1: something::else";
        assert_eq!(normalize_error(a), normalize_error(b));
        assert_eq!(
            normalize_error(a),
            "thread '<str>' panicked at <path>:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:"
        );
    }

    #[test]
    fn uuids_timestamps_hex_and_long_numbers_become_placeholders() {
        assert_eq!(
            normalize_error(
                "order 3f2a9c4e-1b7d-4e8a-9f0c-2d5b6a7c8e9f locked at 2026-11-25T04:34:52.123Z for 30000ms by 0x7ffd5e8c (commit 9fceb02d0ae598e95dc970b74767f19372d61af8)"
            ),
            "order <uuid> locked at <time> for <n>ms by <hex> (commit <hex>)"
        );
        assert_eq!(normalize_error("retry at 2026-11-25 04:34:52+00"), "retry at <time>");
        assert_eq!(normalize_error("took 12:03:44.5 wall"), "took <time> wall");
    }

    #[test]
    fn short_numbers_and_apostrophes_are_kept() {
        assert_eq!(
            normalize_error("can't charge card: amount 999 exceeds limit, don't retry"),
            "can't charge card: amount 999 exceeds limit, don't retry"
        );
    }

    #[test]
    fn file_paths_become_placeholders() {
        assert_eq!(
            normalize_error("No such file or directory (os error 2): /var/lib/app/uploads/91827.pdf"),
            "No such file or directory (os error 2): <path>"
        );
        assert_eq!(normalize_error("config missing: ./config/prod.toml"), "config missing: <path>");
    }

    #[test]
    fn whitespace_collapses_and_long_messages_are_cut() {
        assert_eq!(normalize_error("  too    many\t spaces  \n\n  next  "), "too many spaces\nnext");
        let long = "x".repeat(5_000);
        assert_eq!(normalize_error(&long).chars().count(), 1_000);
        assert_eq!(normalize_error(&"é".repeat(2_000)).chars().count(), 1_000);
    }

    #[test]
    fn hostile_text_is_kept_as_text() {
        assert_eq!(
            normalize_error("<script>alert(1)</script> '; drop table users; --"),
            "<script>alert(1)</script> '; drop table users; --"
        );
    }
}
