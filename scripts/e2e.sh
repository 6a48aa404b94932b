#!/usr/bin/env bash
# Browser tests: builds the console (scripts/build-site.sh) and runs the Playwright tests in
# end2end/ against it, in Debian's Chromium, on a private PostgreSQL. Playwright starts the
# servers itself.
#
#   scripts/e2e.sh                     against the debug build
#   scripts/e2e.sh --release           against the release build (the only one that runs wasm-opt)
#   scripts/e2e.sh [--release] ARGS    extra arguments go to `playwright test` (e.g. -g toggle)
#
# E2E_PORT picks the port (default: a free one). Run scripts/setup.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug build_args=()
if [[ ${1:-} == --release ]]; then
  profile=release build_args=(--release)
  shift
fi

[[ -x /usr/bin/chromium ]] || { echo "e2e: /usr/bin/chromium missing; run scripts/setup.sh" >&2; exit 1; }

scripts/build-site.sh "${build_args[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s).target_directory))')
export BACKSTOP_BIN="$target_dir/$profile/backstop"
# The example host application with the console mounted (built by build-site.sh too).
export MOUNTED_BIN="$target_dir/$profile/examples/mounted"
if [[ $profile == release ]]; then
  # The release binary carries the site itself (server/build.rs): give it an empty site root,
  # so the browser tests prove that nothing else needs deploying.
  BACKSTOP_SITE_ROOT=$(mktemp -d)
  trap 'rmdir "$BACKSTOP_SITE_ROOT"' EXIT
  export BACKSTOP_SITE_ROOT
else
  export BACKSTOP_SITE_ROOT="$target_dir/site"
fi
# Five adjacent free ports: the demo console, the console with sign-in, the Slack stand-in, the
# console behind a proxy and the example host application with the console mounted. They are picked below the kernel's ephemeral range (32768 and up), where
# only listeners live: a kernel-picked port is ephemeral, and its neighbours can be taken
# meanwhile by any outgoing connection (the demo's own PostgreSQL connections did).
export E2E_PORT=${E2E_PORT:-$(node -e '
  const net = require("net");
  const free = (port) => new Promise((ok) => {
    const s = net.createServer().once("error", () => ok(false))
      .listen(port, "127.0.0.1", () => s.close(() => ok(true)));
  });
  (async () => {
    for (;;) {
      const port = 20000 + Math.floor(Math.random() * 12000);
      if (await free(port) && await free(port + 1) && await free(port + 2) && await free(port + 3) && await free(port + 4)) return console.log(port);
    }
  })();')}
printf '\033[1me2e:\033[0m %s demo on 127.0.0.1:%s, serve with sign-in on :%s, Slack stand-in on :%s, proxy sign-in on :%s, mounted in a host on :%s\n' \
  "$BACKSTOP_BIN" "$E2E_PORT" "$((E2E_PORT + 1))" "$((E2E_PORT + 2))" "$((E2E_PORT + 3))" "$((E2E_PORT + 4))" >&2
# One private PostgreSQL (unless DATABASE_URL is set) for both consoles and the tests' own
# seeding. --no-install: never fetch Playwright from the registry; it comes from package-lock.json.
"$BACKSTOP_BIN" with-postgres -- npx --no-install playwright test -c end2end/playwright.config.ts "$@"
