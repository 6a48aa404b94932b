// Dark mode and keyboard shortcuts.
import { expect, openConsole, test, ui } from './fixtures/console';
import { insertDeadJobs, marker, welcomeEmail } from './fixtures/db';

test('dark mode follows the system until switched, and the switch is remembered', async ({ page }) => {
  const html = page.locator('html');
  const toggle = page.getByTestId('theme-toggle');
  const background = () => ui(page).body.evaluate((body) => getComputedStyle(body).backgroundColor);

  await page.emulateMedia({ colorScheme: 'dark' });
  await openConsole(page);
  await expect(html).toHaveClass(/\bdark\b/);
  await expect(toggle).toHaveText('Theme: system');
  const dark = await background();

  await toggle.click(); // system -> light
  await expect(toggle).toHaveText('Theme: light');
  await expect(html).not.toHaveClass(/\bdark\b/);
  expect(await background()).not.toBe(dark);

  await page.reload(); // the choice survives a reload, even with the system dark
  await expect(ui(page).body).toHaveAttribute('data-hydrated', 'true');
  await expect(html).not.toHaveClass(/\bdark\b/);
  await expect(toggle).toHaveText('Theme: light');

  await toggle.click(); // light -> dark
  await expect(html).toHaveClass(/\bdark\b/);
  expect(await background()).toBe(dark);
  await toggle.click(); // dark -> system (dark here)
  await expect(toggle).toHaveText('Theme: system');
  await expect(html).toHaveClass(/\bdark\b/);
});

test('keyboard: ? shows help, g d goes to dead letters, j/k move, / jumps to a job', async ({ page }) => {
  const mark = marker('keys');
  const ids = await insertDeadJobs([welcomeEmail(`${mark}-1`, { mark }), welcomeEmail(`${mark}-2`, { mark })]);
  await openConsole(page);

  await page.keyboard.press('?');
  await expect(page.getByRole('dialog', { name: 'Keyboard shortcuts' })).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(page.getByRole('dialog', { name: 'Keyboard shortcuts' })).toHaveCount(0);

  await page.keyboard.press('g');
  await page.keyboard.press('d');
  await expect(page).toHaveURL('/dead-letters');

  await page.goto(`/dead-letters?payload=${encodeURIComponent(JSON.stringify({ mark }))}`);
  await expect(ui(page).body).toHaveAttribute('data-hydrated', 'true');
  await expect(ui(page).rows).toHaveCount(2);
  const newest = Math.max(...ids);
  const older = Math.min(...ids);
  await page.keyboard.press('j');
  await expect(ui(page).row(newest).getByRole('link', { name: `#${newest}` })).toBeFocused();
  await page.keyboard.press('j');
  await expect(ui(page).row(older).getByRole('link', { name: `#${older}` })).toBeFocused();
  await page.keyboard.press('k');
  await expect(ui(page).row(newest).getByRole('link', { name: `#${newest}` })).toBeFocused();

  await page.keyboard.press('/');
  await expect(page.locator('#jump')).toBeFocused();
  await page.keyboard.type(String(older));
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(`/jobs/${older}`);
  await expect(ui(page).heading).toHaveText(`Job #${older}`);
});
