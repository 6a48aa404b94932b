// The console behind an authenticating proxy (see playwright.config.ts): it believes sign-in
// headers from 127.0.0.1, so here the browser itself sends what the proxy would.
import { proxiedURL } from '../playwright.config';
import { act, expect, openDeadLetters, test, ui } from './fixtures/console';
import { insertDeadJobs, marker, welcomeEmail, whereIs } from './fixtures/db';

test.use({ baseURL: proxiedURL });

/** The headers the proxy sets for a signed-in user. */
function proxySignIn(user: string, email: string, groups: string) {
  return { 'X-Forwarded-User': user, 'X-Forwarded-Email': email, 'X-Forwarded-Groups': groups };
}

test.describe('a viewer signed in by the proxy', () => {
  test.use({ extraHTTPHeaders: proxySignIn('vera', 'vera@example.com', 'staff') });

  test('sees their name and role, and no action', async ({ page }) => {
    const mark = marker('sso-viewer');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
    await openDeadLetters(page, { mark });
    await expect(ui(page).user).toHaveText('vera@example.com · viewer');
    await expect(ui(page).row(id)).toBeVisible();
    await expect(ui(page).readOnly).toBeVisible();
    await expect(ui(page).toolbar).toHaveCount(0);
  });
});

test.describe('an operator signed in by the proxy', () => {
  test.use({ extraHTTPHeaders: proxySignIn('4711', 'otto@example.com', 'staff, ops') });

  test('sees their name and role, and can retry a job', async ({ page }) => {
    const mark = marker('sso-operator');
    const [id] = await insertDeadJobs([welcomeEmail(mark, { mark })]);
    await openDeadLetters(page, { mark });
    await expect(ui(page).user).toHaveText('otto@example.com · operator');
    await act(page, 'Retry all matching…', true);
    await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
    expect(await whereIs(id)).not.toBe('dead');
  });
});

test('in none of the mapped groups, the proxy user is refused, saying why', async ({ request }) => {
  const response = await request.get('/', {
    headers: proxySignIn('mallory', 'mallory@example.com', 'contractors'),
    failOnStatusCode: false,
  });
  expect(response.status()).toBe(403);
  expect(await response.text()).toContain("in none of this console's groups");
});
