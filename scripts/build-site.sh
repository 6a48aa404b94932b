#!/usr/bin/env bash
# Builds the console: the browser half of the app (wasm + JS glue), the stylesheet, and the
# `backstop` server binary. The same steps cargo-leptos would run, without installing it.
#
#   scripts/build-site.sh            debug: fast to build, large wasm
#   scripts/build-site.sh --release  release: `wasm-release` profile, Leptos' unused async
#                                    hydration dropped, wasm-opt -Oz --converge, minified CSS
#
# Output: <target dir>/site/pkg/{backstop.js, backstop_bg.wasm, backstop.css} (release: named
# backstop-<hash>.* and precompressed, see scripts/fingerprint-site.mjs), pkg/site.json (their
# name, and whether the wasm was built with erase_components: scripts/site-manifest.mjs), the
# static files from public/ in <target dir>/site, and
# <target dir>/{debug,release}/backstop. Serve it with
#   <target dir>/debug/backstop serve --site-root <target dir>/site
# Run scripts/setup.sh once first (wasm target, wasm-bindgen, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

release=false
case "${1:-}" in
  "") ;;
  --release) release=true ;;
  *) echo "usage: $0 [--release]" >&2; exit 2 ;;
esac

step() { printf '\033[1mbuild-site:\033[0m %s\n' "$*" >&2; }

# .cargo/config.toml gives every build `--cfg erase_components` (Leptos' type-erased views: a
# smaller wasm); the wasm and the server must agree on it, and RUSTFLAGS would replace it. (The
# server refuses a site whose wasm was built otherwise; this says so before a long build.)
for var in RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS; do
  if [[ -n ${!var:-} && ${!var} != *erase_components* ]]; then
    echo "build-site: $var is set; it replaces the rustflags of .cargo/config.toml (--cfg erase_components)." >&2
    echo "build-site: unset it, or put your flags in .cargo/config.toml beside that cfg." >&2
    exit 2
  fi
done

# Respects CARGO_TARGET_DIR and any build.target-dir in .cargo/config.toml.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).target_directory))')
site="$target_dir/site"
pkg="$site/pkg"
# npm's tools (Tailwind CLI, binaryen's wasm-opt) before anything else on PATH: Debian's
# wasm-opt 108 produces wasm that fails to hydrate.
export PATH="$PWD/node_modules/.bin:$PATH"

if $release; then
  wasm_profile=wasm-release server_profile=(--release) server_dir=release
else
  wasm_profile=dev server_profile=() server_dir=debug
fi
# Cargo puts the `dev` profile in .../debug.
wasm_dir=$([[ $wasm_profile == dev ]] && echo debug || echo "$wasm_profile")

step "wasm: cargo build -p app --lib --target wasm32-unknown-unknown --features hydrate --profile $wasm_profile"
cargo build -p app --lib --target wasm32-unknown-unknown --features hydrate --profile "$wasm_profile"

step "wasm-bindgen --target web --out-name backstop -> $pkg"
mkdir -p "$pkg"
rm -f "$pkg"/backstop.js "$pkg"/backstop_bg.wasm
wasm-bindgen "$target_dir/wasm32-unknown-unknown/$wasm_dir/app.wasm" \
  --target web --no-typescript --out-dir "$pkg" --out-name backstop

if $release; then
  # Before wasm-opt, which then drops what only the replaced functions reached; it needs the
  # names wasm-bindgen keeps. See the script for why and how much.
  step "drop-async-hydration: Leptos' async hydration path, which the console never takes"
  node scripts/drop-async-hydration.mjs "$pkg/backstop_bg.wasm"
  # --converge repeats -Oz until the module stops shrinking: 1,473 bytes less brotli (325,363;
  # 3,277 less before erase_components), measured 2026-11-30 on the busy 2-core machine (load
  # 5-12, size does not depend on it); -Os instead was 2,195 less brotli but 47 KB more raw
  # (before erase_components).
  step "wasm-opt -Oz --converge ($(wasm-opt --version))"
  wasm-opt -Oz --converge "$pkg/backstop_bg.wasm" -o "$pkg/backstop_bg.wasm"
fi

step "public/ -> $site"
cp -R public/. "$site/"

step "tailwindcss -> $pkg/backstop.css"
tailwind_args=(--input style/main.css --output "$pkg/backstop.css")
$release && tailwind_args+=(--minify)
tailwindcss "${tailwind_args[@]}"

if $release; then
  step "fingerprinting and precompressing (brotli, gzip) the wasm, JS and CSS"
  node scripts/fingerprint-site.mjs "$pkg"
else
  # A release build's names left behind would be what the server picks (pkg/site.json).
  rm -f "$pkg"/backstop-* "$pkg"/site.json
  step "site.json: plain names, and whether the wasm was built with erase_components"
  node scripts/site-manifest.mjs "$pkg"
fi

# The binary, and the example host application that mounts the console (the browser tests
# run it), in one build: the same build script output, site embedded or not, for both.
server_targets=(--bins --example mounted)
step "server: cargo build -p backstop-server ${server_targets[*]} ${server_profile[*]}"
if $release; then
  # The release binary carries the site (server/build.rs): nothing else to deploy.
  BACKSTOP_EMBED_SITE="$site" cargo build -p backstop-server "${server_targets[@]}" "${server_profile[@]}"
else
  cargo build -p backstop-server "${server_targets[@]}" "${server_profile[@]}"
fi

step "done: $target_dir/$server_dir/backstop serve --site-root $site"
ls -l "$pkg" >&2
