#!/usr/bin/env bash
# Keeps queue/src/sql.rs's promise true: every SQL statement of the product lives behind the
# queue crate's `sql` module (queue/src/sql.rs and queue/src/sql/). Fails, naming file:line, on
# a sqlx statement anywhere else in shipped Rust code.
#
# What counts as a statement: `sqlx::query`, `query_as`, `query_scalar` (and their `_with`
# forms, the `!` macros and `query_file*`), `sqlx::raw_sql`, and those names imported with
# `use sqlx::{...}`.
#
# Exempt, because they are not the product's SQL:
#   - tests: files under a `tests/` directory, files named `tests.rs`, and an inline
#     `#[cfg(test)] mod ... {` at the start of a line with everything after it (the test module
#     ends its file, as everywhere in this repository); fixtures and assertions may read and
#     write the tables directly;
#   - comments and doc comments (examples of SQL on the reader's own tables);
#   - server/src/demo.rs: the demo application's own schema (`demo.users`);
#   - bench/: benchmark and chaos harnesses that set up databases and count rows to report.
set -euo pipefail
cd "$(dirname "$0")/.."

pattern='sqlx::(query(_as|_scalar)?(_with)?|query_file[a-z_]*|raw_sql)\b|use sqlx::\{[^}]*\b(query(_as|_scalar)?|raw_sql)\b'

violations=$(
  git ls-files --cached --others --exclude-standard -- '*.rs' \
    | grep -v -E '^(queue/src/sql\.rs|queue/src/sql/|bench/|server/src/demo\.rs$)' \
    | grep -v -E '(^|/)tests/|(^|/)tests\.rs$' \
    | while read -r file; do
        [[ -f $file ]] || continue
        # The code before the test module, comments left out, numbered as in the file.
        awk -v file="$file" '
          test_attr && /^mod [A-Za-z_0-9]+ *\{/ { exit }
          { test_attr = 0 }
          /^#\[cfg\(test\)\]/ { test_attr = 1 }
          /^[[:space:]]*\/\// { next }
          { printf "%s:%d: %s\n", file, FNR, $0 }
        ' "$file" | grep -E -- "^[^:]+:[0-9]+: .*($pattern)" || true
      done
)

if [[ -n $violations ]]; then
  echo "SQL outside the queue crate's sql module (queue/src/sql.rs, queue/src/sql/):" >&2
  echo "$violations" >&2
  echo >&2
  echo "Move the statement into queue/src/sql/ as a noun-first function taking an executor, and" >&2
  echo "call it (from the server, through a function of the backstop crate). Exempt: tests," >&2
  echo "comments, server/src/demo.rs (the demo's own schema) and bench/ (see $0)." >&2
  exit 1
fi
echo "SQL placement: every statement is in queue/src/sql" >&2
