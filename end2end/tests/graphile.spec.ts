// Beside graphile-worker: the real graphile-worker (npm) works the test database; the console
// lists its permanently failed job, retries it through graphile-worker's own function, and
// graphile-worker runs it again (the task now succeeds, and graphile-worker deletes the row).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { signedInURL, slackURL } from '../playwright.config';
import { act, expect, openConsole, test, ui } from './fixtures/console';
import { addGraphileJob, graphileHistoryRead, graphileJob, randomWord, sql } from './fixtures/db';

test.use({ baseURL: signedInURL, httpCredentials: { username: 'otto', password: 'o-pass' } });

let worker: ChildProcess | undefined;

test.beforeAll(async () => {
  worker = spawn('node', [path.resolve(__dirname, '../../queue/tests/graphile-worker.mjs')], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // It migrates graphile_worker's schema, then says so.
  await new Promise<void>((resolve, reject) => {
    worker!.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    worker!.on('exit', (code) => reject(new Error(`graphile-worker exited with ${code}`)));
  });
  await sql('create table if not exists public.gw_fixed (name text primary key)');
  // Failures from before the console first read graphile-worker's table are history, not
  // alerted: the job this test fails must come after that first read.
  await expect.poll(graphileHistoryRead, { timeout: 30_000 }).toBe(true);
});

test.afterAll(() => {
  worker?.kill();
});

test('a graphile-worker job that failed for good is found, alerted, retried and run again', async ({ page }) => {
  const word = randomWord();
  const id = await addGraphileJob('until_fixed', { name: word }, 1);
  await expect.poll(async () => (await graphileJob(id))?.attempts, { timeout: 30_000 }).toBe(1);

  await openConsole(page, '/dead-letters?source=graphile_worker');
  await expect(ui(page).row(id)).toContainText(`not fixed yet: ${word}`);
  await expect(ui(page).row(id)).toContainText('until_fixed');
  await ui(page).row(id).getByRole('link', { name: `#${id}` }).click();
  await expect(page).toHaveURL(`/jobs/${id}?source=graphile_worker`);
  await expect(ui(page).state).toHaveText('Dead');
  await expect(ui(page).payload).toContainText(`"name": "${word}"`);

  // The console's poller grouped the failure, and Slack heard about it once.
  await expect
    .poll(async () => {
      const received = (await (await fetch(`${slackURL}/received`)).json()) as { body: { text: string } }[];
      return received.filter((r) => r.body.text?.includes(`not fixed yet: ${word}`)).length;
    }, { timeout: 30_000 })
    .toBe(1);

  await sql('insert into public.gw_fixed values ($1)', [word]);
  await act(page, 'Retry', false);
  await expect(ui(page).report).toHaveText('Retried 1 of 1 job.');
  await expect(ui(page).jobGone).toBeVisible({ timeout: 20_000 });
  expect(await graphileJob(id)).toBeNull();
});
