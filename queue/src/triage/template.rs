//! The second half of grouping: learning which parts of a message vary.
//!
//! Drain-style (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree",
//! ICWS 2017): messages of the same length are compared position by position with the
//! templates learned so far; a message joins the most similar template when enough of the
//! template's words are in it, and the positions where they differ become wildcards. So
//! `invoice 182 declined` and `invoice 156 declined` meet in `invoice <*> declined`, while
//! `constraint "users_email_key"` and `constraint "orders_pkey"`, each constant across its own
//! occurrences, stay apart as long as nothing else in their messages differs.
//!
//! Two departures from Drain, both because one group is one alert here:
//! - no tree over the leading tokens: every template of the same length is a candidate (a
//!   leading token that varies, a host or a worker name, would otherwise split a problem for
//!   good), which costs a comparison per template and is bounded by [`MAX_CANDIDATES`];
//! - when a template generalises until it covers other templates, they are one problem seen
//!   late: [`place`] reports them as absorbed, and the caller merges their groups into the
//!   oldest.
//!
//! Everything here is a pure function of the templates and the message, so every process
//! that sees the same templates in the same order decides the same way; the database path
//! serialises the decisions per bucket, and `backstop group-errors` replays them in memory.

use std::sync::LazyLock;

use regex::Regex;

use super::signature::{LINE_BREAK, Signature};

/// A message joins a template when at least this share of the template's words (its
/// positions that are not wildcards) are in the message at the same place. Drain's authors
/// used 0.4 to 0.7 depending on the log; this is the middle, and scored best on Backstop's
/// labelled corpus of job failures (`queue/tests/corpus`).
pub const SIMILARITY_THRESHOLD: f64 = 0.5;

/// The most templates of one source, kind and length a message is compared with (the most
/// recently seen). A bound on the work per dead letter whatever a noisy kind produces.
pub const MAX_CANDIDATES: usize = 500;

/// How many different values, each seen once, make a word a variable: two could be two
/// problems (a second constraint name), and a variable's values rarely repeat.
pub const DISTINCT_VALUES_OF_A_VARIABLE: usize = 3;

/// What a learned template shows for a position that varies.
pub const WILDCARD: &str = "<*>";

/// A learned message shape: the words every message of a group has at each position, and
/// wildcards where they differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Template {
    /// One entry per token: `Some(word)`, or `None` for a wildcard.
    pub tokens: Vec<Option<String>>,
    /// Positions an operator split the group by (one bit each): their word names the problem,
    /// so they never become wildcards, and a message with another word there is another group
    /// (which inherits the positions, so it cannot widen over them either).
    pub fixed: u64,
}

impl Template {
    /// The template of a single message: all of its tokens, no wildcards yet.
    pub fn exact(signature: &Signature) -> Template {
        Template { tokens: signature.tokens.iter().cloned().map(Some).collect(), fixed: 0 }
    }

    /// Token positions of the wildcards, in order.
    pub fn wildcard_positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.tokens.iter().enumerate().filter(|(_, t)| t.is_none()).map(|(i, _)| i)
    }

    /// The template with its wildcard at `position` replaced by `word` and fixed there: what
    /// each group of a split stands for.
    ///
    /// ```
    /// use backstop::triage::{Signature, Template};
    ///
    /// let mut template = Template::exact(&Signature::of("export to bucket-a failed"));
    /// template.tokens[2] = None;
    /// let split = template.fixed_at(2, "bucket-b");
    /// assert_eq!(split.render(), "export to bucket-b failed");
    /// assert_eq!(split.fixed, 1 << 2);
    /// ```
    pub fn fixed_at(&self, position: usize, word: &str) -> Template {
        let mut template = self.clone();
        template.tokens[position] = Some(word.to_owned());
        template.fixed |= 1 << position;
        template
    }

    /// The template as people read it: wildcards as `<*>`, lines on lines.
    ///
    /// ```
    /// use backstop::triage::{Signature, Template};
    ///
    /// let mut template = Template::exact(&Signature::of("invoice 26 declined"));
    /// template.tokens[1] = None;
    /// assert_eq!(template.render(), "invoice <*> declined");
    /// ```
    pub fn render(&self) -> String {
        let mut text = String::new();
        for token in &self.tokens {
            let word = token.as_deref().unwrap_or(WILDCARD);
            if word == LINE_BREAK {
                text.push('\n');
                continue;
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(word);
        }
        text
    }

    /// How many positions are wildcards.
    pub fn wildcards(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_none()).count()
    }

    /// How `tokens` differs from this template, or `None` when it cannot join at all
    /// (another length, or its lines do not line up).
    fn difference(&self, tokens: &[String]) -> Option<Difference> {
        if tokens.len() != self.tokens.len() || tokens.len() > 64 {
            return None;
        }
        let mut d = Difference { words: 0, numbers: 0, codes: false, fixed: 0, similarity: 1.0 };
        let (mut words, mut differing) = (0u32, 0u32);
        for (i, (mine, theirs)) in self.tokens.iter().zip(tokens).enumerate() {
            let theirs_breaks = theirs == LINE_BREAK;
            match mine {
                Some(word) if word == LINE_BREAK || theirs_breaks => {
                    // Lines must line up: a line break only ever meets a line break.
                    if word != theirs {
                        return None;
                    }
                    continue;
                }
                Some(word) => {
                    words += 1;
                    if word == theirs {
                        continue;
                    }
                    differing += 1;
                    d.fixed |= self.fixed & (1 << i);
                    let same_shape = !names_a_thing(word)
                        && number_shape(word).is_some_and(|shape| number_shape(theirs) == Some(shape));
                    if same_shape {
                        d.numbers += 1;
                        d.codes |= is_status_code(word);
                    } else {
                        d.words |= 1 << i;
                    }
                }
                None if theirs_breaks => return None,
                None => {}
            }
        }
        if words > 0 {
            d.similarity = f64::from(words - differing) / f64::from(words);
        }
        Some(d)
    }

    /// The positions where two templates of the same length have different words (not
    /// numbers of the same shape), one bit each.
    fn word_difference(&self, other: &Template) -> u64 {
        let words: Vec<String> = other.tokens.iter().map(|t| t.clone().unwrap_or_default()).collect();
        self.difference(&words).map_or(u64::MAX, |d| d.words)
    }

    /// This template with wildcards wherever `other` differs from it.
    fn widened_over(&self, other: &Template) -> Template {
        Template {
            tokens: self
                .tokens
                .iter()
                .zip(&other.tokens)
                .map(|(mine, theirs)| mine.clone().filter(|_| mine == theirs))
                .collect(),
            fixed: self.fixed | other.fixed,
        }
    }

    /// This template widened to take in `tokens` (same length): positions that differ become
    /// wildcards.
    fn widened(&self, tokens: &[String]) -> Template {
        Template {
            tokens: self
                .tokens
                .iter()
                .zip(tokens)
                .map(|(mine, theirs)| mine.as_ref().filter(|word| *word == theirs).cloned())
                .collect(),
            fixed: self.fixed,
        }
    }

    /// Whether every message `other` stands for also fits this template, and it is the same
    /// problem: `other`'s fixed positions are fixed, with the same words, here too.
    pub fn covers(&self, other: &Template) -> bool {
        self.tokens.len() == other.tokens.len()
            && other.fixed & !self.fixed == 0
            && self.tokens.iter().zip(&other.tokens).all(|(mine, theirs)| match (mine, theirs) {
                (None, _) => true,
                (Some(word), Some(their_word)) => word == their_word,
                (Some(_), None) => false,
            })
    }
}

/// A template learned so far, and the group it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    /// The group's id. Lower ids are older: a merge keeps the oldest.
    pub id: i64,
    /// Its template.
    pub template: Template,
    /// How many messages it has taken in.
    pub seen: i64,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The group it joins, or `None` for a new group.
    pub group: Option<i64>,
    /// That group's template from now on.
    pub template: Template,
    /// Whether the template differs from the one the group had (always true for a new group).
    pub template_changed: bool,
    /// Groups whose templates the new template covers: the same problem, to merge into
    /// `group`. Never includes `group`.
    pub absorbed: Vec<i64>,
}

/// Decides where a message goes among the templates learned so far for its source, kind and
/// length (`candidates`, any order; at most [`MAX_CANDIDATES`] are compared).
///
/// ```
/// use backstop::triage::{Learned, Signature, Template, place};
///
/// let learned = |id, message| Learned { id, template: Template::exact(&Signature::of(message)), seen: 1 };
/// let seen = [learned(7, "invoice 26 declined"), learned(8, "invoice 52 declined")];
/// let placed = place(&seen, &Signature::of("invoice 182 declined"));
/// assert_eq!(placed.group, Some(7));
/// assert_eq!(placed.absorbed, [8]);
/// assert_eq!(placed.template.render(), "invoice <*> declined");
///
/// let other = place(&seen, &Signature::of("invoice 26 refunded twice"));
/// assert_eq!(other.group, None);
/// ```
pub fn place(candidates: &[Learned], signature: &Signature) -> Placement {
    let tokens = &signature.tokens;
    let candidates = &candidates[..candidates.len().min(MAX_CANDIDATES)];
    let comparable: Vec<(&Learned, Difference)> = candidates
        .iter()
        .filter_map(|learned| learned.template.difference(tokens).map(|d| (learned, d)))
        .filter(|(_, d)| d.similarity >= SIMILARITY_THRESHOLD)
        .collect();

    // 1. A template the message fits once its numbers may vary: every word of it is in the
    //    message, and where they differ both have a number of the same shape (`(id)=(26)`,
    //    `(id)=(<n>)`). Numbers vary, except a status code (HTTP, SMTP) seen twice in a
    //    template: that one names the problem (503 is not 404).
    //    The most similar template wins, then the most specific, then the oldest.
    let joinable = comparable
        .iter()
        .filter(|(learned, d)| d.words == 0 && d.fixed == 0 && (!d.codes || learned.seen == 1))
        .max_by(|(a, da), (b, db)| {
            da.similarity
                .total_cmp(&db.similarity)
                .then(b.template.wildcards().cmp(&a.template.wildcards()))
                .then(b.id.cmp(&a.id))
        });
    if let Some((joined, d)) = joinable {
        if d.numbers == 0 {
            return Placement {
                group: Some(joined.id),
                template: joined.template.clone(),
                template_changed: false,
                absorbed: Vec::new(),
            };
        }
        return widen(candidates, &[joined], tokens);
    }

    // 2. A word varies when its values do not repeat: earlier messages, each seen once, that
    //    differ from this one and from each other in exactly the same words, so that
    //    [`DISTINCT_VALUES_OF_A_VARIABLE`] different values stand there. Words that repeat, a
    //    constraint name or a decline code seen twice, are part of what the problem is. One
    //    word at a time: two words that change together (a constraint and its column) name
    //    another problem.
    let mut singles: Vec<&(&Learned, Difference)> = comparable
        .iter()
        .filter(|(learned, d)| learned.seen == 1 && d.fixed == 0 && d.words.count_ones() == 1)
        .collect();
    singles.sort_by_key(|(learned, d)| (d.words, learned.id));
    let mut best: Option<(f64, Vec<&Learned>)> = None;
    for class in singles.chunk_by(|(_, a), (_, b)| a.words == b.words) {
        let mask = class[0].1.words;
        let mut picked: Vec<&Learned> = Vec::new();
        for (learned, _) in class {
            if picked.iter().all(|p| p.template.word_difference(&learned.template) == mask) {
                picked.push(learned);
            }
        }
        let similarity = class[0].1.similarity;
        if picked.len() + 1 >= DISTINCT_VALUES_OF_A_VARIABLE
            && best
                .as_ref()
                .is_none_or(|(sim, b)| similarity > *sim || (similarity == *sim && picked[0].id < b[0].id))
        {
            best = Some((similarity, picked));
        }
    }
    match best {
        Some((_, picked)) => widen(candidates, &picked, tokens),
        None => Placement {
            group: None,
            // Another value where an operator split a group is another problem, and stays one:
            // the positions stay fixed in the new group.
            template: Template {
                fixed: comparable.iter().fold(0, |fixed, (_, d)| fixed | d.fixed),
                ..Template::exact(signature)
            },
            template_changed: true,
            absorbed: Vec::new(),
        },
    }
}

/// The `joined` templates (the first is the oldest) widened to take in `tokens` and each
/// other; every template the result covers is the same problem, merged into the oldest.
fn widen(candidates: &[Learned], joined: &[&Learned], tokens: &[String]) -> Placement {
    let mut template = joined[0].template.widened(tokens);
    for other in &joined[1..] {
        template = template.widened_over(&other.template);
    }
    let mut members: Vec<i64> = candidates
        .iter()
        .filter(|other| template.covers(&other.template))
        .map(|other| other.id)
        .chain(joined.iter().map(|learned| learned.id))
        .collect();
    members.sort_unstable();
    members.dedup();
    let survivor = members.remove(0);
    Placement { group: Some(survivor), template, template_changed: true, absorbed: members }
}

/// How a message differs from a template of the same length.
#[derive(Debug, Clone, Copy)]
struct Difference {
    /// Positions where the template has a word and the message another word, one bit each.
    words: u64,
    /// How many positions differ only in a number of the same shape.
    numbers: u32,
    /// Whether one of those is a status code in the template (see [`is_status_code`]).
    codes: bool,
    /// Fixed positions of the template (see [`Template::fixed`]) where the message has another
    /// word: it cannot join, and a new group it starts keeps them fixed.
    fixed: u64,
    /// The share of the template's words the message has.
    similarity: f64,
}

/// A token with its numbers and placeholders reduced to `0`, or `None` when it has neither:
/// `(id)=(26)` and `(id)=(<n>)` are both `(id)=(0)`, the same number-shaped value.
fn number_shape(token: &str) -> Option<String> {
    static SHAPE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*|<[a-z]+>").expect("shape pattern"));
    SHAPE.is_match(token).then(|| SHAPE.replace_all(token, "0").into_owned())
}

/// Whether a token's number is part of a name rather than a count or an id: a service's port
/// after its address or host (`<ip>:5432`, `redis:6379`; ports of five digits, the ephemeral
/// ones a client picks, are masked before this) or a type's parameter (`varying(255)`). Two
/// values there are two things, like two words.
fn names_a_thing(token: &str) -> bool {
    static NAME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:(?:<ip>|[A-Za-z][\w.-]*):\d{1,4}|[A-Za-z_]+\(\d+(?:,\d+)?\))[,;.:)]*$")
            .expect("name pattern")
    });
    NAME.is_match(token)
}

/// Whether a token is a status code as protocols write them (HTTP, SMTP, FTP: three digits from
/// 100 to 599, alone or with punctuation): a number that names what happened, not which thing.
fn is_status_code(token: &str) -> bool {
    let digits: String = token.chars().filter(char::is_ascii_digit).collect();
    let alone = token.chars().all(|c| c.is_ascii_digit() || c.is_ascii_punctuation());
    alone && digits.len() == 3 && (100..600).contains(&digits.parse::<u32>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::{Learned, Placement, Template, place};
    use crate::triage::Signature;

    fn learned(id: i64, message: &str) -> Learned {
        Learned { id, template: Template::exact(&Signature::of(message)), seen: 1 }
    }

    fn placed(candidates: &[Learned], message: &str) -> Placement {
        place(candidates, &Signature::of(message))
    }

    fn seen(id: i64, message: &str, times: i64) -> Learned {
        Learned { seen: times, ..learned(id, message) }
    }

    #[test]
    fn a_number_seen_once_may_vary_a_number_seen_twice_is_constant() {
        let once = [learned(1, "card declined for invoice 26")];
        let p = placed(&once, "card declined for invoice 182");
        assert_eq!((p.group, p.template_changed), (Some(1), true));
        assert_eq!(p.template.render(), "card declined for invoice <*>");
        let twice = [seen(1, "smtp said 550 spam", 2)];
        assert_eq!(placed(&twice, "smtp said 554 spam").group, None);
        // Only numbers of the same shape: `10s` and `10.003s` are, `v2` and `2` are not.
        let timing = [learned(1, "timed out after 10s")];
        assert_eq!(placed(&timing, "timed out after 10.003s").group, Some(1));
        assert_eq!(placed(&[learned(1, "api v2 gone")], "api 2 gone").group, None);
    }

    #[test]
    fn a_masked_value_always_varies() {
        let groups = [seen(1, "job 918273 failed", 30)];
        assert_eq!(placed(&groups, "job 12 failed").group, Some(1));
    }

    #[test]
    fn a_third_word_at_the_same_place_makes_it_a_wildcard() {
        let once = [learned(1, "no such user alice")];
        assert_eq!(placed(&once, "no such user bob").group, None, "two values prove nothing");
        let twice = [learned(1, "no such user alice"), learned(2, "no such user bob")];
        let p = placed(&twice, "no such user carol");
        assert_eq!((p.group, p.absorbed.as_slice(), p.template_changed), (Some(1), &[2][..], true));
        assert_eq!(p.template.render(), "no such user <*>");
    }

    #[test]
    fn a_word_that_repeats_is_part_of_the_problem() {
        // "insufficient_funds" was seen twice: a decline code, not a name.
        let groups = [seen(1, "declined: insufficient_funds", 2), learned(2, "declined: expired_card")];
        assert_eq!(placed(&groups, "declined: do_not_honor").group, None);
        assert_eq!(placed(&groups, "declined: insufficient_funds").group, Some(1));
    }

    #[test]
    fn words_that_change_together_are_another_problem() {
        let groups = [
            learned(1, "violates \"users_email_key\" on email"),
            learned(2, "violates \"orders_pkey\" on id"),
        ];
        assert_eq!(placed(&groups, "violates \"users_name_key\" on name").group, None);
    }

    #[test]
    fn the_earlier_values_must_differ_at_the_same_place() {
        let groups = [learned(1, "user alice failed on host a"), learned(2, "user bob failed on host b")];
        assert_eq!(placed(&groups, "user carol failed on host a").group, None);
    }

    #[test]
    fn an_identical_message_joins_without_changing_the_template() {
        let p = placed(&[learned(1, "deadlock detected")], "deadlock detected");
        assert_eq!((p.group, p.template_changed), (Some(1), false));
    }

    #[test]
    fn a_learned_template_takes_any_value_at_its_wildcards_but_not_at_its_words() {
        let mut template = Template::exact(&Signature::of("invoice 26 declined"));
        template.tokens[1] = None;
        let groups = [Learned { id: 1, template, seen: 40 }];
        assert_eq!(placed(&groups, "invoice 9 declined").group, Some(1));
        assert_eq!(placed(&groups, "invoice 9 refunded").group, None);
    }

    #[test]
    fn the_most_specific_template_wins_then_the_oldest() {
        let mut general = Template::exact(&Signature::of("a b c"));
        general.tokens[2] = None;
        let groups =
            [Learned { id: 1, template: general, seen: 9 }, seen(3, "a b c", 2), seen(2, "a b c", 2)];
        assert_eq!(placed(&groups, "a b c").group, Some(2));
        assert_eq!(placed(&groups, "a b z").group, Some(1));
    }

    #[test]
    fn too_different_another_length_or_misaligned_lines_are_a_new_group() {
        let groups = [learned(1, "connection reset by peer"), learned(2, "connection reset by host")];
        assert_eq!(placed(&groups, "permission denied for table").group, None);
        assert_eq!(placed(&groups, "connection reset").group, None);
        let lines = [learned(1, "boom at x\nframe one"), learned(2, "boom at y\nframe one")];
        assert_eq!(placed(&lines, "boom at z frame one").group, None);
    }

    #[test]
    fn a_widened_template_absorbs_every_template_it_covers_into_the_oldest() {
        let groups = [seen(2, "sync 1 stopped at 7", 12), learned(5, "sync 2 stopped at 8")];
        // 7 was seen 12 times in group 2: constant there. Group 5 takes 10 and widens to
        // `sync <*> stopped at <*>`, which covers group 2: one problem, under the older id.
        let p = placed(&groups, "sync 4 stopped at 10");
        assert_eq!(p.template.render(), "sync <*> stopped at <*>");
        assert_eq!(p.group, Some(2));
        assert_eq!(p.absorbed, [5]);
    }

    #[test]
    fn a_fixed_position_never_varies_and_another_value_there_is_another_fixed_group() {
        let mut bucket = Template::exact(&Signature::of("upload to bucket-a refused"));
        bucket.tokens[2] = None;
        let groups = [
            Learned { id: 1, template: bucket.fixed_at(2, "bucket-a"), seen: 30 },
            Learned { id: 2, template: bucket.fixed_at(2, "bucket-b"), seen: 1 },
        ];
        assert_eq!(placed(&groups, "upload to bucket-b refused").group, Some(2));
        let other = placed(&groups, "upload to bucket-c refused");
        assert_eq!(other.group, None);
        assert_eq!(other.template.fixed, 1 << 2, "the new value is fixed too");
        // Two more new values, each seen once, would make a wildcard anywhere else: not here.
        let more = [
            groups[1].clone(),
            Learned { id: 3, template: other.template, seen: 1 },
            Learned { id: 4, template: bucket.fixed_at(2, "bucket-d"), seen: 1 },
        ];
        assert_eq!(placed(&more, "upload to bucket-e refused").group, None);
        // A number there is fixed as well.
        let mut code = Template::exact(&Signature::of("provider said 17"));
        code.tokens[2] = None;
        assert_eq!(
            placed(&[Learned { id: 1, template: code.fixed_at(2, "17"), seen: 1 }], "provider said 42").group,
            None
        );
    }

    #[test]
    fn a_widened_template_does_not_absorb_a_group_fixed_where_it_varies() {
        let mut fixed = Template::exact(&Signature::of("sync 1 stopped at x"));
        fixed.tokens[1] = None;
        let fixed = fixed.fixed_at(4, "x");
        let groups = [
            Learned { id: 1, template: fixed, seen: 5 },
            learned(2, "sync 2 stopped at y"),
            learned(3, "sync 3 stopped at z"),
        ];
        let p = placed(&groups, "sync 4 stopped at w");
        assert_eq!(p.template.render(), "sync <*> stopped at <*>");
        assert_eq!((p.group, p.absorbed.as_slice()), (Some(2), &[3][..]));
    }

    #[test]
    fn render_shows_wildcards_and_lines() {
        let mut t =
            Template::exact(&Signature::of("panicked at src/a.rs:1:2:\nindex out of bounds: the len is 3"));
        let last = t.tokens.len() - 1;
        t.tokens[last] = None;
        assert_eq!(t.render(), "panicked at src/a.rs:<n>:\nindex out of bounds: the len is <*>");
    }

    #[test]
    fn empty_messages_group_together() {
        let p = placed(&[learned(1, "")], "   ");
        assert_eq!(p.group, Some(1));
    }
}
