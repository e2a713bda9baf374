// A token's life end to end in the browser: sign in → Tokens → New Token → copy the secret once →
// close → it is gone → use it with curl → rotate it → revoke it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, startServer, strayText,
} from './harness.mjs';

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';
// Every scope with its description, word for word (`Scope::description`).
const SEED_SCOPES = [
  ['tokens:read', 'List and retrieve token metadata'],
  ['tokens:write', 'Create new tokens'],
  ['tokens:revoke', 'Permanently revoke a token'],
  ['tokens:rotate', 'Rotate the secret of an existing token'],
  ['audit:read', 'Read audit log entries'],
  ['webhooks:read', 'List and retrieve webhook configurations'],
  ['webhooks:write', 'Create and update webhook configurations'],
];

let server;
let browser;
before(async () => {
  // Last-used times are written every 100 ms, so the page can show them without waiting.
  server = await startServer({ env: { TOOKEN_USAGE_FLUSH_INTERVAL_MS: '100' } });
  browser = await launchBrowser();
  // Signing up and creating a workspace is the smoke test's; start from its end.
  await createOwner(server.url, EMAIL, PASSWORD, 'Production');
});
after(async () => {
  await browser?.close();
  await server?.stop();
  // Secrets are shown once to the person and never written to the server's log.
  const log = readFileSync(server.logPath, 'utf8');
  assert.ok(log.includes('token created'), 'the log is empty');
  assert.doesNotMatch(log, /tok_(live|sess)_[0-9A-Za-z]{36}/);
});

/** `curl -s -w '\n%{http_code}' -H 'Authorization: Bearer …' URL`: the body and the status. */
function curl(url, secret) {
  const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${secret}`, url],
    { encoding: 'utf8' });
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: JSON.parse(out.slice(0, cut)) };
}

test('seed 000: create a token, see its secret once, use it, rotate it, revoke it', async () => {
  const page = await newPage(browser);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });

  // 1. Log in. 2. Tokens in the sidebar.
  await signIn(page, server.url, EMAIL, PASSWORD);
  await page.waitForURL(`${server.url}/w/production/tokens`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await page.getByRole('heading', { level: 1, name: 'Tokens' }).waitFor();

  // 3. New Token. 4. Name, scopes with their descriptions, optional expiration.
  await page.getByRole('button', { name: 'New Token' }).click();
  const form = page.getByRole('dialog', { name: 'New Token' });
  await form.getByLabel('Name').fill('backend-prod');
  for (const [scope, description] of SEED_SCOPES) {
    const box = form.getByRole('checkbox', { name: new RegExp(`^${scope}`) });
    assert.equal(await box.count(), 1, scope);
    assert.match(await form.locator(`label[for="${await box.getAttribute('id')}"]`).textContent(),
      new RegExp(description));
  }
  await form.getByRole('checkbox', { name: /^tokens:read/ }).check();
  const expiry = form.getByLabel('Expiration date (optional)');
  assert.equal(await expiry.inputValue(), '');
  assert.match(await form.getByText(/workspace default/).textContent(), /expires after 90 days/);
  await screenshot(page, 'tokens-new-token-form');

  // 5. Create: the secret is shown exactly once, with a copy button and a warning.
  await form.getByRole('button', { name: 'Create' }).click();
  const shown = page.getByRole('dialog', { name: 'Token backend-prod created' });
  await shown.getByText('This is the only time the secret is shown.').waitFor();
  const secret = await shown.getByLabel('Token secret').inputValue();
  assert.match(secret, /^tok_live_[0-9A-Za-z]{36}$/);
  await shown.getByRole('button', { name: 'Copy' }).click();
  await shown.getByText('Copied to the clipboard.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await screenshot(page, 'tokens-secret-shown-once');
  await shown.getByRole('button', { name: /I have stored it/ }).click();

  // Closed, the secret is nowhere on the page, nor after a reload.
  await shown.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(secret), 'the secret stayed in the page');
  await page.reload();
  const row = page.getByRole('row', { name: /backend-prod/ });
  await row.waitFor();
  assert.ok(!(await page.content()).includes(secret), 'the secret came back after a reload');
  assert.ok((await row.textContent()).includes(secret.slice(0, 13)), 'the row shows the prefix');
  await row.getByText('Active').waitFor();
  await row.getByText('tokens:read').waitFor();
  await row.getByText('Never used').waitFor();
  assert.deepEqual(await strayText(page), []);

  // Use it with curl: tokens:read may list tokens.
  const used = curl(`${server.url}/v1/tokens`, secret);
  assert.equal(used.status, 200);
  assert.equal(used.body.data[0].name, 'backend-prod');
  // The list shows when it was last used once the server has recorded it.
  for (let attempt = 0; ; attempt += 1) {
    await page.reload();
    if (!(await page.getByRole('row', { name: /backend-prod/ }).textContent()).includes('Never used')) break;
    assert.ok(attempt < 50, 'last used never appeared');
    await page.waitForTimeout(100);
  }
  await screenshot(page, 'tokens');

  // Rotate with a grace period: the new secret is shown once; both work during the grace.
  await page.getByRole('button', { name: 'Rotate backend-prod' }).click();
  const rotate = page.getByRole('dialog', { name: 'Rotate backend-prod?' });
  await rotate.getByLabel('Grace period for the old secret').selectOption({ label: '1 hour' });
  await rotate.getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = page.getByRole('dialog', { name: 'New secret for backend-prod' });
  const newSecret = await rotated.getByLabel('Token secret').inputValue();
  assert.notEqual(newSecret, secret);
  await rotated.getByText(/The previous secret works until/).waitFor();
  await rotated.getByRole('button', { name: /I have stored it/ }).click();
  assert.equal(curl(`${server.url}/v1/tokens`, secret).status, 200, 'the old secret works during the grace period');
  assert.equal(curl(`${server.url}/v1/tokens`, newSecret).status, 200);

  // Revoke, after a confirmation; cancelling first changes nothing.
  await page.getByRole('button', { name: 'Revoke backend-prod' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke backend-prod?' });
  await confirm.getByText(/cannot be undone/).waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(curl(`${server.url}/v1/tokens`, newSecret).status, 200, 'cancel revoked the token');
  await page.getByRole('button', { name: 'Revoke backend-prod' }).click();
  await page.getByRole('dialog', { name: 'Revoke backend-prod?' }).getByRole('button', { name: 'Revoke token' }).click();
  await page.getByRole('row', { name: /backend-prod/ }).getByText('Revoked').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Revoke backend-prod' }).count(), 0);
  for (const old of [secret, newSecret]) {
    const refused = curl(`${server.url}/v1/tokens`, old);
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body, { error: 'unauthorized', message: 'Invalid or missing API key' });
  }
  await screenshot(page, 'tokens-after-revoke');
  assertNoPageErrors(page);
  await page.context().close();
});

test('a bad expiration date is refused with the reason, and nothing is created', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, EMAIL, PASSWORD);
  await page.getByRole('button', { name: 'New Token' }).click();
  const form = page.getByRole('dialog', { name: 'New Token' });
  await form.getByLabel('Name').fill('too-late');
  await form.getByRole('checkbox', { name: /^tokens:read/ }).check();
  // The date picker's minimum is tomorrow; a typed past date still reaches the API's check.
  await form.getByLabel('Expiration date (optional)').evaluate((input) => {
    input.removeAttribute('min');
    input.value = '2020-01-01';
  });
  await form.getByRole('button', { name: 'Create' }).click();
  const alert = form.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /expires_at/);
  assert.equal(await form.getByLabel('Expiration date (optional)').getAttribute('aria-invalid'), 'true');
  await form.getByRole('button', { name: 'Cancel' }).click();
  await page.reload();
  await page.locator('main .list').locator('table, .empty').waitFor();
  assert.equal(await page.getByRole('row', { name: /too-late/ }).count(), 0);
  assertNoPageErrors(page);
  await page.context().close();
});
