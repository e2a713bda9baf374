// Confined tokens (issue 20): the token list shows which prefix a token is confined to and the
// labels that say what it serves.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, startServer, strayText,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const owner = await createOwner(server.url, 'owner@example.com', PASSWORD, 'Production');
  for (const body of [
    { name: 'plain', scopes: ['tokens:read'] },
    {
      name: 'k8s:dev/ci', name_prefix: 'k8s:dev/', scopes: ['tokens:read'],
      labels: { 'tooken.io/namespace': 'dev', 'tooken.io/tookentoken': 'ci' },
    },
  ]) {
    const created = await api(server.url, 'POST', '/v1/workspaces/production/tokens', { bearer: owner, body });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the token list shows a confined token\'s prefix and labels', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  await page.goto(`${server.url}/w/production/tokens`);
  const confined = page.getByRole('row', { name: /k8s:dev\/ci/ });
  await confined.waitFor();
  assert.match(await confined.textContent(), /Confined to k8s:dev\/…/);
  const labels = page.getByRole('list', { name: 'Labels of k8s:dev/ci' });
  assert.deepEqual(await labels.getByRole('listitem').allTextContents(),
    ['tooken.io/namespace=dev', 'tooken.io/tookentoken=ci']);
  // An unconfined, unlabelled token shows neither.
  const plain = page.getByRole('row', { name: /plain/ });
  assert.doesNotMatch(await plain.textContent(), /Confined/);
  assert.equal(await page.getByRole('list', { name: 'Labels of plain' }).count(), 0);
  assert.deepEqual(await strayText(page), []);
  await screenshot(page, 'tokens-confined');
  assertNoPageErrors(page);
  await page.context().close();
});
