// Browser tests for the console, in Debian's Chromium (never a downloaded browser).
// Run through scripts/e2e.sh, which builds the site, starts a private PostgreSQL and sets:
//   DATABASE_URL        the database both servers below use, and the tests seed
//   BACKSTOP_BIN        the server binary (default target/debug/backstop)
//   BACKSTOP_SITE_ROOT  the built site (default target/site)
//   E2E_PORT            the demo console (no sign-in, loopback); E2E_PORT + 1 is the console
//                       with sign-in (users vera, a viewer, and otto, an operator) and Slack
//                       alerts to E2E_PORT + 2, a recording stand-in for Slack; E2E_PORT + 3 is
//                       the console behind an authenticating proxy on 127.0.0.1 (groups ops and
//                       staff), whose headers the tests set themselves; E2E_PORT + 4 is the
//                       example host application with the console mounted at /admin/jobs
//   MOUNTED_BIN         that example (default target/debug/examples/mounted)
import path from 'node:path';
import { defineConfig } from '@playwright/test';

const repoRoot = path.resolve(__dirname, '..');
const port = Number(process.env.E2E_PORT ?? 3917);
const binary = path.resolve(repoRoot, process.env.BACKSTOP_BIN ?? 'target/debug/backstop');
const siteRoot = path.resolve(repoRoot, process.env.BACKSTOP_SITE_ROOT ?? 'target/site');
const mountedBinary = path.resolve(repoRoot, process.env.MOUNTED_BIN ?? 'target/debug/examples/mounted');

export const demoURL = `http://127.0.0.1:${port}`;
export const signedInURL = `http://127.0.0.1:${port + 1}`;
export const slackURL = `http://127.0.0.1:${port + 2}`;
export const proxiedURL = `http://127.0.0.1:${port + 3}`;
export const mountedURL = `http://127.0.0.1:${port + 4}`;

const server = (args: string, url: string) => ({
  command: `"${binary}" ${args} --site-root "${siteRoot}"`,
  cwd: repoRoot,
  // Ready once it answers (401 counts: the signed-in console is up and asking for credentials).
  url,
  reuseExistingServer: false,
  timeout: 60_000,
  stdout: 'pipe' as const,
  stderr: 'pipe' as const,
});

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  reporter: process.env.CI
    ? [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]]
    : 'list',
  timeout: 45_000,
  expect: { timeout: 15_000 },
  use: {
    baseURL: demoURL,
    browserName: 'chromium',
    headless: true,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: [
    // The README's run command: the demo workload (whose workers complete retried jobs) and
    // its console. A slow signup rate keeps the lists calm.
    server(`demo --bind 127.0.0.1:${port} --rate 1`, `${demoURL}/`),
    server(
      `serve --bind 127.0.0.1:${port + 1} --user vera:v-pass:viewer --user otto:o-pass:operator` +
        ` --slack-webhook ${slackURL}/services/T0/B0/e2e --public-url ${signedInURL} --environment e2e`,
      `${signedInURL}/`,
    ),
    // Sign-in through a proxy: the browser stands in for it, on the trusted address.
    server(
      `serve --bind 127.0.0.1:${port + 3} --trusted-proxy 127.0.0.1 --operator-group ops --viewer-group staff`,
      `${proxiedURL}/healthz`,
    ),
    // A host application (server/examples/mounted.rs) with the console at /admin/jobs, behind
    // the host's own sign-in (alice operates, vera views, bob may not use the console).
    {
      ...server('', `${mountedURL}/healthz`),
      command: `MOUNTED_BIND=127.0.0.1:${port + 4} BACKSTOP_SITE_ROOT="${siteRoot}" "${mountedBinary}"`,
    },
    {
      command: `node end2end/slack-recorder.mjs ${port + 2}`,
      cwd: repoRoot,
      url: `${slackURL}/received`,
      reuseExistingServer: false,
      timeout: 10_000,
      stdout: 'pipe' as const,
      stderr: 'pipe' as const,
    },
  ],
});
