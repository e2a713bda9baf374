// Usable with a keyboard and a screen reader, and readable at phone width (issue 8, item 3);
// a signed-out visitor is sent to sign in and brought back.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, assertNoPageErrors, createOwner, launchBrowser, newPage, screenshot, signIn, startServer,
  strayText, submitCredentials,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
const PAGES = ['tokens', 'webhooks', 'settings/general', 'settings/api-keys', 'settings/members', 'settings/audit-log'];

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const owner = await createOwner(server.url, 'owner@example.com', PASSWORD, 'Production');
  for (const name of ['payments-service-production-eu-west-1', 'ci']) {
    await api(server.url, 'POST', '/v1/workspaces/production/tokens',
      { bearer: owner, body: { name, scopes: ['tokens:read', 'tokens:write', 'audit:read', 'webhooks:read'] } });
  }  // As the operator issues it: confined to its namespace, labelled with what it serves.
  const confined = await api(server.url, 'POST', '/v1/workspaces/production/tokens', {
    bearer: owner,
    body: {
      name: 'k8s:dev/ci', name_prefix: 'k8s:dev/', scopes: ['tokens:read'],
      labels: { 'tooken.io/namespace': 'dev', 'tooken.io/tookentoken': 'ci' },
    },
  });
  assert.equal(confined.status, 201, JSON.stringify(confined.body));
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Form controls and buttons without an accessible name, described for the failure message. */
function unnamedControls(page) {
  return page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 120)));
}

test('a signed-out visitor signs in and comes back to the page they asked for', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/w/production/settings/members`);
  await page.waitForURL(/\/sign-in\?next=/);
  await submitCredentials(page, 'owner@example.com', PASSWORD, 'Sign in');
  await page.waitForURL(`${server.url}/w/production/settings/members`);

  // A wrong password is explained and keeps the person on the form.
  const other = await newPage(browser);
  await other.goto(`${server.url}/sign-in`);
  await other.getByLabel('Email', { exact: true }).fill('owner@example.com');
  await other.getByLabel('Password', { exact: true }).fill('not the password');
  await other.getByRole('button', { name: 'Sign in' }).click();
  assert.match(await other.getByRole('alert').textContent(), /email or password is incorrect/);
  assert.equal(new URL(other.url()).pathname, '/sign-in');
  assertNoPageErrors(page);
  await page.context().close();
  await other.context().close();
});

test('every control is labelled, dialogs work from the keyboard, the skip link lands on the page', async () => {
  const page = await newPage(browser);
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  for (const path of PAGES) {
    await page.goto(`${server.url}/w/production/${path}`);
    await page.locator('h1').waitFor();
    assert.deepEqual(await unnamedControls(page), [], `unlabelled controls on ${path}`);
    // After navigation the page heading has focus, so a screen reader announces it.
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1', path);
  }

  await page.goto(`${server.url}/w/production/tokens`);
  await page.locator('h1').waitFor();
  // The skip link comes first in the tab order and shows itself when focused.
  assert.equal(await page.evaluate(() => document.querySelector('a[href], button, input, select').textContent),
    'Skip to content');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await skip.focus();
  const box = await skip.boundingBox();
  assert.ok(box && box.x >= 0 && box.y >= 0, 'the focused skip link is off screen');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  assert.equal(new URL(page.url()).pathname, '/w/production/tokens');

  // New Token opens from the keyboard with focus on its first field; Escape closes it and
  // gives focus back to the button.
  await page.getByRole('button', { name: 'New Token' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'New Token' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'name');
  assert.deepEqual(await unnamedControls(page), []);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'New Token');
  assertNoPageErrors(page);
  await page.context().close();
});

test('every page fits a phone screen without sideways scrolling', async () => {
  const page = await newPage(browser, { viewport: { width: 390, height: 844 } });
  await signIn(page, server.url, 'owner@example.com', PASSWORD);
  for (const path of PAGES) {
    await page.goto(`${server.url}/w/production/${path}`);
    await page.locator('h1').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} is ${overflow}px wider than the screen`);
  }
  await page.goto(`${server.url}/w/production/tokens`);
  await page.locator('h1').waitFor();
  await screenshot(page, 'phone-tokens');
  await page.getByRole('button', { name: 'New Token' }).click();
  await screenshot(page, 'phone-new-token');
  assertNoPageErrors(page);
  await page.context().close();
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
  const plain = page.getByRole('row', { name: /^ci / });
  assert.doesNotMatch(await plain.textContent(), /Confined/);
  assert.equal(await page.getByRole('list', { name: 'Labels of ci' }).count(), 0);
  assert.deepEqual(await strayText(page), []);
  await screenshot(page, 'tokens-confined');
  assertNoPageErrors(page);
  await page.context().close();
});
