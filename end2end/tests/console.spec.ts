import {
  act,
  expect,
  expectCurrentSection,
  expectLiveUpdates,
  expectServerRenderedOverview,
  expectTailwindStyles,
  openConsole,
  openDeadLetters,
  test,
  ui,
} from './fixtures/console';
import { insertDeadJobs, marker, welcomeEmail, whereIs } from './fixtures/db';

test('the overview is rendered on the server', async ({ request }) => {
  await expectServerRenderedOverview(request);
});

test('the page is styled by the Tailwind stylesheet', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveTitle('Overview · Backstop');
  await expectTailwindStyles(page);
});

test('after hydration the live updates toggle switches', async ({ page }) => {
  await openConsole(page);
  await expectLiveUpdates(page, true);
  await ui(page).liveUpdates.click();
  await expectLiveUpdates(page, false);
  await ui(page).liveUpdates.click();
  await expectLiveUpdates(page, true);
});

test('the navigation routes in the browser and marks the current section', async ({ page }) => {
  await openConsole(page);
  await expectCurrentSection(page, 'Overview');
  await ui(page).navLink('Dead letters').click();
  await expect(page).toHaveURL('/dead-letters');
  await expectCurrentSection(page, 'Dead letters');
  await expect(page).toHaveTitle('Dead letters · Backstop');
});

test('find a dead job, open it, retry it, watch it complete', async ({ page }) => {
  const mark = marker('retry-one');
  const job = welcomeEmail(mark);
  const [id] = await insertDeadJobs([job]);

  await openDeadLetters(page, { email: `${mark}@example.com` });
  await expect(ui(page).rows).toHaveCount(1);
  await expect(ui(page).row(id)).toContainText(job.error);
  await ui(page).row(id).getByRole('link', { name: `#${id}` }).click();

  await expect(page).toHaveURL(`/jobs/${id}`);
  await expect(ui(page).heading).toHaveText(`Job #${id}`);
  await expect(ui(page).state).toHaveText('Dead');
  await expect(ui(page).attemptErrors).toHaveText([job.error]);
  await expect(ui(page).payload).toContainText(`"email": "${mark}@example.com"`);

  await act(page, 'Retry', false);
  await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
  // The demo's mailer takes it: live (queued or running), then completed and gone.
  await expect(ui(page).jobGone).toBeVisible({ timeout: 20_000 });
  expect(await whereIs(id)).toBe('gone');
});

test('bulk retry by filter reports how many jobs it retried', async ({ page }) => {
  const batch = marker('bulk');
  const ids = await insertDeadJobs([1, 2, 3].map((n) => welcomeEmail(`${batch}-${n}`, { batch })));

  await openDeadLetters(page, { batch });
  await expect(ui(page).rows).toHaveCount(3);
  await ui(page).action('Retry all matching…').click();
  await expect(ui(page).confirm.getByTestId('confirm-question')).toHaveText(
    'Retry all 3 jobs matching this filter?',
  );
  await ui(page).confirm.getByRole('button', { name: 'Yes, retry' }).click();
  await expect(ui(page).report).toHaveText('Retried 3 of 3 jobs.');
  // The filter survives the action, and the list empties as the jobs leave the table.
  await expect(page).toHaveURL(/payload=/);
  await expect(ui(page).empty).toBeVisible();
  for (const id of ids) expect(await whereIs(id)).not.toBe('dead');
});

test('deleting a selection asks first and reports the count', async ({ page }) => {
  const mark = marker('delete');
  const ids = await insertDeadJobs([welcomeEmail(`${mark}-a`, { mark }), welcomeEmail(`${mark}-b`, { mark })]);

  await openDeadLetters(page, { mark });
  await expect(ui(page).rows).toHaveCount(2);
  await ui(page).row(ids[0]).getByRole('checkbox').check();
  await ui(page).action('Delete selected (1)').click();
  await expect(ui(page).confirm.getByTestId('confirm-question')).toHaveText('Delete 1 selected job?');
  await ui(page).confirm.getByRole('button', { name: 'Yes, delete' }).click();
  await expect(ui(page).report).toHaveText('Deleted 1 of 1 job.');
  await expect(ui(page).rows).toHaveCount(1);
  expect(await whereIs(ids[0])).toBe('gone');
  expect(await whereIs(ids[1])).toBe('dead');
});

test('edit a dead job\'s payload and retry it', async ({ page }) => {
  const mark = marker('edit');
  const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
  await openConsole(page, `/jobs/${id}`);
  await page.getByRole('button', { name: 'Edit and retry' }).click();
  const editor = page.getByTestId('payload-editor');
  await expect(editor).toHaveValue(new RegExp(`"email": "${mark}@example.com"`));

  await editor.fill('{"user_id": ');
  await page.getByRole('button', { name: 'Save and retry' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid JSON');
  expect(await whereIs(id)).toBe('dead');

  await editor.fill(JSON.stringify({ user_id: -1, email: `${mark}-fixed@example.com`, mark }));
  await page.getByRole('button', { name: 'Save and retry' }).click();
  await expect(ui(page).report).toHaveText('Saved the new payload and retried the job.');
  await expect(ui(page).jobGone).toBeVisible({ timeout: 20_000 });
});

test('a hostile payload and error render as inert text', async ({ page }) => {
  const mark = marker('hostile');
  const [id] = await insertDeadJobs([
    {
      kind: 'send_welcome_email',
      queue: 'emails',
      payload: { mark, html: '<img src=x onerror="window.__pwned=1">', script: '<script>window.__pwned=2</script>' },
      error: `<b data-testid="injected">bold</b> '; drop table backstop.dead_jobs; -- ${mark}`,
    },
  ]);
  await openDeadLetters(page, { mark });
  await expect(ui(page).row(id)).toContainText('<b data-testid="injected">bold</b>');
  await openConsole(page, `/jobs/${id}`);
  await expect(ui(page).payload).toContainText('<img src=x onerror=\\"window.__pwned=1\\">');
  await expect(ui(page).attemptErrors).toContainText('<b data-testid="injected">');
  await expect(page.getByTestId('injected')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(await whereIs(id)).toBe('dead');
});

test('deep links restore the filter, and the filter form writes the URL', async ({ page }) => {
  await openConsole(page, '/jobs?state=retrying&queue=billing&kind=charge_card&from=2026-11-25T14:30');
  await expect(ui(page).field('State')).toHaveValue('retrying');
  await expect(ui(page).field('Queue')).toHaveValue('billing');
  await expect(ui(page).field('Kind')).toHaveValue('charge_card');
  await expect(ui(page).field('Enqueued from (UTC)')).toHaveValue('2026-11-25T14:30');

  await ui(page).field('Kind').fill('deliver_webhook');
  await ui(page).field('Error text').fill('503');
  await ui(page).filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/kind=deliver_webhook/);
  await expect(page).toHaveURL(/error=503/);
  await expect(page).toHaveURL(/state=retrying/);
  await page.reload();
  await expect(ui(page).field('Kind')).toHaveValue('deliver_webhook');
});
