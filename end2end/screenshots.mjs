// Screenshots of the console for the docs, in light and dark, on a desktop (1280 px) and on a
// phone (390 px), from a running console whose queue has dead jobs and error groups.
// Usage: node end2end/screenshots.mjs http://127.0.0.1:8080 docs/screenshots
// (scripts/screenshots.sh runs the demo, starts the console and runs this.)
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

const desktop = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await waitFor('dead jobs and error groups', async () => {
  await desktop.goto(`${base}/triage`);
  if ((await desktop.getByTestId('group-row').count()) < 2) return false;
  await desktop.goto(`${base}/dead-letters`);
  return (await desktop.getByTestId('job-row').count()) >= 3;
}, 60);
const firstDead = await desktop.getByTestId('job-row').first().getAttribute('data-job-id');
await desktop.goto(`${base}/triage`);
const firstGroup = await desktop.getByTestId('group-row').first().getAttribute('data-group-id');

const pages = [
  ['overview', '/'],
  ['dead-letters', '/dead-letters'],
  ['job-detail', `/jobs/${firstDead}`],
  ['triage', '/triage'],
  ['group', `/triage/${firstGroup}`],
];
const phone = await browser.newPage({
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
});
for (const [device, page] of [['', desktop], ['-phone', phone]]) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      await page.locator('body[data-hydrated="true"]').waitFor();
      const file = `${outDir}/${name}${device}-${scheme}.png`;
      // A phone's picture is its first screen and a half (at twice the pixels, as a phone
      // shows it): enough for the page's shape, without a megabyte of cards.
      const clip = device ? { x: 0, y: 0, width: 390, height: Math.min(1260, await page.evaluate(() => document.documentElement.scrollHeight)) } : undefined;
      await page.screenshot({ path: file, fullPage: true, clip });
      console.log(file);
    }
  }
}
await browser.close();
