#!/usr/bin/env bash
# Installs the npm dev tools (Tailwind CLI, wasm-opt from npm binaryen, Playwright,
# graphile-worker) as pinned by package-lock.json, and does nothing when node_modules is current.
#
# `npm ci` first. npm 11 (seen with 11.19) writes a lock file without other platforms' optional
# packages (@tailwindcss/oxide-*) and then refuses that same file in `npm ci`; when that
# happens, `npm install` installs the same pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# npm writes node_modules/.package-lock.json on install: newer than package-lock.json means
# nothing changed since.
if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "node_modules: up to date"
  exit 0
fi
say "npm ci"
if ! npm ci --no-audit --no-fund --loglevel=error; then
  say "npm ci refused the lock file; installing the same pinned versions with npm install"
  npm install --no-audit --no-fund --loglevel=error
  # npm install may rewrite the lock file's layout; the versions are unchanged.
  git checkout -- package-lock.json 2>/dev/null || true
  touch node_modules/.package-lock.json
fi
