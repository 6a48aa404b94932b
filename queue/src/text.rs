//! Text on its way into the database: what PostgreSQL cannot store is replaced or refused,
//! what is too big is cut, so recording a failure never fails because of what it says.
//!
//! PostgreSQL refuses the NUL character in `text` (`\0`) and in `jsonb` strings and keys
//! (`\u0000`). An error message is ours to record, so a NUL in it becomes U+FFFD (the
//! replacement character: visible, one character, never mistaken for the two characters `\0`
//! a message may really hold). A payload is the caller's data, so a NUL in it is refused at
//! enqueue with [`Error::UnstorablePayload`](crate::Error::UnstorablePayload) rather than
//! silently changed.

use std::fmt::Write as _;

/// Stored error messages (a job's `last_error` and each entry of its error history) are cut to
/// at most this many bytes of UTF-8, marked at the end with `… [cut: N bytes]`. A worker that
/// fails with a whole HTTP body or a megabyte of trace would otherwise grow every row it
/// touches, the dead-letter table, and each page that shows it.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 16 * 1024;

/// A job's error history keeps at most this many failed attempts: its first and its newest.
/// Each entry is up to [`MAX_ERROR_MESSAGE_BYTES`], so a job with many attempts (or one retried
/// from the dead letters again and again) stays under a megabyte of history instead of growing
/// until PostgreSQL refuses to record its failures. The attempt numbers of the entries kept
/// show what was dropped between the first and the newest.
pub const MAX_KEPT_ATTEMPT_ERRORS: usize = 50;

// The first attempt and the newest one are always kept.
const _: () = assert!(MAX_KEPT_ATTEMPT_ERRORS >= 2);

/// What PostgreSQL stores in place of each NUL character of an error message.
pub(crate) const NUL_REPLACEMENT: char = '\u{FFFD}';

/// An error message that PostgreSQL accepts: no NUL, at most [`MAX_ERROR_MESSAGE_BYTES`].
/// The only way to write an error into a job row (see `sql::job_retry_later` and
/// `sql::job_move_to_dead`), so no path can skip the cleaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredText(String);

impl StoredText {
    /// Cleans `text` for storage.
    pub(crate) fn new(text: &str) -> Self {
        let cleaned: String = if text.contains('\0') {
            text.replace('\0', &NUL_REPLACEMENT.to_string())
        } else {
            text.to_owned()
        };
        Self(cut(cleaned, MAX_ERROR_MESSAGE_BYTES))
    }

    /// The text as stored.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary, the marker included.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    // The marker's longest form: N never has more digits than the whole length.
    let longest_marker = format!("… [cut: {} bytes]", text.len()).len();
    let mut keep = max.saturating_sub(longest_marker);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let removed = text.len() - keep;
    text.truncate(keep);
    let _ = write!(text, "… [cut: {removed} bytes]");
    text
}

/// Where a JSON document holds a NUL character PostgreSQL's `jsonb` refuses (`$.a[2].b`, or
/// `a key of $.a`), if anywhere. `json` is serde_json's output, which always writes NUL as
/// `\u0000`: documents without that sequence (nearly all) are not parsed at all.
pub(crate) fn json_nul_location(json: &str) -> Option<String> {
    if !json.contains("\\u0000") {
        return None;
    }
    // The sequence may be an escaped backslash followed by "u0000": only a parse can tell.
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value_nul_location(&value, "$")
}

/// The longest job kind, queue name or cron schedule name, in bytes. PostgreSQL indexes kinds
/// and queue names (a kind and a queue share one entry of `jobs_kind_waiting`, and an index
/// entry must fit in about 2.7 KB) and every enqueue sends its queue's name in a notification
/// (at most 8,000 bytes). Past those an enqueue failed with an index or notification error that
/// named no option; now a name over this limit is refused up front, saying which.
pub const MAX_NAME_BYTES: usize = 200;

/// The longest unique key or idempotency key, in bytes: each one's unique index holds it whole,
/// in an entry of about 2.7 KB at most. Hash a longer key (a SHA-256 in hex is 64 bytes).
pub const MAX_KEY_BYTES: usize = 1000;

/// `Error::InvalidOption` naming `what` ("a queue name") if `value` is longer than `max` bytes.
pub(crate) fn check_length(what: &str, value: &str, max: usize) -> crate::Result<()> {
    if value.len() <= max {
        return Ok(());
    }
    let mut start = 40;
    while !value.is_char_boundary(start) {
        start -= 1;
    }
    Err(crate::Error::InvalidOption(format!(
        "{what} may be at most {max} bytes; this one has {} (it begins {:?}…)",
        value.len(),
        &value[..start].replace('\0', "\u{FFFD}")
    )))
}

/// The deepest nesting of arrays and objects a payload may have: the most serde_json reads (its
/// default recursion limit), so the most a worker can turn into its job type. A deeper payload
/// could never run, and is refused at enqueue with
/// [`Error::PayloadTooDeep`](crate::Error::PayloadTooDeep).
pub const MAX_PAYLOAD_DEPTH: usize = 127;

/// How deeply arrays and objects nest in a JSON document: 0 for a scalar, 1 for `[1]`. One pass
/// over the bytes (brackets inside strings do not count), nothing parsed, so a deep document
/// costs no stack.
pub(crate) fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0_usize, 0_usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// [`Error::PayloadTooDeep`](crate::Error::PayloadTooDeep) if `json` nests deeper than
/// [`MAX_PAYLOAD_DEPTH`].
pub(crate) fn check_payload_depth(kind: &str, json: &str) -> crate::Result<()> {
    // Nesting d levels takes at least 2d bytes: most payloads are too short to need the scan.
    if json.len() < 2 * (MAX_PAYLOAD_DEPTH + 1) {
        return Ok(());
    }
    let depth = json_depth(json);
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(crate::Error::PayloadTooDeep { kind: kind.to_owned(), depth, limit: MAX_PAYLOAD_DEPTH });
    }
    Ok(())
}

/// [`json_nul_location`] for a parsed value.
pub(crate) fn value_nul_location(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| value_nul_location(item, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(format!("a key of {path}"))
            } else {
                value_nul_location(item, &format!("{path}.{key}"))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        // Strings with brackets, quotes and backslashes at every level: none of them nest.
        (0..depth).fold(r#""]}[{\\\"""#.to_owned(), |inner, i| {
            if i % 2 == 0 {
                format!(r#"{{"k]\"{{": {inner}, "s": "[[\\"}}"#)
            } else {
                format!(r#"[1, "{{", {inner}]"#)
            }
        })
    }

    #[test]
    fn the_depth_limit_is_exactly_what_serde_json_reads() {
        for depth in [0, 1, 2, 5, MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_DEPTH + 1, 1000] {
            let json = nested(depth);
            assert_eq!(json_depth(&json), depth, "{json}");
            let read = serde_json::from_str::<serde_json::Value>(&json);
            assert_eq!(read.is_ok(), depth <= MAX_PAYLOAD_DEPTH, "depth {depth}: {read:?}");
        }
    }

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(StoredText::new("upstream said \0oops\0").as_str(), "upstream said \u{FFFD}oops\u{FFFD}");
        assert_eq!(StoredText::new("plain").as_str(), "plain");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary_and_marked() {
        // 3-byte characters, so most cut points fall inside one.
        let long = "€".repeat(10_000);
        let stored = StoredText::new(&long);
        let text = stored.as_str();
        assert!(text.len() <= MAX_ERROR_MESSAGE_BYTES, "{}", text.len());
        let (kept, marker) = text.split_once('…').unwrap();
        assert!(kept.chars().all(|c| c == '€'));
        assert_eq!(marker, format!(" [cut: {} bytes]", long.len() - kept.len()));
        // Exactly at the limit: untouched.
        let exact = "a".repeat(MAX_ERROR_MESSAGE_BYTES);
        assert_eq!(StoredText::new(&exact).as_str(), exact);
    }

    #[test]
    fn nul_in_json_is_found_with_its_path() {
        assert_eq!(json_nul_location(r#"{"a":[1,{"b":"x\u0000"}]}"#).as_deref(), Some("$.a[1].b"));
        assert_eq!(json_nul_location(r#"{"a":{"k\u0000":1}}"#).as_deref(), Some("a key of $.a"));
        // An escaped backslash followed by "u0000" is six ordinary characters.
        assert_eq!(json_nul_location(r#"{"a":"\\u0000"}"#), None);
        assert_eq!(json_nul_location(r#"{"a":"fine"}"#), None);
    }
}
