// Navigation and the session, for the pages and for app.js: going to an address, drawing the
// page it names, and who is signed in. It imports no page: app.js hands it the route table
// (`start(route)`), so pages can import it without a cycle.

import { api, setCsrfToken, whenSignedOut } from './api.js';
import { h } from './dom.js';

const app = document.getElementById('app');
let me = null;
// Set by `start`: the element (or nothing, after a redirect) the address names.
let route = async () => null;

/** Who is signed in, as `/v1/auth/me` last said; `null` before that or after signing out. */
export function currentMe() {
  return me;
}

/** Goes to `path` inside the dashboard without reloading. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

/** Reloads who is signed in (after creating or joining a workspace, say). */
export async function refreshMe() {
  me = await api('GET', '/v1/auth/me');
  setCsrfToken(me.csrf_token ?? null);
  return me;
}

export function signedIn(session) {
  setCsrfToken(session.csrf_token);
}

export async function signOut() {
  await api('POST', '/v1/auth/signout').catch(() => {});
  me = null;
  setCsrfToken(null);
  navigate('/sign-in');
}

whenSignedOut(() => {
  if (me) {
    me = null;
    navigate(`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
  }
});

let renders = 0;
// The address the page on screen was drawn for.
let shown = '';

async function render() {
  // Only the latest navigation may draw; an earlier, slower one is dropped.
  const generation = ++renders;
  shown = location.pathname + location.search;
  app.setAttribute('aria-busy', 'true');
  let content;
  try {
    content = await route(location.pathname);
  } catch (err) {
    content = h('main', { id: 'main', class: 'centered' },
      h('h1', { tabindex: '-1', id: 'page-title' }, 'Something went wrong'),
      h('p', { role: 'alert' }, err.message),
      h('p', null, h('a', { href: location.pathname }, 'Try again')));
  }
  if (content && generation === renders) {
    app.replaceChildren(content);
    app.setAttribute('aria-busy', 'false');
    document.getElementById('page-title')?.focus();
  }
}

/** Re-renders the current page, e.g. after a change. */
export const reload = render;

/**
 * Draws the page the address names with `routeTo(path)`, now and after every navigation:
 * same-origin links and the browser's back and forward buttons stay inside the dashboard.
 */
export function start(routeTo) {
  route = routeTo;
  // Same-origin links navigate inside the dashboard; downloads and /v1 links go to the server.
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[href]');
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
      || event.shiftKey || link.hasAttribute('download') || link.target
      || link.getAttribute('href').startsWith('#')) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/v1/')) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  // A fragment link (the skip link) also fires popstate; only a new address redraws the page.
  window.addEventListener('popstate', () => {
    if (location.pathname + location.search !== shown) render();
  });
  render();
}
