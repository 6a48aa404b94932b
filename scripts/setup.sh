#!/usr/bin/env bash
# Installs what building and testing the console needs, and nothing that is already there:
#   - the Rust target wasm32-unknown-unknown,
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (the CLI and the
#     library must match, or the generated JS does not fit the wasm),
#   - the npm dev tools from package-lock.json (Tailwind CLI, wasm-opt from npm binaryen,
#     Playwright),
#   - Debian's Chromium for the browser tests (Playwright never downloads a browser here);
#     skipped with --no-browser (the demo needs no browser).
# Idempotent: a second run only checks, and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31msetup:\033[0m %s\n' "$*" >&2; exit 1; }

for tool in cargo rustup node npm; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH (install Rust with rustup and Node.js ≥ 20 first)"
done

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root for '$*' but not running as root and sudo is not installed; run it as root, then re-run this script"
  fi
}

# 1. The wasm target.
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rust target wasm32-unknown-unknown: present"
else
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli, the same version as the wasm-bindgen crate in Cargo.lock.
want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[[ -n $want ]] || die "no wasm-bindgen in Cargo.lock (run 'cargo fetch' or 'cargo generate-lockfile')"
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ $have == "$want" ]]; then
  say "wasm-bindgen $want: present"
else
  say "cargo install wasm-bindgen-cli --version $want (found: ${have:-none}; takes about 3 minutes)"
  # Without --locked: the CLI's own lock file pins a crate version that is no longer on crates.io.
  cargo install wasm-bindgen-cli --version "$want" --force
  command -v wasm-bindgen >/dev/null || die "wasm-bindgen installed into ~/.cargo/bin, which is not on PATH"
fi

# 3. npm packages, as pinned by package-lock.json.
scripts/npm-install.sh

if [[ ${1:-} == --no-browser ]]; then
  say "done (no browser: --no-browser)"
  exit 0
fi

# 4. Chromium from Debian. Refresh the package lists only when apt does not know the package.
if [[ -x /usr/bin/chromium ]]; then
  say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
  if ! apt-cache show chromium >/dev/null 2>&1; then
    say "apt-get update"
    as_root apt-get update -q
  fi
  say "apt-get install -y chromium"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi

say "done"
