// Members and roles (README "People, workspaces, members and the audit log"): an Owner invites
// a Viewer from Settings → Members, the Viewer accepts in the browser and sees read-only pages;
// user strings are shown, never run.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, signUp, startServer, strayText,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
// A token name that would run script if the page ever parsed it as HTML.
const HOSTILE = '<img src=x onerror="window.__pwned=1">';

let server;
let browser;
let owner;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  owner = await createOwner(server.url, 'owner@example.com', PASSWORD, 'Production');
  const token = await api(server.url, 'POST', '/v1/workspaces/production/tokens',
    { bearer: owner, body: { name: HOSTILE, scopes: ['tokens:read'] } });
  assert.equal(token.status, 201);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('an Owner invites a Viewer, who sees read-only pages', async () => {
  const ownerPage = await newPage(browser);
  await signIn(ownerPage, server.url, 'owner@example.com', PASSWORD);
  await ownerPage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await ownerPage.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Members' }).click();
  await ownerPage.waitForURL(`${server.url}/w/production/settings/members`);

  // Invite an Admin by mistake, then correct the role and invite the Viewer.
  for (const [email, role] of [['viewer@example.com', 'Admin'], ['temp@example.com', 'Viewer']]) {
    await ownerPage.getByLabel('Email address').fill(email);
    await ownerPage.getByLabel('Role', { exact: true }).selectOption({ label: role });
    await ownerPage.getByRole('button', { name: 'Send invitation' }).click();
    await ownerPage.getByRole('row', { name: new RegExp(email) }).waitFor();
  }
  await ownerPage.getByLabel('Role of viewer@example.com').selectOption('viewer');
  await ownerPage.getByRole('status').filter({ hasText: 'viewer@example.com is now viewer.' }).waitFor({ state: 'attached' });
  // Remove the other invitation, after confirming.
  await ownerPage.getByRole('button', { name: 'Remove temp@example.com' }).click();
  await ownerPage.getByRole('dialog', { name: 'Remove temp@example.com?' }).getByRole('button', { name: 'Remove member' }).click();
  await ownerPage.getByRole('row', { name: /temp@example\.com/ }).waitFor({ state: 'detached' });
  const members = await api(server.url, 'GET', '/v1/workspaces/production/members', { bearer: owner });
  assert.deepEqual(members.body.data.map((m) => [m.email, m.role, m.status]).sort(), [
    ['owner@example.com', 'owner', 'active'],
    ['viewer@example.com', 'viewer', 'invited'],
  ]);
  await screenshot(ownerPage, 'settings-members');
  assertNoPageErrors(ownerPage);

  // The Viewer signs up with the invited address and accepts.
  const viewer = await newPage(browser);
  await signUp(viewer, server.url, 'viewer@example.com', PASSWORD);
  await viewer.waitForURL(`${server.url}/workspaces/new`);
  await viewer.getByText('Production (production) invites you as viewer.').waitFor();
  await viewer.getByRole('button', { name: 'Join Production' }).click();
  await viewer.waitForURL(`${server.url}/w/production/tokens`);

  // Tokens: readable, with no write buttons; the hostile name is plain text.
  const row = viewer.getByRole('row', { name: /img src=x/ });
  await row.waitFor();
  assert.equal(await row.locator('th .name').textContent(), HOSTILE);
  assert.equal(await viewer.locator('main img').count(), 0, 'a user string became an element');
  assert.equal(await viewer.evaluate(() => window.__pwned), undefined);
  assert.equal(await viewer.getByRole('button', { name: 'New Token' }).count(), 0);
  assert.equal(await viewer.getByRole('button', { name: /^(Rotate|Revoke) / }).count(), 0);
  await screenshot(viewer, 'viewer-tokens');

  // Webhooks: readable, nothing to add.
  await viewer.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await viewer.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
  assert.equal(await viewer.getByRole('button', { name: 'New webhook' }).count(), 0);

  // Settings: only their own API keys; no General, Members or Audit Log, even by address.
  await viewer.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await viewer.getByRole('heading', { level: 1, name: 'Settings: API Keys' }).waitFor();
  const tabs = viewer.getByRole('navigation', { name: 'Settings' }).getByRole('link');
  assert.deepEqual(await tabs.allTextContents(), ['API Keys']);
  for (const tab of ['general', 'members', 'audit-log']) {
    await viewer.goto(`${server.url}/w/production/settings/${tab}`);
    await viewer.waitForURL(`${server.url}/w/production/settings/api-keys`);
    await viewer.getByRole('heading', { level: 1, name: 'Settings: API Keys' }).waitFor();
  }
  await screenshot(viewer, 'viewer-settings');

  // The Viewer may hold a personal key, never a team key.
  await viewer.getByRole('button', { name: 'New API Key' }).click();
  const form = viewer.getByRole('dialog', { name: 'New API Key' });
  await form.getByLabel('Name').waitFor();
  assert.equal(await form.getByRole('radio').count(), 0);
  await form.getByLabel('Name').fill('viewer-laptop');
  await form.getByRole('button', { name: 'Generate' }).click();
  const shown = viewer.getByRole('dialog', { name: 'API key viewer-laptop created' });
  const key = await shown.getByLabel('API key').inputValue();
  await shown.getByRole('button', { name: /I have stored it/ }).click();
  const read = await api(server.url, 'GET', '/v1/tokens', { bearer: key });
  assert.equal(read.status, 200, 'the personal key reads');
  const write = await api(server.url, 'POST', '/v1/tokens', { bearer: key, body: { name: 'x', scopes: ['tokens:read'] } });
  assert.equal(write.status, 403, 'and acts with the Viewer role');

  assert.deepEqual(await strayText(viewer), []);
  assertNoPageErrors(viewer);
  await viewer.context().close();
  await ownerPage.context().close();
});

test('a person in two workspaces switches between them', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await page.getByLabel('Workspace', { exact: true }).selectOption({ label: 'New workspace…' });
  await page.waitForURL(`${server.url}/workspaces/new`);
  await page.getByLabel('Workspace name').fill('Staging');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.waitForURL(`${server.url}/w/staging/tokens`);
  await page.getByText('No tokens yet.', { exact: false }).waitFor();
  await page.getByLabel('Workspace', { exact: true }).selectOption({ label: 'Production' });
  await page.waitForURL(`${server.url}/w/production/tokens`);
  await page.getByRole('row', { name: /img src=x/ }).waitFor();
  assertNoPageErrors(page);
  await page.context().close();
});

test('an Admin manages tokens and reads the audit log, but changes no settings', async () => {
  const invited = await api(server.url, 'POST', '/v1/workspaces/production/members',
    { bearer: owner, body: { email: 'admin@example.com', role: 'admin' } });
  assert.equal(invited.status, 201);
  const page = await newPage(browser);
  await signUp(page, server.url, 'admin@example.com', PASSWORD);
  await page.getByRole('button', { name: 'Join Production' }).click();
  await page.waitForURL(`${server.url}/w/production/tokens`);
  await page.getByRole('button', { name: 'New Token' }).waitFor();
  await page.getByRole('button', { name: /^Revoke / }).first().waitFor();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { level: 1, name: 'Settings: API Keys' }).waitFor();
  const tabs = page.getByRole('navigation', { name: 'Settings' }).getByRole('link');
  assert.deepEqual(await tabs.allTextContents(), ['API Keys', 'Audit Log']);
  await tabs.filter({ hasText: 'Audit Log' }).click();
  await page.getByRole('table', { name: 'Audit log' }).getByText('member.joined').first().waitFor();
  for (const tab of ['general', 'members']) {
    await page.goto(`${server.url}/w/production/settings/${tab}`);
    await page.waitForURL(`${server.url}/w/production/settings/api-keys`);
  }
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'New webhook' }).count(), 0);
  assertNoPageErrors(page);
  await page.context().close();
});
