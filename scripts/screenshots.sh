#!/usr/bin/env bash
# Refreshes the console screenshots in docs/screenshots (light and dark, desktop and phone):
# builds the console, runs the demo workload for 40 s on a private PostgreSQL, then serves
# the state it left (a fixed state: nothing runs while the pictures are taken) and photographs
# the overview, the dead letters, a dead job, triage and an error group. Needs scripts/setup.sh
# (Chromium, npm packages).
#
#   scripts/screenshots.sh           with the release build, as deployed
#   scripts/screenshots.sh --debug   with the debug build (quicker to build; the same pages)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release build_args=(--release)
if [[ ${1:-} == --debug ]]; then
  profile=debug build_args=()
fi
scripts/build-site.sh "${build_args[@]}"
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
export BIN="target/$profile/backstop" PORT="$port"
"$BIN" with-postgres -- bash -c '
  set -euo pipefail
  "$BIN" demo --no-console --seconds 40 --rate 2 >/dev/null
  "$BIN" serve --bind "127.0.0.1:$PORT" --site-root target/site >/dev/null &
  console=$!
  trap "kill -TERM $console 2>/dev/null; wait $console 2>/dev/null || true" EXIT
  node end2end/screenshots.mjs "http://127.0.0.1:$PORT" docs/screenshots
'
