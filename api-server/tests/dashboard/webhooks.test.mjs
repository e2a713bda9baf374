// Webhooks (README "Webhooks"): create an endpoint in the browser, see a real signed delivery
// in its log, redeliver it, edit it, rotate its secret, delete it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import {
  api, assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, startServer, strayText,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';

let server;
let browser;
let receiver;
const received = [];
let session;
before(async () => {
  receiver = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise((ready) => receiver.listen(0, '127.0.0.1', ready));
  server = await startServer({ env: { TOOKEN_WEBHOOK_RETRY_BASE_MS: '100' } });
  browser = await launchBrowser();
  session = await createOwner(server.url, 'owner@example.com', PASSWORD, 'Production');
});
after(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.close();
});

async function until(what, check) {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await check()) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('create a webhook, watch its delivery, redeliver, edit, rotate the secret, delete', async () => {
  const hook = `http://127.0.0.1:${receiver.address().port}/tooken`;
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('button', { name: 'New webhook' }).click();
  const form = page.getByRole('dialog', { name: 'New webhook' });
  await form.getByLabel('URL').fill(hook);
  await form.getByLabel('Description (optional)').fill('rollout <b>bot</b>');
  await form.getByRole('checkbox', { name: 'token.created' }).check();
  await form.getByRole('button', { name: 'Create webhook' }).click();
  const shown = page.getByRole('dialog', { name: 'Webhook created' });
  const secret = await shown.getByLabel('Signing secret').inputValue();
  assert.match(secret, /^whsec_/);
  await shown.getByRole('button', { name: /I have stored it/ }).click();
  await page.getByRole('link', { name: hook }).click();
  await page.getByRole('heading', { level: 1, name: 'Webhook' }).waitFor();
  await page.getByText('rollout <b>bot</b>').waitFor();

  // A token.created event reaches the receiver, signed with the secret shown once.
  const token = await api(server.url, 'POST', '/v1/workspaces/production/tokens',
    { bearer: session, body: { name: 'deploy-bot', scopes: ['tokens:read'] } });
  assert.equal(token.status, 201);
  await until('the first delivery', () => received.length >= 1);
  const first = received[0];
  const expected = `sha256=${createHmac('sha256', secret).update(first.body).digest('hex')}`;
  assert.equal(first.headers['x-tooken-signature'], expected);
  const event = JSON.parse(first.body);
  assert.equal(event.type, 'token.created');

  // The delivery log shows it delivered; Redeliver sends the same event again.
  await until('the log to show the delivery', async () => {
    await page.reload();
    // The page draws after its API calls; wait for the log (or its empty text) to be drawn.
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    await page.locator('section').filter({ has: page.getByRole('heading', { name: 'Deliveries' }) })
      .locator('table, .empty').waitFor();
    return (await page.getByRole('table', { name: 'Deliveries' }).getByText('delivered').count()) > 0;
  });
  await screenshot(page, 'webhook-detail');
  await page.getByRole('button', { name: /^Redeliver token\.created delivery/ }).click();
  await until('the redelivery', () => received.length >= 2);
  assert.equal(JSON.parse(received[1].body).id, event.id);

  // Edit: subscribe to revocations too.
  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit webhook' });
  await edit.getByRole('checkbox', { name: 'token.revoked' }).check();
  await edit.getByRole('button', { name: 'Save' }).click();
  await page.locator('dl.detail').getByText('token.revoked').waitFor();
  const saved = await api(server.url, 'GET', '/v1/workspaces/production/webhooks', { bearer: session });
  assert.deepEqual([...saved.body.data[0].event_types].sort(), ['token.created', 'token.revoked']);

  // Rotate the signing secret: the new one is shown once.
  await page.getByRole('button', { name: 'Rotate signing secret' }).click();
  await page.getByRole('dialog', { name: 'Rotate the signing secret?' }).getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = page.getByRole('dialog', { name: 'New signing secret' });
  assert.notEqual(await rotated.getByLabel('Signing secret').inputValue(), secret);
  await rotated.getByRole('button', { name: /I have stored it/ }).click();

  // Delete, after confirming; the list is empty again.
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete this webhook?' }).getByRole('button', { name: 'Delete webhook' }).click();
  await page.waitForURL(`${server.url}/w/production/webhooks`);
  await page.getByText('No webhooks yet.', { exact: false }).waitFor();
  const left = await api(server.url, 'GET', '/v1/workspaces/production/webhooks', { bearer: session });
  assert.deepEqual(left.body.data, []);
  await screenshot(page, 'webhooks');
  assert.deepEqual(await strayText(page), []);
  assertNoPageErrors(page);
  await page.context().close();
});
