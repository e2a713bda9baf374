// The dashboard's entry point: who is signed in, which workspace is open, and which page
// the address names. Pages are plain functions that return elements.

import { api, inWorkspace, setCsrfToken, whenSignedOut } from './api.js';
import { h } from './dom.js';
import { shell } from './layout.js';
import { signInPage, signUpPage, newWorkspacePage } from './auth.js';
import { tokensPage } from './tokens.js';
import { settingsPage } from './settings.js';
import { webhooksPage, webhookPage } from './webhooks.js';

const catalog = JSON.parse(document.getElementById('catalog').textContent);

const app = document.getElementById('app');
let me = null;

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

/** What a page needs to know about the open workspace and the person's role in it. */
async function workspaceContext(slug) {
  const membership = me.memberships.find((m) => m.workspace_slug === slug);
  if (!membership) return null;
  const workspace = await api('GET', inWorkspace(slug, '/workspace'));
  const role = membership.role;
  return {
    me, membership, workspace, slug, role, catalog,
    timeZone: workspace.timezone,
    canWriteTokens: role !== 'viewer',
    canReadAudit: role !== 'viewer',
    isOwner: role === 'owner',
  };
}

async function route(path) {
  if (path === '/sign-in') return signInPage();
  if (path === '/sign-up') return signUpPage();
  if (!me) {
    try {
      await refreshMe();
    } catch (err) {
      if (err.status === 401) {
        const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
        return navigate(`/sign-in${next}`, { replace: true });
      }
      throw err;
    }
  }
  if (path === '/workspaces/new') return newWorkspacePage(me);
  if (path === '/') {
    const first = me.memberships[0];
    return navigate(first ? `/w/${first.workspace_slug}/tokens` : '/workspaces/new', { replace: true });
  }
  const match = path.match(/^\/w\/([^/]+)\/(tokens|webhooks|settings)(?:\/([^/]+))?\/?$/);
  if (!match) return notFound();
  const [, slug, section, rest] = match.map((part) => part && decodeURIComponent(part));
  const ctx = await workspaceContext(slug);
  if (!ctx) return notFound();
  let page;
  if (section === 'tokens') page = await tokensPage(ctx);
  else if (section === 'webhooks') page = rest ? await webhookPage(ctx, rest) : await webhooksPage(ctx);
  else page = await settingsPage(ctx, rest);
  // A page that redirected elsewhere returns nothing.
  return page ? shell(ctx, section, page) : null;
}

function notFound() {
  document.title = 'Not found · Tooken';
  return h('main', { id: 'main', class: 'centered' },
    h('h1', { tabindex: '-1', id: 'page-title' }, 'Page not found'),
    h('p', null, 'This page does not exist, or you are not a member of its workspace.'),
    h('p', null, h('a', { href: '/' }, 'Go to your workspaces')));
}

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
