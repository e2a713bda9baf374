// Tokens (README "The dashboard"): the list, New Token, the secret shown once, rotate and revoke.

import { api, inWorkspace, withQuery } from './api.js';
import { h, fill, field, modal, confirmAction, showSecretOnce, table, pageTitle, badge, loadMore, announce } from './dom.js';
import { timeEl, zonedToUtc, dateIn, formatInstant } from './time.js';
import { reload } from './router.js';

const GRACE_PERIODS = [
  [0, 'None: the old secret stops working now'],
  [3600, '1 hour'],
  [86400, '24 hours'],
  [604800, '7 days'],
];

export async function tokensPage(ctx) {
  const status = new URLSearchParams(location.search).get('status') ?? '';
  const list = h('div', { class: 'list' });
  const rows = [];
  async function load(cursor) {
    const page = await api('GET', withQuery(inWorkspace(ctx.slug, '/tokens'), { status, cursor, limit: 50 }));
    rows.push(...page.data);
    fill(list,
      table('Tokens', ['Name', 'Status', 'Scopes', 'Expires', 'Last used', 'Created', ''],
        rows.map((token) => tokenRow(ctx, token)),
        status ? `No ${status} tokens.` : 'No tokens yet. Create one for each service that needs to call your API.'),
      loadMore(page.next_cursor, load));
  }
  await load();
  const filter = h('select', { id: 'status-filter', onchange: (event) => {
    const value = event.target.value;
    history.replaceState(null, '', value ? `?status=${value}` : location.pathname);
    reload();
  } }, [['', 'All'], ['active', 'Active'], ['expired', 'Expired'], ['revoked', 'Revoked']]
    .map(([value, label]) => h('option', { value, selected: value === status }, label)));
  const newButton = ctx.canWriteTokens
    ? h('button', { type: 'button', class: 'primary', onclick: () => newToken(ctx) }, 'New Token')
    : null;
  return h('div', null,
    pageTitle('Tokens', newButton),
    h('p', { class: 'lead' }, 'Scoped credentials for your services and integrations. Create one token per consumer.'),
    h('div', { class: 'toolbar' }, h('label', { for: 'status-filter' }, 'Status'), filter),
    list);
}

function tokenRow(ctx, token) {
  const actions = ctx.canWriteTokens && token.status === 'active'
    ? h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Rotate ${token.name}`,
        onclick: () => rotate(ctx, token) }, 'Rotate'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${token.name}`,
        onclick: () => revoke(ctx, token) }, 'Revoke'))
    : '';
  return [
    h('span', null, h('span', { class: 'name' }, token.name), h('code', { class: 'prefix' }, `${token.prefix}…`),
      confinement(token), tokenLabels(token)),
    badge(token.status),
    h('ul', { class: 'scopes' }, token.scopes.map((scope) => h('li', null, h('code', null, scope)))),
    timeEl(h, token.expires_at, ctx.timeZone, 'Never'),
    timeEl(h, token.last_used_at, ctx.timeZone, 'Never used'),
    timeEl(h, token.created_at, ctx.timeZone),
    actions,
  ];
}

// A confined token sees and manages only the tokens whose name starts with its prefix.
function confinement(token) {
  return token.name_prefix
    ? h('span', { class: 'confined' }, 'Confined to ', h('code', null, `${token.name_prefix}…`))
    : null;
}

// Labels name what the token serves, e.g. the Kubernetes namespace and resource.
function tokenLabels(token) {
  const entries = Object.entries(token.labels ?? {});
  return entries.length
    ? h('ul', { class: 'labels', 'aria-label': `Labels of ${token.name}` },
      entries.map(([key, value]) => h('li', null, h('code', null, `${key}=${value}`))))
    : null;
}

function defaultExpiryText(ctx) {
  const days = ctx.workspace.default_token_expiry_days;
  return days
    ? `Leave blank for the workspace default: the token expires after ${days} days.`
    : 'Leave blank for the workspace default: the token never expires.';
}

async function newToken(ctx) {
  const scopes = h('fieldset', { class: 'scopes-picker' },
    h('legend', null, 'Scopes'),
    h('p', { class: 'hint' }, 'Grant only the scopes the service needs.'),
    ctx.catalog.scopes.map((scope) => {
      const id = `scope-${scope.name.replace(':', '-')}`;
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', name: 'scopes', value: scope.name, id }),
        h('label', { for: id }, h('code', null, scope.name), h('span', { class: 'description' }, scope.description)));
    }));
  const date = h('input', { name: 'expires_at', type: 'date', min: dateIn(ctx.timeZone, 1) });
  const never = h('input', { type: 'checkbox', name: 'never', id: 'never-expires',
    onchange: () => { date.disabled = never.checked; } });
  const issued = await modal({
    title: 'New Token',
    submitLabel: 'Create',
    body: h('div', null,
      field('Name', h('input', { name: 'name', required: true, maxlength: 200, autocomplete: 'off',
        placeholder: 'backend-prod' }), 'Name the service and environment, e.g. backend-prod or ci-staging.'),
      scopes,
      field('Expiration date (optional)', date,
        `${defaultExpiryText(ctx)} The token stops working at the end of that day (${ctx.timeZone}).`),
      h('div', { class: 'check' }, never, h('label', { for: 'never-expires' }, 'Never expires'))),
    onsubmit: async (data) => {
      const body = { name: data.get('name').trim(), scopes: data.getAll('scopes') };
      if (data.get('never')) body.expires_at = null;
      else if (data.get('expires_at')) body.expires_at = zonedToUtc(data.get('expires_at'), ctx.timeZone, 23, 59, 59);
      return api('POST', inWorkspace(ctx.slug, '/tokens'), body);
    },
  });
  if (!issued) return;
  await showSecretOnce({
    title: `Token ${issued.name} created`,
    label: 'Token secret',
    secret: issued.secret,
    note: issued.expires_at ? `It expires ${formatInstant(issued.expires_at, ctx.timeZone)}.` : 'It never expires.',
  });
  announce(`Token ${issued.name} created.`);
  reload();
}

async function rotate(ctx, token) {
  const grace = h('select', { name: 'grace_period_seconds' },
    GRACE_PERIODS.map(([seconds, label]) => h('option', { value: seconds, selected: seconds === 86400 }, label)));
  const rotated = await confirmAction({
    title: `Rotate ${token.name}?`,
    message: 'A new secret is issued; the token keeps its ID, name and scopes. Give consumers time to switch with a grace period, during which the old secret still works.',
    body: field('Grace period for the old secret', grace),
    confirmLabel: 'Rotate secret',
    danger: false,
    onconfirm: (data) => api('POST', inWorkspace(ctx.slug, `/tokens/${token.id}/rotate`),
      { grace_period_seconds: Number(data.get('grace_period_seconds')) }),
  });
  if (!rotated) return;
  await showSecretOnce({
    title: `New secret for ${token.name}`,
    label: 'Token secret',
    secret: rotated.secret,
    note: `The previous secret works until ${formatInstant(rotated.previous_secret_expires_at, ctx.timeZone)}.`,
  });
  announce(`Token ${token.name} rotated.`);
  reload();
}

async function revoke(ctx, token) {
  const done = await confirmAction({
    title: `Revoke ${token.name}?`,
    message: 'Every request with this token is refused from now on. This cannot be undone.',
    confirmLabel: 'Revoke token',
    onconfirm: () => api('POST', inWorkspace(ctx.slug, `/tokens/${token.id}/revoke`)).then(() => true),
  });
  if (!done) return;
  announce(`Token ${token.name} revoked.`);
  reload();
}
