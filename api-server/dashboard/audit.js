// Settings → Audit Log (README "The dashboard"): filtered, paged list and CSV export. Dates are
// whole days in the workspace time zone; a day runs from its midnight to the next midnight.

import { api, inWorkspace, withQuery } from './api.js';
import { h, fill, uid, field, table, loadMore, announce } from './dom.js';
import { timeEl, zonedToUtc, dateIn } from './time.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const MAX_EXPORT_DAYS = 366;
const ACTOR_KINDS = {
  team_key: 'team API key', personal_key: 'personal API key', token: 'token',
  session: 'dashboard user', system: 'system',
};

/** The date after `date` (YYYY-MM-DD). */
function nextDay(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

function daysBetween(from, to) {
  return (Date.parse(to) - Date.parse(from)) / 86400000;
}

/** The [since, until) instants of the days From..To (inclusive) in the workspace time zone. */
function range(from, to, timeZone) {
  return {
    since: from ? zonedToUtc(from, timeZone) : undefined,
    until: to ? zonedToUtc(nextDay(to), timeZone) : undefined,
  };
}

function rangeProblem(from, to) {
  if (from && to && from > to) return 'The From date must be on or before the To date.';
  return null;
}

export async function auditLogTab(ctx) {
  const query = new URLSearchParams(location.search);
  const date = (key) => (DATE.test(query.get(key) ?? '') ? query.get(key) : '');
  // actor and target come only from links; they are kept but not edited here.
  const filters = { type: query.get('type') ?? '', from: date('from'), to: date('to'),
    actor: query.get('actor') ?? '', target: query.get('target') ?? '' };

  const list = h('div', { class: 'list' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  async function show() {
    const rows = [];
    async function load(cursor) {
      const page = await api('GET', withQuery(inWorkspace(ctx.slug, '/audit-logs'), {
        type: filters.type, actor: filters.actor, target: filters.target,
        ...range(filters.from, filters.to, ctx.timeZone), cursor, limit: 50,
      }));
      rows.push(...page.data);
      const filtered = Object.values(filters).some(Boolean);
      fill(list,
        table('Audit log', ['Time', 'Event', 'Actor', 'Target', 'Details'],
          rows.map((event) => eventRow(ctx, event)),
          filtered ? 'No events match these filters.' : 'No events yet.'),
        loadMore(page.next_cursor, load));
    }
    try {
      await load();
    } catch (err) {
      list.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message));
    }
  }

  const type = h('select', { name: 'type' },
    h('option', { value: '' }, 'All events'),
    ctx.catalog.audit_event_types.map((kind) => h('option', { value: kind, selected: kind === filters.type }, kind)));
  const from = h('input', { type: 'date', name: 'from', value: filters.from });
  const to = h('input', { type: 'date', name: 'to', value: filters.to });
  const form = h('form', { class: 'filters', 'aria-label': 'Filter audit events', onsubmit: async (event) => {
    event.preventDefault();
    const message = rangeProblem(from.value, to.value);
    problem.textContent = message ?? '';
    problem.hidden = !message;
    if (message) return from.focus();
    Object.assign(filters, { type: type.value, from: from.value, to: to.value });
    history.replaceState(null, '', withQuery(location.pathname, filters));
    await show();
    announce('Audit log filtered.');
  } },
  field('Event type', type),
  field('From date', from),
  field('To date', to),
  h('button', { type: 'submit', class: 'primary' }, 'Apply'));

  await show();
  const scoped = [filters.actor && `actor ${filters.actor}`, filters.target && `target ${filters.target}`].filter(Boolean);
  return h('div', null,
    h('p', { class: 'lead' }, `Who changed what in this workspace. Times are shown in ${ctx.timeZone}.`),
    form,
    problem,
    scoped.length
      ? h('p', { class: 'hint' }, `Only events for ${scoped.join(' and ')}. `,
        h('a', { href: withQuery(location.pathname, { type: filters.type, from: filters.from, to: filters.to }) }, 'Show all'))
      : null,
    list,
    exportSection(ctx));
}

function eventRow(ctx, event) {
  const kind = ACTOR_KINDS[event.actor.kind] ?? event.actor.kind;
  const details = event.data && Object.keys(event.data).length ? JSON.stringify(event.data) : '';
  return [
    timeEl(h, event.created_at, ctx.timeZone),
    h('code', null, event.type),
    h('span', null, event.actor.label ?? event.actor.id ?? 'Tooken', ' ', h('span', { class: 'hint' }, `(${kind})`)),
    h('span', null, `${event.target_type} `, h('code', null, event.target_id)),
    details ? h('code', { class: 'details' }, details) : '—',
  ];
}

function exportSection(ctx) {
  const from = h('input', { type: 'date', name: 'export_from', value: dateIn(ctx.timeZone, -30), required: true });
  const to = h('input', { type: 'date', name: 'export_to', value: dateIn(ctx.timeZone), required: true });
  const link = h('a', { class: 'button secondary', download: true }, 'Export CSV');
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  // A plain download link carries the session cookie; without an href it cannot be followed.
  function update() {
    let message = rangeProblem(from.value, to.value);
    if (!from.value || !to.value) message = 'Choose both dates to export.';
    else if (!message && daysBetween(from.value, to.value) + 1 > MAX_EXPORT_DAYS) message = `An export covers at most ${MAX_EXPORT_DAYS} days.`;
    problem.textContent = message ?? '';
    problem.hidden = !message;
    if (message) {
      link.removeAttribute('href');
      link.setAttribute('aria-disabled', 'true');
    } else {
      link.href = withQuery(inWorkspace(ctx.slug, '/audit-logs/export'), range(from.value, to.value, ctx.timeZone));
      link.removeAttribute('aria-disabled');
    }
  }
  from.addEventListener('input', update);
  to.addEventListener('input', update);
  update();
  const titleId = uid('export');
  return h('section', { class: 'export', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Export'),
    h('p', { class: 'hint' }, `Download every event of a date range as CSV, with times in ${ctx.timeZone}. The To day is included.`),
    h('div', { class: 'filters' }, field('Export from', from), field('Export to', to), link),
    problem);
}
