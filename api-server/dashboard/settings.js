// Settings (README "The dashboard"): General, API Keys, Members and Audit Log. Each person sees
// only the tabs whose settings they can change: Owners all, others their own personal API keys
// and, for Admins, the audit log.

import { api, inWorkspace } from './api.js';
import { h, field, errorBox, form, modal, confirmAction, showSecretOnce, table, pageTitle,
  badge, announce } from './dom.js';
import { timeEl } from './time.js';
import { navigate, reload, refreshMe } from './router.js';
import { auditLogTab } from './audit.js';

const TABS = [
  ['general', 'General', (ctx) => ctx.isOwner, generalTab],
  ['api-keys', 'API Keys', () => true, apiKeysTab],
  ['members', 'Members', (ctx) => ctx.isOwner, membersTab],
  ['audit-log', 'Audit Log', (ctx) => ctx.canReadAudit, auditLogTab],
];
const ROLES = [['owner', 'Owner'], ['admin', 'Admin'], ['viewer', 'Viewer']];

export async function settingsPage(ctx, tab) {
  const visible = TABS.filter(([, , allowed]) => allowed(ctx));
  const current = visible.find(([key]) => key === tab);
  if (!current) {
    navigate(`/w/${ctx.slug}/settings/${visible[0][0]}`, { replace: true });
    return null;
  }
  const [key, label, , render] = current;
  return h('div', null,
    pageTitle(`Settings: ${label}`),
    h('nav', { class: 'tabs', 'aria-label': 'Settings' },
      h('ul', null, visible.map(([k, l]) => h('li', null,
        h('a', { href: `/w/${ctx.slug}/settings/${k}`, 'aria-current': k === key ? 'page' : null }, l))))),
    await render(ctx));
}

function timeZones(current) {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return [...new Set(['UTC', current, ...zones])].sort();
}

function generalTab(ctx) {
  const ws = ctx.workspace;
  const never = ws.default_token_expiry_days === null;
  const days = h('input', { name: 'default_token_expiry_days', type: 'number', min: 1, max: 365,
    value: never ? '' : ws.default_token_expiry_days, disabled: never, required: !never });
  const neverBox = h('input', { type: 'checkbox', name: 'never', id: 'default-never', checked: never,
    onchange: () => {
      days.disabled = neverBox.checked;
      days.required = !neverBox.checked;
      if (!neverBox.checked && !days.value) days.value = 90;
    } });
  return form([
    field('Workspace name', h('input', { name: 'name', required: true, maxlength: 100, value: ws.name })),
    field('Slug', h('input', { name: 'slug', required: true, pattern: '[a-z0-9][a-z0-9-]*', value: ws.slug }),
      'Used in API paths such as /v1/workspaces/{slug}/tokens. Changing it changes those paths.'),
    field('Timezone', h('select', { name: 'timezone' }, timeZones(ws.timezone).map((zone) =>
      h('option', { value: zone, selected: zone === ws.timezone }, zone))),
    'Timestamps in the dashboard and audit exports are shown in this zone; they are stored in UTC.'),
    field('Default expiration (days)', days,
      'Applied to new tokens created without an expiration date: 1 to 365 days.'),
    h('div', { class: 'check' }, neverBox, h('label', { for: 'default-never' }, 'New tokens never expire by default')),
    field('Audit log retention (days)', h('input', { name: 'audit_retention_days', type: 'number', min: 1,
      max: 365, required: true, value: ws.audit_retention_days }), 'Older audit entries are deleted: 1 to 365 days.'),
  ], 'Save changes', async (data) => {
    const wanted = {
      name: data.get('name').trim(),
      slug: data.get('slug').trim(),
      timezone: data.get('timezone'),
      default_token_expiry_days: data.get('never') ? null : Number(data.get('default_token_expiry_days')),
      audit_retention_days: Number(data.get('audit_retention_days')),
    };
    const changes = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => ws[key] !== value));
    if (Object.keys(changes).length === 0) return announce('Nothing to save.');
    const saved = await api('PATCH', inWorkspace(ctx.slug, '/workspace'), changes);
    await refreshMe();
    announce('Settings saved.');
    navigate(`/w/${saved.slug}/settings/general`, { replace: true });
  });
}

/** Owners manage every key; everyone else only their own personal keys. */
function mayManage(ctx, key) {
  return ctx.isOwner || (key.kind === 'personal' && key.member_id === ctx.membership.member_id);
}

async function apiKeysTab(ctx) {
  const keys = [];
  let cursor;
  do {
    const page = await api('GET', inWorkspace(ctx.slug, `/api-keys${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`));
    keys.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  const rows = keys.map((key) => [
    h('span', null, h('span', { class: 'name' }, key.name), h('code', { class: 'prefix' }, `${key.prefix}…`)),
    key.kind === 'team' ? 'Team' : 'Personal',
    timeEl(h, key.created_at, ctx.timeZone),
    timeEl(h, key.last_used_at, ctx.timeZone, 'Never used'),
    mayManage(ctx, key) ? h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Regenerate ${key.name}`,
        onclick: () => regenerateKey(ctx, key) }, 'Regenerate'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${key.name}`,
        onclick: () => deleteKey(ctx, key) }, 'Delete')) : '',
  ]);
  return h('section', null,
    h('div', { class: 'toolbar' },
      h('p', { class: 'lead' }, ctx.isOwner
        ? 'Keys authenticate calls to the Tooken API. Team keys act for the whole workspace; personal keys act with their member\'s role.'
        : 'Your personal keys act with your role in this workspace.'),
      h('button', { type: 'button', class: 'primary', onclick: () => newKey(ctx) }, 'New API Key')),
    table('API keys', ['Name', 'Kind', 'Created', 'Last used', ''], rows, 'No API keys yet.'));
}

async function newKey(ctx) {
  const kinds = ctx.isOwner
    ? h('fieldset', null, h('legend', null, 'Kind'),
      [['team', 'Team', 'Shared by the workspace, for CI/CD and servers.'],
        ['personal', 'Personal', 'Yours, for local development and scripts.']].map(([value, label, hint], i) =>
        h('div', { class: 'check' },
          h('input', { type: 'radio', name: 'kind', value, id: `kind-${value}`, checked: i === 0 }),
          h('label', { for: `kind-${value}` }, label, h('span', { class: 'description' }, hint)))))
    : h('input', { type: 'hidden', name: 'kind', value: 'personal' });
  const issued = await modal({
    title: 'New API Key',
    submitLabel: 'Generate',
    body: h('div', null,
      field('Name', h('input', { name: 'name', required: true, maxlength: 200, autocomplete: 'off',
        placeholder: 'ci-pipeline' }), 'For example local-dev or ci-pipeline.'),
      kinds),
    onsubmit: (data) => api('POST', inWorkspace(ctx.slug, '/api-keys'),
      { name: data.get('name').trim(), kind: data.get('kind') }),
  });
  if (!issued) return;
  await showSecretOnce({ title: `API key ${issued.name} created`, label: 'API key', secret: issued.key,
    note: 'Store it as TOOKEN_API_KEY in the environment that uses it.' });
  announce(`API key ${issued.name} created.`);
  reload();
}

async function regenerateKey(ctx, key) {
  const issued = await confirmAction({
    title: `Regenerate ${key.name}?`,
    message: 'The current key stops working immediately, and every service still using it gets 401 Unauthorized. Update them right after.',
    confirmLabel: 'Regenerate key',
    onconfirm: () => api('POST', inWorkspace(ctx.slug, `/api-keys/${key.id}/regenerate`)),
  });
  if (!issued) return;
  await showSecretOnce({ title: `New value for ${key.name}`, label: 'API key', secret: issued.key });
  announce(`API key ${key.name} regenerated.`);
  reload();
}

async function deleteKey(ctx, key) {
  const done = await confirmAction({
    title: `Delete ${key.name}?`,
    message: 'The key stops working immediately and is not replaced.',
    confirmLabel: 'Delete key',
    onconfirm: () => api('DELETE', inWorkspace(ctx.slug, `/api-keys/${key.id}`)).then(() => true),
  });
  if (!done) return;
  announce(`API key ${key.name} deleted.`);
  reload();
}

function roleSelect(props, current) {
  return h('select', props, ROLES.map(([value, label]) => h('option', { value, selected: value === current }, label)));
}

async function membersTab(ctx) {
  const members = [];
  let cursor;
  do {
    const page = await api('GET', inWorkspace(ctx.slug, `/members${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`));
    members.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  const problem = errorBox();
  const rows = members.map((member) => {
    const select = roleSelect({ 'aria-label': `Role of ${member.email}`, onchange: async (event) => {
      const role = event.target.value;
      try {
        await api('PATCH', inWorkspace(ctx.slug, `/members/${member.id}`), { role });
        member.role = role;
        announce(`${member.email} is now ${role}.`);
      } catch (err) {
        event.target.value = member.role;
        problem.textContent = err.message;
        problem.hidden = false;
        problem.focus();
      }
    } }, member.role);
    return [
      member.email,
      select,
      badge(member.status === 'invited' ? 'invited' : 'active'),
      timeEl(h, member.created_at, ctx.timeZone),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${member.email}`,
        onclick: () => removeMember(ctx, member) }, 'Remove'),
    ];
  });
  const invite = form([
    h('h2', null, 'Invite a member'),
    h('p', { class: 'hint' }, 'The invitation is tied to this address: they accept it by signing in with the same email.'),
    h('div', { class: 'inline-fields' },
      field('Email address', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'off' })),
      field('Role', roleSelect({ name: 'role' }, 'viewer'))),
  ], 'Send invitation', async (data) => {
    const member = await api('POST', inWorkspace(ctx.slug, '/members'),
      { email: data.get('email').trim(), role: data.get('role') });
    announce(`Invited ${member.email} as ${member.role}.`);
    reload();
  });
  return h('section', null,
    h('p', { class: 'lead' }, 'Owners manage settings; Admins create, rotate and revoke tokens; Viewers only read.'),
    problem,
    table('Members', ['Email', 'Role', 'Status', 'Added', ''], rows, 'No members.'),
    invite);
}

async function removeMember(ctx, member) {
  const done = await confirmAction({
    title: `Remove ${member.email}?`,
    message: 'They lose access to this workspace at once, and their personal API keys stop working.',
    confirmLabel: 'Remove member',
    onconfirm: () => api('DELETE', inWorkspace(ctx.slug, `/members/${member.id}`)).then(() => true),
  });
  if (!done) return;
  announce(`${member.email} removed.`);
  if (member.id === ctx.membership.member_id) {
    await refreshMe();
    navigate('/');
  } else {
    reload();
  }
}
