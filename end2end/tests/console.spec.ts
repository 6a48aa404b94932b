import {
  expect,
  expectCurrentSection,
  expectLiveUpdates,
  expectServerRenderedOverview,
  expectServerStatus,
  expectTailwindStyles,
  openConsole,
  refreshServerStatus,
  test,
  toggleLiveUpdates,
  ui,
} from './fixtures/console';

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
  await toggleLiveUpdates(page);
  await expectLiveUpdates(page, false);
  await toggleLiveUpdates(page);
  await expectLiveUpdates(page, true);
});

test('refresh calls the console_status server function from the browser', async ({ page }) => {
  await openConsole(page);
  await expect(ui(page).serverVersion).toHaveText(/^\d+\.\d+\.\d+/);
  const status = await refreshServerStatus(page);
  expect(status.server_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await expectServerStatus(page, status);
});

test('the navigation routes in the browser and marks the current section', async ({ page }) => {
  await openConsole(page);
  await expectCurrentSection(page, 'Overview');
  await ui(page).navLink('Dead letters').click();
  await expect(page).toHaveURL('/dead-letters');
  await expectCurrentSection(page, 'Dead letters');
  await expect(page).toHaveTitle('Dead letters · Backstop');
});
