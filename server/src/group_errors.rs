//! `backstop group-errors`: the error grouper on a stream of messages, for measuring it against
//! a labelled corpus. Exactly the algorithm and settings the database path uses
//! ([`backstop::triage::Grouper`] and the dead-letter transaction share `triage::place`).

use std::io::{BufRead, BufWriter, Write};

use backstop::triage::Grouper;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Each input line is a JSON string (so a message can hold newlines, a trace say) rather
    /// than the message itself.
    #[arg(long)]
    json: bool,
    /// After the keys, print each group's key and learned template to stderr.
    #[arg(long)]
    templates: bool,
}

/// Runs the command on stdin and stdout.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let grouper = group_lines(std::io::stdin().lock(), &mut out, args.json)?;
    out.flush()?;
    if args.templates {
        let mut templates: Vec<_> = grouper.templates().collect();
        templates.sort_by_key(|(id, _)| *id);
        for (id, template) in templates {
            eprintln!("{id}\t{}", template.render().replace('\n', "\\n"));
        }
    }
    Ok(())
}

/// Reads messages, one per line, learning in input order; then writes, per line, the key of
/// the group it belongs to. Keys are written after the input ends, following merges, as the
/// database re-points a merged group's dead jobs: a group that a later message showed to be
/// one problem with an older group carries the older group's key on every line.
fn group_lines(input: impl BufRead, out: &mut impl Write, json: bool) -> anyhow::Result<Grouper> {
    let mut grouper = Grouper::default();
    let mut placed = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line = line?;
        let message = if json {
            serde_json::from_str::<String>(&line)
                .map_err(|e| anyhow::anyhow!("line {}: not a JSON string: {e}", number + 1))?
        } else {
            line
        };
        placed.push(grouper.learn(&message));
    }
    for id in placed {
        writeln!(out, "{}", grouper.group_of(id))?;
    }
    Ok(grouper)
}

#[cfg(test)]
mod tests {
    use super::group_lines;

    fn keys(input: &str, json: bool) -> anyhow::Result<String> {
        let mut out = Vec::new();
        group_lines(input.as_bytes(), &mut out, json)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn each_line_gets_its_final_group_key() {
        // 502 starts a group of its own (503, a status code, was seen twice), until 504 shows the
        // code varies here: the second group merged into the first, and its line carries the
        // first's key.
        let input = "partner answered 503\npartner answered 503\npartner answered 502\npartner answered 504\ndeadlock detected\n";
        assert_eq!(keys(input, false).unwrap(), "1\n1\n1\n1\n3\n");
    }

    #[test]
    fn json_lines_carry_newlines_and_bad_json_names_its_line() {
        let input = "\"boom\\nat frame a\"\n\"boom\\nat frame a\"\n";
        assert_eq!(keys(input, true).unwrap(), "1\n1\n");
        let err = keys("\"ok\"\nnot json\n", true).unwrap_err();
        assert!(err.to_string().starts_with("line 2: not a JSON string"), "{err}");
    }

    #[test]
    fn empty_and_hostile_lines_are_grouped_not_refused() {
        let input = "\n<script>alert(1)</script>\n'; drop table x; --\n\u{0}\n";
        assert_eq!(keys(input, false).unwrap().lines().count(), 4);
    }
}
