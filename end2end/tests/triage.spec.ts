// Triage and Slack alerts, end to end: dead jobs of a new error alert the recording Slack
// stand-in once; the message's link opens the group in the console; retry all empties it.
import { signedInURL, slackURL } from '../playwright.config';
import { expect, openConsole, test, ui } from './fixtures/console';
import { insertGroupedDeadJobs, insertTemplatedGroup, randomWord, whereIs } from './fixtures/db';

test.use({ baseURL: signedInURL, httpCredentials: { username: 'otto', password: 'o-pass' } });

type Received = { at: string; path: string; body: { text: string; blocks: { elements?: { url?: string }[] }[] } };

async function slackMessagesAbout(word: string): Promise<Received[]> {
  const response = await fetch(`${slackURL}/received`);
  const received = (await response.json()) as Received[];
  return received.filter((r) => typeof r.body === 'object' && r.body.text.includes(word));
}

test('a Slack alert links to its group, where retry all empties it', async ({ page }) => {
  const word = randomWord();
  const error = `smtp: mailbox ${word} unavailable`;
  const jobs = [1, 2, 3].map(() => ({
    kind: 'send_welcome_email',
    queue: 'emails',
    payload: { user_id: -1, email: `${word}@example.com` },
    error,
  }));
  const { ids, group } = await insertGroupedDeadJobs(jobs);

  // One alert for the new group (the other two deaths wait for the digest).
  await expect.poll(async () => (await slackMessagesAbout(word)).length, { timeout: 30_000 }).toBe(1);
  const [message] = await slackMessagesAbout(word);
  expect(message.body.text).toContain('[e2e] New failure: send_welcome_email (emails)');
  const button = message.body.blocks.at(-1)?.elements?.[0]?.url;
  expect(button).toBe(`${signedInURL}/triage/${group}`);

  await openConsole(page, button!);
  await expect(page.getByTestId('group-message')).toHaveText(error);
  await expect(page.getByTestId('group-dead-now')).toHaveText('3');
  await expect(ui(page).rows).toHaveCount(3);

  await ui(page).action('Retry all matching…').click();
  await expect(ui(page).confirm.getByTestId('confirm-question')).toHaveText('Retry all 3 jobs matching this filter?');
  await ui(page).confirm.getByRole('button', { name: 'Yes, retry' }).click();
  await expect(ui(page).report).toHaveText('Retried 3 of 3 jobs.');
  await expect(ui(page).empty).toHaveText(/No dead jobs left in this group/);
  await expect(page.getByTestId('group-dead-now')).toHaveText('0');
  // The demo's mailer completes them (no such user: nothing to send).
  for (const id of ids) await expect.poll(() => whereIs(id), { timeout: 30_000 }).toBe('gone');
});

test('the triage list shows the group, and resolving it is recorded', async ({ page }) => {
  const word = randomWord();
  const { group } = await insertGroupedDeadJobs([
    { kind: 'charge_card', queue: 'billing', payload: { card: word }, error: `card issuer ${word} offline` },
  ]);
  await openConsole(page, '/triage?status=open');
  const row = page.locator(`[data-testid="group-row"][data-group-id="${group}"]`);
  await expect(row).toContainText(`card issuer ${word} offline`);
  await expect(row.getByTestId('group-state')).toHaveText('New');
  await row.getByRole('link').click();
  await expect(page).toHaveURL(new RegExp(`/triage/${group}$`));
  await page.getByRole('toolbar', { name: 'Group status' }).getByRole('button', { name: 'Resolve' }).click();
  await expect(page.getByTestId('group-report')).toContainText('Resolved');
  await expect(page.getByTestId('group-state')).toHaveText('Resolved');
  await openConsole(page, '/audit?action=resolve_group');
  await expect(page.getByTestId('audit-row').first()).toContainText(`"group":${group}`);
});

test('an operator merges two groups of one problem; the old link opens the survivor', async ({ page }) => {
  const word = randomWord();
  const { group: older } = await insertGroupedDeadJobs([
    { kind: 'send_welcome_email', queue: 'emails', payload: {}, error: `smtp 550: ${word} unknown` },
  ]);
  const { group: newer } = await insertGroupedDeadJobs([
    { kind: 'send_welcome_email', queue: 'emails', payload: {}, error: `smtp 550: no mailbox called ${word} here` },
  ]);
  expect(newer).not.toBe(older);

  await openConsole(page, `/triage/${newer}`);
  await page.getByTestId('merge-with').fill(String(older));
  await page.getByRole('button', { name: 'Merge' }).click();
  await expect(page).toHaveURL(new RegExp(`/triage/${older}$`));
  await expect(page.getByTestId('group-message')).toHaveText(`smtp 550: ${word} unknown`);
  await expect(page.getByTestId('group-dead-now')).toHaveText('2');

  // The merged group's link (an old Slack message, say) now opens the survivor.
  await openConsole(page, `/triage/${newer}`);
  await expect(page).toHaveURL(new RegExp(`/triage/${older}$`));
  await openConsole(page, '/audit?action=merge_groups');
  await expect(page.getByTestId('audit-row').first()).toContainText(`"survivor":${older}`);
});

test('an operator splits a group by the part that names the problem', async ({ page }) => {
  const kind = `export_${randomWord()}`;
  const tenants = ['acme', 'acme', 'globex', 'initech', 'umbrella'];
  const group = await insertTemplatedGroup(
    kind,
    ['export', 'for', 'tenant', null, 'refused'],
    tenants.map((tenant) => `export for tenant ${tenant} refused`),
  );

  await openConsole(page, `/triage/${group}`);
  await expect(page.getByTestId('group-message')).toHaveText('export for tenant <*> refused');
  await expect(page.getByTestId('wildcard')).toHaveCount(1);
  await page.getByRole('toolbar', { name: 'Split the group' }).getByRole('button', { name: 'Split by tenant <*>' }).click();
  await expect(page.getByTestId('group-report')).toHaveText('Split into 4 groups, one per value:');
  const parts = page.getByTestId('split-parts').getByRole('listitem');
  await expect(parts).toHaveCount(4);
  await expect(parts.first()).toContainText('acme · 2 dead jobs');
  // The group keeps the most common value and its id; the others have groups of their own.
  await expect(page.getByTestId('group-message')).toHaveText('export for tenant acme refused');
  await expect(page.getByTestId('group-dead-now')).toHaveText('2');
  await parts.filter({ hasText: 'globex' }).getByRole('link').click();
  await expect(page.getByTestId('group-message')).toHaveText('export for tenant globex refused');
  await expect(page.getByTestId('group-dead-now')).toHaveText('1');
  await expect(page.getByTestId('split-parts')).toHaveCount(0);

  await openConsole(page, '/audit?action=split_group');
  await expect(page.getByTestId('audit-row').first()).toContainText(`"group":${group}`);
});
