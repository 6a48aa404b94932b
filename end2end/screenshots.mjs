// Screenshots of the console for the docs, in light and dark, from a running demo console.
// Usage: node end2end/screenshots.mjs http://127.0.0.1:8080 docs/screenshots
// (scripts/screenshots.sh starts the demo and runs this.)
import { chromium } from '@playwright/test';

const [base, outDir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function waitFor(what, check, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // Not up yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`timed out after ${seconds}s waiting for ${what}`);
}

const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
// The demo needs a little while before jobs have died.
await waitFor('a dead job in the demo', async () => {
  await page.goto(`${base}/dead-letters`);
  return (await page.getByTestId('job-row').count()) >= 3;
}, 120);
const firstDead = await page.getByTestId('job-row').first().getAttribute('data-job-id');

for (const scheme of ['light', 'dark']) {
  await page.emulateMedia({ colorScheme: scheme });
  for (const [name, path] of [['overview', '/'], ['dead-letters', '/dead-letters'], ['job-detail', `/jobs/${firstDead}`]]) {
    await page.goto(`${base}${path}`);
    await page.locator('body[data-hydrated="true"]').waitFor();
    await page.screenshot({ path: `${outDir}/${name}-${scheme}.png`, fullPage: true });
    console.log(`${outDir}/${name}-${scheme}.png`);
  }
}
await browser.close();
