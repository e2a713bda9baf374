// Settings (README "The dashboard"): General with the time zone every page then uses, API keys
// created, regenerated and deleted, and the audit log with filters and its CSV export.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  api, assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, startServer, strayText,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await createOwner(server.url, 'owner@example.com', PASSWORD, 'Production');
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openSettings(page, tab) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: tab }).click();
  await page.getByRole('heading', { level: 1, name: `Settings: ${tab}` }).waitFor();
}

test('General: rename, move the slug, and show every time in the workspace time zone', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await openSettings(page, 'General');
  await page.getByLabel('Workspace name').fill('Production EU');
  await page.getByLabel('Slug').fill('prod-eu');
  await page.getByLabel('Timezone').selectOption('Asia/Tokyo');
  await page.getByLabel('New tokens never expire by default').check();
  await page.getByLabel('Audit log retention (days)').fill('365');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL(`${server.url}/w/prod-eu/settings/general`);
  await page.getByRole('heading', { level: 1, name: 'Settings: General' }).waitFor();
  assert.equal(await page.getByLabel('Timezone').inputValue(), 'Asia/Tokyo');
  assert.equal(await page.getByLabel('Workspace name').inputValue(), 'Production EU');
  assert.equal(await page.getByLabel('Default expiration (days)').isDisabled(), true);
  await screenshot(page, 'settings-general');

  // The API agrees, and the switcher shows the new name.
  const session = (await api(server.url, 'POST', '/v1/auth/signin', { body: { email: 'owner@example.com', password: PASSWORD } })).body.token;
  const workspace = (await api(server.url, 'GET', '/v1/workspaces/prod-eu/workspace', { bearer: session })).body;
  assert.equal(workspace.timezone, 'Asia/Tokyo');
  assert.equal(workspace.default_token_expiry_days, null);
  assert.equal(workspace.audit_retention_days, 365);
  assert.match(await page.getByLabel('Workspace', { exact: true }).locator('option:checked').textContent(), /Production EU/);

  // An out-of-range value is refused with the API's reason next to the field.
  await page.getByLabel('Audit log retention (days)').evaluate((input) => input.removeAttribute('max'));
  await page.getByLabel('Audit log retention (days)').fill('9999');
  await page.getByRole('button', { name: 'Save changes' }).click();
  assert.match(await page.getByRole('alert').textContent(), /audit_retention_days/);
  assert.equal(await page.getByLabel('Audit log retention (days)').getAttribute('aria-invalid'), 'true');

  // Tokens now show Tokyo time (UTC+9) and the default "never expires".
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await page.getByRole('button', { name: 'New Token' }).click();
  const form = page.getByRole('dialog', { name: 'New Token' });
  assert.match(await form.getByText(/workspace default/).textContent(), /never expires/);
  await form.getByLabel('Name').fill('tz-check');
  await form.getByRole('checkbox', { name: /^tokens:read/ }).check();
  await form.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('dialog', { name: 'Token tz-check created' }).getByRole('button', { name: /I have stored it/ }).click();
  const created = page.getByRole('row', { name: /tz-check/ }).locator('time').first();
  const iso = await created.getAttribute('datetime');
  const expected = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
  const shown = await created.textContent();
  assert.match(shown, /GMT\+9/, shown);
  assert.ok(shown.includes(expected), `${shown} is not Tokyo time ${expected}`);
  assertNoPageErrors(page);
  await page.context().close();
});

test('API keys: create a team key, regenerate it, delete it; each step takes effect at once', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await openSettings(page, 'API Keys');
  await page.getByRole('button', { name: 'New API Key' }).click();
  const form = page.getByRole('dialog', { name: 'New API Key' });
  await form.getByLabel('Name').fill('ci-pipeline');
  await form.getByRole('radio', { name: /^Team/ }).check();
  await form.getByRole('button', { name: 'Generate' }).click();
  const shown = page.getByRole('dialog', { name: 'API key ci-pipeline created' });
  const key = await shown.getByLabel('API key').inputValue();
  assert.match(key, /^tok_live_/);
  await shown.getByRole('button', { name: /I have stored it/ }).click();
  assert.equal((await api(server.url, 'GET', '/v1/tokens', { bearer: key })).status, 200);
  await page.getByRole('row', { name: /ci-pipeline/ }).getByText('Team').waitFor();
  await screenshot(page, 'settings-api-keys');

  await page.getByRole('button', { name: 'Regenerate ci-pipeline' }).click();
  await page.getByRole('dialog', { name: 'Regenerate ci-pipeline?' }).getByRole('button', { name: 'Regenerate key' }).click();
  const again = page.getByRole('dialog', { name: 'New value for ci-pipeline' });
  const regenerated = await again.getByLabel('API key').inputValue();
  await again.getByRole('button', { name: /I have stored it/ }).click();
  assert.equal((await api(server.url, 'GET', '/v1/tokens', { bearer: key })).status, 401, 'the old value still works');
  assert.equal((await api(server.url, 'GET', '/v1/tokens', { bearer: regenerated })).status, 200);

  await page.getByRole('button', { name: 'Delete ci-pipeline' }).click();
  await page.getByRole('dialog', { name: 'Delete ci-pipeline?' }).getByRole('button', { name: 'Delete key' }).click();
  await page.getByRole('row', { name: /ci-pipeline/ }).waitFor({ state: 'detached' });
  assert.equal((await api(server.url, 'GET', '/v1/tokens', { bearer: regenerated })).status, 401);
  assertNoPageErrors(page);
  await page.context().close();
});

test('Audit Log: filter by event type, page through, and export a date range as CSV', async () => {
  const session = (await api(server.url, 'POST', '/v1/auth/signin', { body: { email: 'owner@example.com', password: PASSWORD } })).body.token;
  // Enough events for more than one page (the page asks for 50 at a time).
  for (let i = 0; i < 55; i += 1) {
    const made = await api(server.url, 'POST', '/v1/workspaces/prod-eu/tokens',
      { bearer: session, body: { name: `batch-${i}`, scopes: ['tokens:read'] } });
    assert.equal(made.status, 201);
  }
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await openSettings(page, 'Audit Log');
  const rows = page.getByRole('table', { name: 'Audit log' }).locator('tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 50);
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.waitForFunction(() => document.querySelectorAll('main tbody tr').length > 50);
  const total = await rows.count();
  assert.ok(total > 55, `only ${total} events`);

  await page.getByLabel('Event type').selectOption('workspace.settings_changed');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/type=workspace\.settings_changed/);
  await page.waitForFunction(() => document.querySelectorAll('main tbody tr').length < 5);
  const types = await page.getByRole('table', { name: 'Audit log' }).locator('tbody tr td:nth-child(2)').allTextContents();
  assert.ok(types.length >= 1);
  assert.ok(types.every((type) => type === 'workspace.settings_changed'), types.join());
  // The filter survives a reload.
  await page.reload();
  assert.equal(await page.getByLabel('Event type').inputValue(), 'workspace.settings_changed');
  await screenshot(page, 'settings-audit-log');

  // Export today's events (in the workspace's zone) as CSV.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export CSV' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^tooken-audit-prod-eu-\d{8}-\d{8}\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.ok(csv.startsWith('\ufefftime,time_utc,type,'), csv.slice(0, 80));
  const lines = csv.trim().split(/\r?\n/);
  assert.ok(lines.length > 57, `${lines.length} lines`);
  assert.ok(lines.some((line) => line.includes(',token.created,')));
  assert.ok(lines.some((line) => line.includes(',workspace.settings_changed,')));
  // Times are in the workspace's zone, Asia/Tokyo.
  assert.match(lines[1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+09:00,/);

  // A reversed range is explained, and the link stops downloading.
  await page.getByLabel('Export from').fill('2030-01-02');
  await page.getByLabel('Export to').fill('2030-01-01');
  await page.getByRole('alert').filter({ hasText: /on or before|after/ }).waitFor();
  assert.equal(await page.locator('a', { hasText: 'Export CSV' }).getAttribute('href'), null);
  assert.deepEqual(await strayText(page), []);
  assertNoPageErrors(page);
  await page.context().close();
});
