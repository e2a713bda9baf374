// The first minutes of a new user: sign up, create a workspace, land on its tokens.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoPageErrors, launchBrowser, newPage, screenshot, signUp, startServer, strayText,
} from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('sign up, create a workspace, land on its tokens', async () => {
  const page = await newPage(browser);
  await signUp(page, server.url, 'ada@example.com', 'correct horse battery');
  await page.waitForURL(`${server.url}/workspaces/new`);
  await screenshot(page, 'smoke-new-workspace');

  await page.getByLabel('Workspace name', { exact: true }).fill('Production');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.waitForURL(`${server.url}/w/production/tokens`);
  await page.getByRole('heading', { level: 1, name: 'Tokens' }).waitFor();
  assert.deepEqual(await strayText(page), []);
  await screenshot(page, 'smoke-tokens');

  // The page itself carries the CSP that keeps scripts to this origin.
  const response = await page.goto(`${server.url}/`);
  assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  await page.waitForURL(`${server.url}/w/production/tokens`);

  const cookies = await page.context().cookies();
  const session = cookies.find((cookie) => cookie.name === 'tooken_session');
  assert.ok(session, `no tooken_session cookie among ${cookies.map((c) => c.name)}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  assertNoPageErrors(page);
  await page.context().close();
});
