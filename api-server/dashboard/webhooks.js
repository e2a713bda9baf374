// Webhooks (README "The dashboard"): endpoints, their signing secret shown once, and the
// delivery log. Only owners hold webhooks:write, so every change is offered to owners alone.

import { api, inWorkspace, withQuery } from './api.js';
import { h, fill, uid, field, modal, confirmAction, showSecretOnce, table, pageTitle, badge, loadMore, announce, errorBox } from './dom.js';
import { timeEl, formatInstant } from './time.js';
import { reload, navigate } from './router.js';

const GRACE_PERIODS = [
  [0, 'None: the new secret signs from now on'],
  [3600, '1 hour'],
  [86400, '24 hours'],
  [604800, '7 days'],
];

const SIGNATURE_NOTE = 'Use it to verify the X-Tooken-Signature header of every delivery.';

export async function webhooksPage(ctx) {
  const list = h('div', { class: 'list' });
  const rows = [];
  async function load(cursor) {
    const page = await api('GET', withQuery(inWorkspace(ctx.slug, '/webhooks'), { cursor, limit: 50 }));
    rows.push(...page.data);
    fill(list,
      table('Webhooks', ['URL', 'Events', 'Status', 'Created'],
        rows.map((webhook) => [
          h('a', { href: `/w/${ctx.slug}/webhooks/${webhook.id}`, class: 'url' }, webhook.url),
          eventList(ctx, webhook.event_types),
          status(webhook),
          timeEl(h, webhook.created_at, ctx.timeZone),
        ]),
        'No webhooks yet. Add an endpoint to hear about token and workspace changes as they happen.'),
      loadMore(page.next_cursor, load));
  }
  await load();
  const newButton = ctx.isOwner
    ? h('button', { type: 'button', class: 'primary', onclick: () => newWebhook(ctx) }, 'New webhook')
    : null;
  return h('div', null,
    pageTitle('Webhooks', newButton),
    h('p', { class: 'lead' }, 'Tooken sends a signed HTTP POST to these URLs when something happens in this workspace.'),
    ctx.isOwner ? null : h('p', { class: 'hint' }, 'Only owners can add or change webhooks.'),
    list);
}

function eventList(ctx, types) {
  if (types.length === ctx.catalog.webhook_event_types.length) return 'All events';
  return h('ul', { class: 'event-types' }, types.map((type) => h('li', null, h('code', null, type))));
}

function status(webhook) {
  if (webhook.enabled) return badge('enabled');
  return h('span', null, badge('disabled'),
    webhook.disabled_reason ? h('span', { class: 'hint' }, ` ${webhook.disabled_reason}`) : null);
}

/** The checked event types; at least one, as the API requires. */
function chosenEvents(data) {
  const types = data.getAll('event_types');
  if (types.length === 0) throw Object.assign(new Error('Choose at least one event type.'), { field: 'event_types' });
  return types;
}

/** Event-type checkboxes named `event_types`, with a "Select all events" box. */
function eventPicker(ctx, selected) {
  const boxes = ctx.catalog.webhook_event_types.map((type) =>
    h('input', { type: 'checkbox', name: 'event_types', value: type, id: uid('event'), checked: selected.includes(type) }));
  const all = h('input', { type: 'checkbox', id: uid('all-events'), onchange: () => {
    boxes.forEach((box) => { box.checked = all.checked; });
  } });
  const sync = () => {
    const count = boxes.filter((box) => box.checked).length;
    all.checked = count === boxes.length;
    all.indeterminate = count > 0 && count < boxes.length;
  };
  boxes.forEach((box) => box.addEventListener('change', sync));
  sync();
  return h('fieldset', { class: 'events-picker' },
    h('legend', null, 'Events'),
    h('p', { class: 'hint' }, 'Choose at least one event type to receive.'),
    h('div', { class: 'check' }, all, h('label', { for: all.id }, 'Select all events')),
    boxes.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id }, h('code', null, box.value)))));
}

function urlInput(value) {
  return h('input', { name: 'url', type: 'url', required: true, maxlength: 2048, autocomplete: 'off',
    placeholder: 'https://example.com/hooks/tooken', value });
}

async function newWebhook(ctx) {
  const created = await modal({
    title: 'New webhook',
    submitLabel: 'Create webhook',
    body: h('div', null,
      field('URL', urlInput(), 'An http:// or https:// address that accepts POST requests.'),
      field('Description (optional)', h('input', { name: 'description', maxlength: 256, autocomplete: 'off' })),
      eventPicker(ctx, [])),
    onsubmit: (data) => {
      const body = { url: data.get('url').trim(), event_types: chosenEvents(data) };
      const description = data.get('description').trim();
      if (description) body.description = description;
      return api('POST', inWorkspace(ctx.slug, '/webhooks'), body);
    },
  });
  if (!created) return;
  await showSecretOnce({ title: 'Webhook created', label: 'Signing secret', secret: created.secret, note: SIGNATURE_NOTE });
  announce('Webhook created.');
  reload();
}

export async function webhookPage(ctx, id) {
  let webhook;
  try {
    webhook = await api('GET', inWorkspace(ctx.slug, `/webhooks/${encodeURIComponent(id)}`));
  } catch (err) {
    if (err.status !== 404) throw err;
    return h('div', null, pageTitle('Webhook not found'),
      h('p', null, 'This webhook does not exist or was deleted. ', h('a', { href: `/w/${ctx.slug}/webhooks` }, 'All webhooks')));
  }
  const actions = ctx.isOwner ? [
    h('button', { type: 'button', class: 'secondary', onclick: () => edit(ctx, webhook) }, 'Edit'),
    h('button', { type: 'button', class: 'secondary', onclick: () => rotate(ctx, webhook) }, 'Rotate signing secret'),
    h('button', { type: 'button', class: 'danger', onclick: () => remove(ctx, webhook) }, 'Delete'),
  ] : [];
  return h('div', null,
    h('p', { class: 'back' }, h('a', { href: `/w/${ctx.slug}/webhooks` }, '← All webhooks')),
    pageTitle('Webhook', ...actions),
    h('dl', { class: 'detail' },
      h('dt', null, 'URL'), h('dd', { class: 'url' }, webhook.url),
      h('dt', null, 'Description'), h('dd', null, webhook.description || '—'),
      h('dt', null, 'Events'), h('dd', null, eventList(ctx, webhook.event_types)),
      h('dt', null, 'Status'), h('dd', null, status(webhook)),
      h('dt', null, 'Signing secret'), h('dd', null, secretState(ctx, webhook)),
      h('dt', null, 'ID'), h('dd', null, h('code', null, webhook.id)),
      h('dt', null, 'Created'), h('dd', null, timeEl(h, webhook.created_at, ctx.timeZone))),
    await deliveries(ctx, webhook));
}

function secretState(ctx, webhook) {
  const at = webhook.secret_rotates_at;
  if (!at) return 'Never rotated';
  if (new Date(at) > new Date()) return ['The previous secret signs until ', timeEl(h, at, ctx.timeZone)];
  return ['Rotated ', timeEl(h, at, ctx.timeZone)];
}

async function edit(ctx, webhook) {
  const enabled = h('input', { type: 'checkbox', name: 'enabled', id: uid('enabled'), checked: webhook.enabled });
  const updated = await modal({
    title: 'Edit webhook',
    submitLabel: 'Save',
    body: h('div', null,
      field('URL', urlInput(webhook.url)),
      field('Description (optional)', h('input', { name: 'description', maxlength: 256, autocomplete: 'off',
        value: webhook.description ?? '' })),
      eventPicker(ctx, webhook.event_types),
      h('div', { class: 'check' }, enabled, h('label', { for: enabled.id }, 'Enabled')),
      webhook.disabled_reason
        ? h('p', { class: 'hint' }, `Tooken disabled it: ${webhook.disabled_reason}. Enabling it clears this.`)
        : null),
    onsubmit: (data) => api('PATCH', inWorkspace(ctx.slug, `/webhooks/${webhook.id}`), {
      url: data.get('url').trim(),
      // An empty string clears the description; null would leave it unchanged.
      description: data.get('description').trim(),
      event_types: chosenEvents(data),
      enabled: data.get('enabled') !== null,
    }),
  });
  if (!updated) return;
  announce('Webhook saved.');
  reload();
}

async function rotate(ctx, webhook) {
  const grace = h('select', { name: 'grace_period_seconds' },
    GRACE_PERIODS.map(([seconds, label]) => h('option', { value: seconds, selected: seconds === 86400 }, label)));
  const rotated = await confirmAction({
    title: 'Rotate the signing secret?',
    message: 'A new signing secret is issued. During the grace period the current secret keeps signing, so update your receiver to accept both.',
    body: field('Grace period', grace),
    confirmLabel: 'Rotate secret',
    danger: false,
    onconfirm: (data) => api('POST', inWorkspace(ctx.slug, `/webhooks/${webhook.id}/rotate-secret`),
      { grace_period_seconds: Number(data.get('grace_period_seconds')) }),
  });
  if (!rotated) return;
  const takesOver = new Date(rotated.secret_rotates_at) > new Date()
    ? `It signs deliveries from ${formatInstant(rotated.secret_rotates_at, ctx.timeZone)}.`
    : 'It signs deliveries from now on.';
  await showSecretOnce({ title: 'New signing secret', label: 'Signing secret', secret: rotated.secret,
    note: `${takesOver} ${SIGNATURE_NOTE}` });
  announce('Signing secret rotated.');
  reload();
}

async function remove(ctx, webhook) {
  const done = await confirmAction({
    title: 'Delete this webhook?',
    message: `Tooken stops sending events to ${webhook.url} and cancels its pending deliveries. This cannot be undone.`,
    confirmLabel: 'Delete webhook',
    onconfirm: () => api('DELETE', inWorkspace(ctx.slug, `/webhooks/${webhook.id}`)).then(() => true),
  });
  if (!done) return;
  announce('Webhook deleted.');
  navigate(`/w/${ctx.slug}/webhooks`);
}

async function deliveries(ctx, webhook) {
  const canRedeliver = ctx.isOwner && webhook.enabled;
  const problem = errorBox();
  const list = h('div', { class: 'list' });
  const rows = [];
  async function load(cursor) {
    const page = await api('GET', withQuery(inWorkspace(ctx.slug, `/webhooks/${webhook.id}/deliveries`), { cursor, limit: 50 }));
    rows.push(...page.data);
    const headers = ['Event', 'Status', 'Attempts', 'Last status code', 'Last error', 'Created', 'Delivered'];
    fill(list,
      table('Deliveries', canRedeliver ? [...headers, ''] : headers,
        rows.map((delivery) => deliveryRow(ctx, webhook, delivery, canRedeliver, problem)),
        'No deliveries yet. Events of the chosen types appear here as they are sent.'),
      loadMore(page.next_cursor, load));
  }
  await load();
  const titleId = uid('deliveries');
  return h('section', { 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Deliveries'),
    ctx.isOwner && !webhook.enabled ? h('p', { class: 'hint' }, 'Enable the webhook to redeliver events.') : null,
    problem,
    list);
}

function deliveryRow(ctx, webhook, delivery, canRedeliver, problem) {
  const code = delivery.last_status_code ?? '—';
  const cells = [
    h('code', null, delivery.event_type),
    h('span', null, badge(delivery.status),
      delivery.status === 'pending' && delivery.next_attempt_at
        ? h('span', { class: 'hint' }, ' next attempt ', timeEl(h, delivery.next_attempt_at, ctx.timeZone))
        : null),
    String(delivery.attempts),
    delivery.last_latency_ms == null ? String(code) : `${code} (${delivery.last_latency_ms} ms)`,
    delivery.last_error ? h('span', { class: 'error-text' }, delivery.last_error) : '—',
    timeEl(h, delivery.created_at, ctx.timeZone),
    timeEl(h, delivery.delivered_at, ctx.timeZone),
  ];
  if (canRedeliver) {
    const button = h('button', { type: 'button', class: 'secondary',
      'aria-label': `Redeliver ${delivery.event_type} delivery ${delivery.id}`,
      onclick: async () => {
        button.disabled = true;
        try {
          await api('POST', inWorkspace(ctx.slug, `/webhooks/${webhook.id}/deliveries/${delivery.id}/redeliver`));
        } catch (err) {
          button.disabled = false;
          problem.textContent = err.message;
          problem.hidden = false;
          problem.focus();
          return;
        }
        announce(`Redelivery of ${delivery.event_type} queued.`);
        reload();
      } }, 'Redeliver');
    cells.push(h('div', { class: 'row-actions' }, button));
  }
  return cells;
}
