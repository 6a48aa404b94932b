// On call from a phone (issue 13): a Slack alert opened on a 390 px phone. Triage, a group, the
// dead letters, the live jobs and a job page fit the screen without sideways page scrolling, even
// with the content a bad night brings (unbroken 300-character identifiers, long URLs and SQL,
// long kind, queue and tenant names, big payloads); long errors and payloads wrap or scroll
// inside their own box; the actions on them are there to tap.
import { expect, openConsole, test, ui } from './fixtures/console';
import {
  type DeadJob,
  insertDeadJobs,
  insertGroupedDeadJobs,
  insertRetryingJob,
  marker,
  randomWord,
  whereIs,
} from './fixtures/db';
import type { Locator, Page } from '@playwright/test';

const PHONE = { width: 390, height: 844 };
test.use({ viewport: PHONE, isMobile: true, hasTouch: true });

// ---- Hostile content -------------------------------------------------------------------------

/** `n` letters with no space or hyphen to break at (an identifier, a token, a base64 blob). */
function unbroken(n: number): string {
  let out = '';
  while (out.length < n) out += randomWord();
  return out.slice(0, n);
}

function hostileError(word: string): string {
  return (
    `reconcile failed for tenant Internationale Handelsgesellschaft Nordrhein-Westfalen ${word}: ` +
    `identifier ${unbroken(300)} not found at https://ledger.partner-integration.example.com/api/v2/` +
    `${unbroken(120)}/entries?cursor=${unbroken(80)} while running ` +
    `insert into analytics.events_partitioned_by_tenant_and_day_${unbroken(60)} (tenant_id, payload) select`
  );
}

function hostilePayload(word: string): Record<string, unknown> {
  return {
    word,
    tenant: `Internationale Handelsgesellschaft Nordrhein-Westfalen mbH & Co. KG ${word}`,
    callback_url: `https://ledger.partner-integration.example.com/api/v2/${unbroken(200)}`,
    signature: unbroken(344),
    lines: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${unbroken(40)}`, quantity: i + 1, note: unbroken(90) })),
  };
}

const LONG_KIND = `reconcile_partner_ledger_entries_for_enterprise_tenants_${unbroken(40)}`;
const LONG_QUEUE = `partner-integrations-eu-central-${unbroken(30)}`;

function hostileJob(word: string, kind = LONG_KIND): DeadJob {
  return { kind, queue: LONG_QUEUE, payload: hostilePayload(word), error: hostileError(word) };
}

// ---- Checks ----------------------------------------------------------------------------------

/** The page does not scroll sideways: nothing is wider than the phone. */
async function expectNoSidewaysScroll(page: Page) {
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth), {
      message: `${page.url()} is no wider than the phone`,
    })
    .toBeLessThanOrEqual(PHONE.width);
}

/** The element is on screen horizontally (its content wraps or scrolls inside it). */
async function expectWithinWidth(locator: Locator) {
  await expect(locator).toBeVisible();
  const box = (await locator.boundingBox())!;
  expect(box.x, 'left edge on screen').toBeGreaterThanOrEqual(0);
  expect(box.x + box.width, 'right edge on screen').toBeLessThanOrEqual(PHONE.width);
}

/** Big enough for a thumb (about 40 px), and on screen. */
async function expectTappable(locator: Locator) {
  await expectWithinWidth(locator);
  const box = (await locator.boundingBox())!;
  expect(box.height, 'tap target height').toBeGreaterThanOrEqual(38);
}

// ---- Tests -----------------------------------------------------------------------------------

test('the header fits a phone and its navigation is tappable', async ({ page }) => {
  await openConsole(page);
  await expectNoSidewaysScroll(page);
  for (const name of ['Overview', 'Jobs', 'Dead letters', 'Triage', 'Queues', 'Audit log']) {
    await expectTappable(ui(page).navLink(name));
  }
  await expectWithinWidth(page.locator('#jump'));
  await expectWithinWidth(ui(page).liveUpdates);
  await ui(page).navLink('Triage').tap();
  await expect(page).toHaveURL('/triage');
  await expect(ui(page).heading).toHaveText('Triage');
  // The other sections' tables scroll inside their own boxes.
  for (const name of ['Queues', 'Audit log']) {
    await ui(page).navLink(name).tap();
    await expect(ui(page).heading).toHaveText(name);
    await expectNoSidewaysScroll(page);
  }
});

test('from a Slack link on a phone: triage, the group, its dead jobs, retry all', async ({ page }) => {
  const word = randomWord();
  const jobs = [1, 2].map(() => ({ ...hostileJob(word), error: hostileError(word).replace(/\d/g, '') }));
  // One error for the group (the grouper would have stored it in normal form).
  jobs[1].error = jobs[0].error;
  const { ids, group } = await insertGroupedDeadJobs(jobs);

  await openConsole(page, '/triage?status=open');
  await expectNoSidewaysScroll(page);
  const row = page.locator(`[data-testid="group-row"][data-group-id="${group}"]`);
  await expect(row).toContainText(LONG_KIND);
  // The whole card opens the group.
  await expectTappable(row);
  await row.tap();

  await expect(page).toHaveURL(new RegExp(`/triage/${group}$`));
  await expect(page.getByTestId('group-message')).toContainText(word);
  await expectNoSidewaysScroll(page);
  await expectWithinWidth(page.getByTestId('group-message'));
  await expect(page.getByTestId('group-dead-now')).toHaveText('2');
  await expect(ui(page).rows).toHaveCount(2);
  for (const id of ids) await expectWithinWidth(ui(page).row(id));
  // The latest error, as it happened: its box scrolls or wraps, the page does not.
  await page.locator('details summary', { hasText: 'Latest error' }).tap();
  await expectWithinWidth(page.getByTestId('sample-error'));
  await expectNoSidewaysScroll(page);

  const status = page.getByRole('toolbar', { name: 'Group status' });
  for (const name of ['Resolve', 'Ignore for 24 h', 'Merge']) await expectTappable(status.getByRole('button', { name }));
  const retryAll = ui(page).action('Retry all matching…');
  await expectTappable(retryAll);
  await retryAll.tap();
  const yes = ui(page).confirm.getByRole('button', { name: 'Yes, retry' });
  await expectTappable(yes);
  await expectNoSidewaysScroll(page);
  await yes.tap();
  await expect(ui(page).report).toHaveText('Retried 2 of 2 jobs.');
  await expect(page.getByTestId('group-dead-now')).toHaveText('0');
  for (const id of ids) expect(await whereIs(id)).not.toBe('dead');
});

test('dead letters on a phone: stacked rows, tick one, retry it', async ({ page }) => {
  const mark = marker('phone-dead');
  const ids = await insertDeadJobs([
    hostileJob(mark),
    hostileJob(mark),
    // The demo's mailer completes this one when retried (no such user: nothing to send).
    {
      ...hostileJob(mark, 'send_welcome_email'),
      queue: 'emails',
      payload: { ...hostilePayload(mark), user_id: -1, email: `${mark}@example.com` },
    },
  ]);
  const retried = ids[2];

  // The whole table, as a Slack link or the navigation opens it.
  await openConsole(page, '/dead-letters');
  await expect(ui(page).rows.first()).toBeVisible();
  await expectNoSidewaysScroll(page);

  await openConsole(page, `/dead-letters?payload=${encodeURIComponent(JSON.stringify({ word: mark }))}`);
  await expect(ui(page).rows).toHaveCount(3);
  await expectNoSidewaysScroll(page);
  for (const id of ids) {
    const row = ui(page).row(id);
    await expectWithinWidth(row);
    await expectWithinWidth(row.getByTestId('error-line'));
    await expectWithinWidth(row.getByTestId('payload-preview'));
    await expect(row.getByTestId('state')).toBeVisible();
  }
  await expect(ui(page).row(ids[0])).toContainText(LONG_KIND);
  await expect(ui(page).row(ids[0]).getByTestId('error-line')).toContainText('reconcile failed for tenant');

  // Select every job on the page, then just one, by thumb.
  const all = page.getByRole('checkbox', { name: 'Select every job on this page' });
  await expectTappable(page.getByTestId('select-all'));
  await all.tap();
  await expect(ui(page).action('Retry selected (3)')).toBeEnabled();
  await all.tap();
  await expect(ui(page).action('Retry selected (0)')).toBeDisabled();
  const tick = page.getByTestId('select-job').filter({ has: page.getByRole('checkbox', { name: `Select job ${retried}` }) });
  await expectTappable(tick);
  await tick.tap();
  await expect(page.getByRole('checkbox', { name: `Select job ${retried}` })).toBeChecked();
  const retry = ui(page).action('Retry selected (1)');
  await expectTappable(retry);
  await retry.tap();
  await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
  await expect(ui(page).rows).toHaveCount(2);
  await expect.poll(() => whereIs(retried), { timeout: 30_000 }).toBe('gone');
  await expectNoSidewaysScroll(page);

  // The whole card opens the job.
  await ui(page).row(ids[0]).tap();
  await expect(page).toHaveURL(`/jobs/${ids[0]}`);
});

test('the live jobs on a phone: stacked rows, nothing sideways', async ({ page }) => {
  const mark = marker('phone-live');
  const id = await insertRetryingJob({ ...hostileJob(mark), attempts: 3 });

  await openConsole(page, '/jobs');
  await expect(ui(page).rows.first()).toBeVisible();
  await expectNoSidewaysScroll(page);

  await openConsole(page, `/jobs?payload=${encodeURIComponent(JSON.stringify({ word: mark }))}`);
  await expect(ui(page).rows).toHaveCount(1);
  await expectNoSidewaysScroll(page);
  const row = ui(page).row(id);
  await expectWithinWidth(row);
  await expect(row.getByTestId('state')).toHaveText('Retrying');
  await expectWithinWidth(row.getByTestId('error-line'));
  await expect(row).toContainText('3/25');
  await expectTappable(ui(page).filter.getByRole('button', { name: 'Filter' }));
});

test('a dead job on a phone: payload and errors scroll in their boxes, retry is a tap', async ({ page }) => {
  const mark = marker('phone-job');
  const job = hostileJob(mark);
  job.error = `${hostileError(mark)}\n    at ${unbroken(200)} (/srv/app/node_modules/${unbroken(150)}/index.js:1:2)\n    at process.processTicksAndRejections`;
  const [id] = await insertDeadJobs([job]);

  await openConsole(page, `/jobs/${id}`);
  await expect(ui(page).heading).toHaveText(`Job #${id}`);
  await expectNoSidewaysScroll(page);
  await expectWithinWidth(ui(page).payload);
  await expectWithinWidth(ui(page).attemptErrors);
  await expectWithinWidth(page.getByTestId('attempt-trace'));
  await expect(page.getByText(LONG_QUEUE)).toBeVisible();
  // A long line scrolls inside the payload's box.
  expect(await ui(page).payload.evaluate((pre) => pre.scrollWidth > pre.clientWidth)).toBe(true);

  for (const name of ['Discard', 'Delete']) await expectTappable(ui(page).action(name));
  await ui(page).action('Delete').tap();
  await expectTappable(ui(page).confirm.getByRole('button', { name: 'No' }));
  await expectNoSidewaysScroll(page);
  await ui(page).confirm.getByRole('button', { name: 'No' }).tap();

  const retry = ui(page).action('Retry');
  await expectTappable(retry);
  await retry.tap();
  await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
  // Back in its queue (which no demo worker serves, so it waits there).
  expect(await whereIs(id)).toBe('live');
});
