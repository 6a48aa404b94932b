#!/usr/bin/env bash
# Refreshes the console screenshots in docs/screenshots (light and dark): builds the release
# console, runs the demo on a private PostgreSQL until some jobs have died, and photographs the
# overview, the dead letters and a dead job. Needs scripts/setup.sh (Chromium, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-site.sh --release
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
target/release/backstop demo --bind "127.0.0.1:$port" --site-root target/site --rate 3 >/dev/null &
demo=$!
trap 'kill -TERM $demo 2>/dev/null; wait $demo 2>/dev/null || true' EXIT
node end2end/screenshots.mjs "http://127.0.0.1:$port" docs/screenshots
