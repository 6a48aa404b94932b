// The console mounted in a host application at /admin/jobs (server/examples/mounted.rs, see
// playwright.config.ts): the host's own sign-in decides who may read and who may act, and every
// link, asset and server function stays under the prefix.
import type { Page } from '@playwright/test';
import { mountedURL } from '../playwright.config';
import { act, expect, test, ui } from './fixtures/console';
import { insertDeadJobs, marker, welcomeEmail, whereIs } from './fixtures/db';

const prefix = '/admin/jobs';
test.use({ baseURL: mountedURL });

/** Every response the page gets from the host, and the failed ones. */
function watchResponses(page: Page) {
  const seen = { paths: [] as string[], failed: [] as string[] };
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin !== mountedURL) return;
    seen.paths.push(url.pathname);
    if (response.status() >= 400) seen.failed.push(`${response.status()} ${url.pathname}`);
  });
  return seen;
}

/** Every link, stylesheet, script and form of the page points under the prefix. */
async function expectEverythingUnderThePrefix(page: Page) {
  const urls = await page
    .locator('a[href], link[href], script[src], form[action]')
    .evaluateAll((elements) =>
      elements.map((e) => e.getAttribute('href') ?? e.getAttribute('src') ?? e.getAttribute('action') ?? ''),
    );
  expect(urls.length).toBeGreaterThan(10);
  for (const url of urls) expect(url).toMatch(/^\/admin\/jobs(\/|\?|$)/);
}

/** Marks the page's window: still there after a click, the click navigated in the page. */
async function markWindow(page: Page) {
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
}
async function expectSameWindow(page: Page) {
  expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
}

test.describe("the host's operator", () => {
  test.use({ httpCredentials: { username: 'alice', password: 'alice-pass' } });

  test('navigates the mounted console and retries a dead job through it', async ({ page }) => {
    const mark = marker('mounted');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
    const responses = watchResponses(page);

    await page.goto(prefix);
    await expect(ui(page).body).toHaveAttribute('data-hydrated', 'true');
    await expect(ui(page).user).toHaveText('alice · operator');
    await expect(ui(page).heading).toHaveText('Overview');
    await expectEverythingUnderThePrefix(page);

    // In the page: a nav link, the filter form, a job link.
    await markWindow(page);
    await ui(page).navLink('Dead letters').click();
    await expect(page).toHaveURL(`${mountedURL}${prefix}/dead-letters`);
    await expect(ui(page).heading).toHaveText('Dead letters');
    await ui(page).field('Payload contains (JSON)').fill(JSON.stringify({ mark }));
    await ui(page).filter.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(new RegExp(`^${mountedURL}${prefix}/dead-letters\\?.*payload=`));
    await expect(ui(page).rows).toHaveCount(1);
    await expectEverythingUnderThePrefix(page);
    await ui(page).row(id).locator('a[data-job-link]').click();
    await expect(page).toHaveURL(`${mountedURL}${prefix}/jobs/${id}`);
    await expectSameWindow(page);
    await expectEverythingUnderThePrefix(page);

    // The header's jump box, then an action: a server function under the prefix.
    await page.locator('#jump').fill(String(id));
    await page.locator('#jump').press('Enter');
    await expect(page).toHaveURL(`${mountedURL}${prefix}/jobs/${id}`);
    await expectSameWindow(page);
    await act(page, 'Retry', false);
    await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
    expect(await whereIs(id)).not.toBe('dead');
    // Everything came from under the prefix, and nothing failed: styles, wasm, server functions.
    expect(responses.failed).toEqual([]);
    expect(responses.paths.filter((p) => !p.startsWith(prefix))).toEqual([]);
    expect(responses.paths.some((p) => p.startsWith(`${prefix}/pkg/`) && p.endsWith('.wasm'))).toBe(true);
    expect(responses.paths).toContain(`${prefix}/api/act_on_jobs`);
  });
});

test.describe("the host's viewer", () => {
  test.use({ httpCredentials: { username: 'vera', password: 'vera-pass' } });

  test('reads but cannot act, not even by calling the server function', async ({ page }) => {
    const mark = marker('mounted-viewer');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
    await page.goto(`${prefix}/dead-letters?payload=${encodeURIComponent(JSON.stringify({ mark }))}`);
    await expect(ui(page).body).toHaveAttribute('data-hydrated', 'true');
    await expect(ui(page).user).toHaveText('vera · viewer');
    await expect(ui(page).row(id)).toBeVisible();
    await expect(ui(page).readOnly).toBeVisible();
    await expect(ui(page).toolbar).toHaveCount(0);

    const status = await page.evaluate(async (jobId) => {
      const response = await fetch('/admin/jobs/api/act_on_jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `action=retry&state=dead&ids[0]=${jobId}`,
      });
      return response.status;
    }, id);
    expect(status).toBe(403);
    expect(await whereIs(id)).toBe('dead');
  });
});

test('a host user without a console role is refused, and nobody gets in without signing in', async ({
  playwright,
}) => {
  const bob = await playwright.request.newContext({
    baseURL: mountedURL,
    httpCredentials: { username: 'bob', password: 'bob-pass' },
  });
  expect((await bob.get('/')).status()).toBe(200); // the host's own page
  for (const path of [prefix, `${prefix}/dead-letters`, `${prefix}/pkg/backstop.css`]) {
    expect((await bob.get(path, { failOnStatusCode: false })).status(), path).toBe(403);
  }
  const forbidden = await bob.post(`${prefix}/api/whoami`, { failOnStatusCode: false });
  expect(forbidden.status()).toBe(403);
  await bob.dispose();

  const anonymous = await playwright.request.newContext({ baseURL: mountedURL });
  const response = await anonymous.get(prefix, { failOnStatusCode: false });
  expect(response.status()).toBe(401);
  expect(response.headers()['www-authenticate']).toContain('Example Corp');
  await anonymous.dispose();
});
