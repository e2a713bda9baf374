// The dashboard's entry point: which page the address names, and what a page knows about the
// open workspace. Navigation and the session live in router.js, which draws what `route` returns.
// Pages are plain functions that return elements.

import { api, inWorkspace } from './api.js';
import { h } from './dom.js';
import { currentMe, navigate, refreshMe, start } from './router.js';
import { shell } from './layout.js';
import { signInPage, signUpPage, newWorkspacePage } from './auth.js';
import { tokensPage } from './tokens.js';
import { settingsPage } from './settings.js';
import { webhooksPage, webhookPage } from './webhooks.js';

const catalog = JSON.parse(document.getElementById('catalog').textContent);

/** What a page needs to know about the open workspace and the person's role in it. */
async function workspaceContext(slug) {
  const membership = currentMe().memberships.find((m) => m.workspace_slug === slug);
  if (!membership) return null;
  const workspace = await api('GET', inWorkspace(slug, '/workspace'));
  const role = membership.role;
  return {
    me: currentMe(), membership, workspace, slug, role, catalog,
    timeZone: workspace.timezone,
    canWriteTokens: role !== 'viewer',
    canReadAudit: role !== 'viewer',
    isOwner: role === 'owner',
  };
}

async function route(path) {
  if (path === '/sign-in') return signInPage();
  if (path === '/sign-up') return signUpPage();
  if (!currentMe()) {
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
  if (path === '/workspaces/new') return newWorkspacePage(currentMe());
  if (path === '/') {
    const first = currentMe().memberships[0];
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

start(route);
