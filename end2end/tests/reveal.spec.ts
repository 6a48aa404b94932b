// Masking and reveal in the browser: a nested token is masked on the job page (and in its
// error), an operator reveals it with one click, and the audit log names the path, never the
// value. (Added with issue 10; not run by its author: see the branch's notes.)
import { signedInURL } from '../playwright.config';
import { expect, openConsole, test } from './fixtures/console';
import { insertDeadJobs, marker } from './fixtures/db';

test.use({ baseURL: signedInURL, httpCredentials: { username: 'otto', password: 'o-pass' } });

test('a masked value is revealed on request and the reveal is audited', async ({ page }) => {
  const mark = marker('reveal');
  const secret = `tok-${mark}`;
  const [id] = await insertDeadJobs([
    {
      kind: 'sync_crm',
      queue: 'default',
      payload: { account: { auth: { access_token: secret } }, mark },
      error: `crm said 401 for token=${secret}`,
    },
  ]);
  await openConsole(page, `/jobs/${id}`);
  await expect(page.getByTestId('payload')).toContainText('[redacted /account/auth]');
  await expect(page.getByTestId('attempt-error')).toHaveText('crm said 401 for token=[redacted]');
  await expect(page.locator('body')).not.toContainText(secret);

  await page.getByTestId('masked-values').locator('summary').click();
  await page.getByTestId('masked-value').getByRole('button', { name: 'Reveal' }).click();
  await expect(page.getByTestId('revealed-value')).toContainText(secret);

  await openConsole(page, '/audit?action=reveal');
  await expect(page.locator('body')).toContainText('/account/auth');
  await expect(page.locator('body')).not.toContainText(secret);
});
