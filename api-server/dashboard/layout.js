// The frame around every workspace page: workspace switcher, navigation, the signed-in user.

import { h } from './dom.js';
import { navigate, signOut } from './router.js';

export function shell(ctx, section, page) {
  const links = [
    ['tokens', 'Tokens', `/w/${ctx.slug}/tokens`],
    ['webhooks', 'Webhooks', `/w/${ctx.slug}/webhooks`],
    ['settings', 'Settings', `/w/${ctx.slug}/settings`],
  ];
  const switcher = h('select', { id: 'workspace-switcher', onchange: (event) => {
    const value = event.target.value;
    navigate(value === '' ? '/workspaces/new' : `/w/${value}/tokens`);
  } },
  ctx.me.memberships.map((m) => h('option', { value: m.workspace_slug,
    selected: m.workspace_slug === ctx.slug }, m.workspace_name)),
  h('option', { value: '' }, 'New workspace…'));
  const invitations = ctx.me.invitations.length
    ? h('p', { class: 'banner' },
      `You have ${ctx.me.invitations.length} pending invitation${ctx.me.invitations.length > 1 ? 's' : ''}. `,
      h('a', { href: '/workspaces/new' }, 'Review'))
    : null;
  return h('div', { class: 'layout' },
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: `/w/${ctx.slug}/tokens` }, 'Tooken'),
      h('div', { class: 'switcher' },
        h('label', { for: 'workspace-switcher', class: 'visually-hidden' }, 'Workspace'),
        switcher),
      h('div', { class: 'user' },
        h('span', { class: 'email' }, ctx.me.user.email),
        h('span', { class: 'role' }, ctx.role),
        h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'))),
    h('nav', { class: 'sidebar', 'aria-label': 'Main' },
      h('ul', null, links.map(([key, label, href]) => h('li', null,
        h('a', { href, 'aria-current': key === section ? 'page' : null }, label))))),
    h('main', { id: 'main', tabindex: '-1' }, invitations, page));
}
