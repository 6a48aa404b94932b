// Browser tests for the console, in Debian's Chromium (never a downloaded browser).
// Normally run through scripts/e2e.sh, which builds the site and sets:
//   BACKSTOP_BIN        the server binary (default target/debug/backstop)
//   BACKSTOP_SITE_ROOT  the built site (default target/site)
//   E2E_PORT            where the server listens (default 3917)
import path from 'node:path';
import { defineConfig } from '@playwright/test';

const repoRoot = path.resolve(__dirname, '..');
const port = Number(process.env.E2E_PORT ?? 3917);
const baseURL = `http://127.0.0.1:${port}`;
const binary = path.resolve(repoRoot, process.env.BACKSTOP_BIN ?? 'target/debug/backstop');
const siteRoot = path.resolve(repoRoot, process.env.BACKSTOP_SITE_ROOT ?? 'target/site');

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  reporter: process.env.CI
    ? [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]]
    : 'list',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  use: {
    baseURL,
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
  webServer: {
    command: `"${binary}" serve --bind 127.0.0.1:${port} --site-root "${siteRoot}"`,
    cwd: repoRoot,
    // Ready once the overview answers; the server is started fresh for every run.
    url: `${baseURL}/`,
    reuseExistingServer: false,
    timeout: 30_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
