// Helpers for the dashboard's browser tests: a real tooken-server on a fresh database, Debian's
// headless Chromium driven by playwright-core, screenshots, and a small REST client.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { finished } from 'node:stream/promises';
import { basename, join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;

/** Where screenshots and server logs go; CI keeps this folder. */
export const artifactsDir = resolve(
  process.env.TOOKEN_DASHBOARD_ARTIFACTS ?? join(here, '../../../target/dashboard-artifacts'));
mkdirSync(artifactsDir, { recursive: true });

export const chromiumPath = process.env.TOOKEN_CHROMIUM ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps dialling Google, which this
// sandbox refuses; QUIC is off for the same reason.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

const testFile = basename(process.argv[1] ?? 'test', '.mjs');
let servers = 0;
const running = new Map(); // child → its temp dir
// A test that failed before stop() must not leave a server or its database behind.
process.on('exit', () => {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Starts `TOOKEN_SERVER_BIN` on a fresh SQLite database and a port the OS picks, and waits
 * until `/readyz` answers. `env` adds or overrides server settings (`TOOKEN_SIGNUP`, …).
 * Its stderr goes to `<artifacts>/server-<test file>-<n>.log`.
 */
export async function startServer({ env = {}, timeoutMs = 30_000 } = {}) {
  const bin = process.env.TOOKEN_SERVER_BIN;
  assert.ok(bin, 'TOOKEN_SERVER_BIN must name the tooken-server binary (cargo test sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'tooken-dashboard-'));
  const logPath = join(artifactsDir, `server-${testFile}-${++servers}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(bin, [], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${join(dir, 'tooken.db')}`,
      // Port 0: no race with other programs for a "free" port; the log says which one it got.
      TOOKEN_LISTEN: '127.0.0.1:0',
      TOOKEN_LOG_FORMAT: 'json',
      // The webhook test's receiver listens on loopback, which deliveries reach only if allowed.
      TOOKEN_WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8,::1',
      ...env,
    },
  });
  running.set(child, dir);
  let spawnError; // such as ENOENT for a wrong TOOKEN_SERVER_BIN; 'close' follows it
  child.once('error', (err) => { spawnError = err; });
  // 'close', not 'exit': by then all of stderr is in the log.
  const exited = new Promise((done) => child.once('close', (code, signal) => {
    running.delete(child);
    done({ code, signal });
  }));
  child.stderr.pipe(log);

  let stopping;
  const stop = () => (stopping ??= (async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    await finished(log); // the pipe ends the log when stderr closes
    rmSync(dir, { recursive: true, force: true });
  })());

  try {
    const address = await new Promise((found, failed) => {
      let buffered = '';
      const timer = setTimeout(() => failed(new Error(`no "listening" line within ${timeoutMs} ms`)), timeoutMs);
      child.stderr.on('data', (chunk) => {
        buffered += chunk;
        for (let end; (end = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(end + 1)) {
          let line;
          try { line = JSON.parse(buffered.slice(0, end)); } catch { continue; }
          if (line.message === 'listening' && line.address) {
            clearTimeout(timer);
            found(line.address);
          }
        }
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        failed(spawnError ?? new Error(`tooken-server exited (${code ?? signal}) before listening`));
      });
    });
    const url = `http://${address}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`${url}/readyz not ready within ${timeoutMs} ms`);
      await new Promise((done) => setTimeout(done, 100));
    }
    return { url, logPath, stop };
  } catch (err) {
    await stop();
    throw new Error(`${err.message}; see ${logPath}`);
  }
}

/** Debian's Chromium, headless, with a fresh profile (playwright makes the user-data-dir). */
export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A page in its own browser context (own cookies). `page.errors` collects uncaught page
 * errors and CSP violations, which tests must not have (`assertNoPageErrors`);
 * `page.consoleErrors` keeps every console error, such as the 401s of a signed-out visit.
 * Other options (`baseURL`, …) go to `browser.newContext`.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, ...options } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  page.errors = [];
  page.consoleErrors = [];
  page.on('pageerror', (err) => page.errors.push(`page error: ${err.stack ?? err.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error') page.consoleErrors.push(text);
    if (text.includes('Content Security Policy')) page.errors.push(`CSP violation: ${text}`);
  });
  return page;
}

export function assertNoPageErrors(page) {
  assert.deepEqual(page.errors, [], 'the page had uncaught errors or CSP violations');
}

/** Text nodes that are a stray `null`, `undefined` or `[object Object]` (a rendering slip). */
export function strayText(page) {
  return page.evaluate(() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    while (walker.nextNode()) {
      const text = walker.currentNode.textContent.trim();
      if (['null', 'undefined', '[object Object]', 'NaN'].includes(text)) found.push(text);
    }
    return found;
  });
}

/** Saves `<artifacts>/<name>.png` of the whole page; returns its path. */
export async function screenshot(page, name) {
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Fills the sign-in or sign-up form on the current page and submits it with `button`. */
export async function submitCredentials(page, email, password, button) {
  const from = new URL(page.url()).pathname;
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: button }).click();
  await page.waitForURL((address) => address.pathname !== from);
}

/** Creates an account through `/sign-up`; the page is signed in afterwards. */
export async function signUp(page, url, email, password) {
  await page.goto(`${url}/sign-up`);
  await submitCredentials(page, email, password, 'Create account');
}

/** Signs in through `/sign-in`. */
export async function signIn(page, url, email, password) {
  await page.goto(`${url}/sign-in`);
  await submitCredentials(page, email, password, 'Sign in');
}

/**
 * An account that owns a workspace, made through the REST API (the browser tests of sign-up
 * are elsewhere); returns its session secret for REST calls.
 */
export async function createOwner(url, email, password, workspaceName) {
  const account = await api(url, 'POST', '/v1/auth/signup', { body: { email, password } });
  assert.equal(account.status, 201, JSON.stringify(account.body));
  const workspace = await api(url, 'POST', '/v1/workspaces', { bearer: account.body.token, body: { name: workspaceName } });
  assert.equal(workspace.status, 201, JSON.stringify(workspace.body));
  return account.body.token;
}

/**
 * One REST call, as curl would make it: JSON `body`, `Authorization: Bearer <bearer>`.
 * Returns `{ status, headers, body }`, `body` parsed as JSON when it is JSON; never throws on
 * an HTTP error status, so tests can assert on it.
 */
export async function api(url, method, path, { bearer, body, headers = {} } = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed };
}
