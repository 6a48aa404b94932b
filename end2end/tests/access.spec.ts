// The console with sign-in (see playwright.config.ts): roles, and refusal of forged requests.
import { signedInURL } from '../playwright.config';
import { expect, openDeadLetters, test, ui } from './fixtures/console';
import { insertDeadJobs, marker, welcomeEmail, whereIs } from './fixtures/db';

test.use({ baseURL: signedInURL });

test.describe('a viewer', () => {
  test.use({ httpCredentials: { username: 'vera', password: 'v-pass' } });

  test('sees dead jobs but no working action, and a forged request is refused', async ({ page }) => {
    const mark = marker('viewer');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);

    await openDeadLetters(page, { mark });
    await expect(ui(page).user).toHaveText('vera · viewer');
    await expect(ui(page).row(id)).toBeVisible();
    await expect(ui(page).readOnly).toBeVisible();
    await expect(ui(page).toolbar).toHaveCount(0);
    await expect(ui(page).row(id).getByRole('checkbox')).toHaveCount(0);

    // The same call the operator's Retry button makes, sent by hand from the viewer's page.
    const status = await page.evaluate(async (jobId) => {
      const response = await fetch('/api/act_on_jobs', {
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

test.describe('an operator', () => {
  test.use({ httpCredentials: { username: 'otto', password: 'o-pass' } });

  test('can act, but not from another site', async ({ page, request }) => {
    const mark = marker('operator');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
    await openDeadLetters(page, { mark });
    await expect(ui(page).user).toHaveText('otto · operator');
    await expect(ui(page).action('Retry all matching…')).toBeEnabled();

    const forged = await request.post('/api/act_on_jobs', {
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      data: `action=delete&state=dead&ids[0]=${id}`,
    });
    expect(forged.status()).toBe(403);
    expect(await whereIs(id)).toBe('dead');
  });
});

test('without credentials the console asks for them', async ({ request }) => {
  const response = await request.get('/', { failOnStatusCode: false });
  expect(response.status()).toBe(401);
  expect(response.headers()['www-authenticate']).toContain('Basic');
});
