// Building the page from data. Text always goes in through text nodes or attributes, never
// through innerHTML, so a user-supplied string is shown as it is and never runs.

/** Creates an element: `h('button', {class: 'primary', onclick}, 'Save')`. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children; like `h`, it skips null and false. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let nextId = 0;
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled control with an optional hint the screen reader reads with it. */
export function field(label, control, hint) {
  control.id ||= uid('field');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** Announces a message to screen readers and shows it briefly. */
export function announce(message) {
  const region = document.getElementById('status');
  region.textContent = '';
  region.textContent = message;
}

/** The message box above a form; `field` errors also mark their control invalid. */
function showError(form, err) {
  const box = form.querySelector('.form-error');
  box.textContent = err.message;
  box.hidden = false;
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  const control = err.field && form.querySelector(`[name="${CSS.escape(err.field.split('[')[0])}"]`);
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  } else {
    box.focus();
  }
}

/** A page form whose submit handler's errors are shown above its fields. */
export function form(fields, submitLabel, onsubmit) {
  const error = errorBox();
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const el = h('form', { novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!el.reportValidity()) return;
    button.disabled = true;
    error.hidden = true;
    try {
      await onsubmit(new FormData(el));
    } catch (err) {
      showError(el, err);
    } finally {
      button.disabled = false;
    }
  } }, error, fields, h('div', { class: 'actions' }, button));
  return el;
}

export function errorBox() {
  return h('p', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
}

/**
 * Opens a modal dialog. The browser's <dialog> keeps focus inside, closes on Escape and
 * gives focus back to the opener. Resolves with what `onsubmit` returns, or null if cancelled.
 */
export function modal({ title, body, submitLabel, danger, cancelLabel = 'Cancel', onsubmit }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const error = errorBox();
    const submit = submitLabel
      ? h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submitLabel)
      : null;
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', { id: titleId }, title),
      error,
      body,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => close(null) }, cancelLabel),
        submit));
    const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
    const opener = document.activeElement;
    let settled = false;
    function close(result) {
      if (settled) return;
      settled = true;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    }
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(null);
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!submit || !form.reportValidity()) return;
      submit.disabled = true;
      try {
        close(await onsubmit(new FormData(form), form));
      } catch (err) {
        showError(form, err);
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Asks before something that cannot be undone. */
export function confirmAction({ title, message, confirmLabel, danger = true, body, onconfirm }) {
  return modal({
    title,
    body: h('div', null, h('p', null, message), body),
    submitLabel: confirmLabel,
    danger,
    onsubmit: onconfirm,
  });
}

/**
 * Shows a secret exactly once, with a copy button and a warning. Closing the dialog removes
 * the secret from the page; nothing keeps a copy.
 */
export function showSecretOnce({ title, label, secret, note }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const input = h('input', { type: 'text', readonly: true, value: secret, class: 'secret',
      'aria-label': label, spellcheck: 'false', autocomplete: 'off' });
    const copied = h('span', { class: 'copied', role: 'status' });
    const copy = h('button', { type: 'button', class: 'primary', onclick: async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        copied.textContent = 'Copied to the clipboard.';
      } catch {
        input.select();
        copied.textContent = 'Select the secret and copy it with Ctrl+C (⌘C).';
      }
    } }, 'Copy');
    const done = h('button', { type: 'button', class: 'secondary', onclick: () => close() },
      'I have stored it — close');
    const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'secret-dialog' },
      h('h2', { id: titleId }, title),
      h('p', { class: 'warning', role: 'note' },
        h('strong', null, 'This is the only time the secret is shown. '),
        'Copy it now and store it in a secrets manager; Tooken keeps only a hash and cannot show it again.'),
      h('div', { class: 'secret-row' }, input, copy),
      copied,
      note ? h('p', { class: 'hint' }, note) : null,
      h('div', { class: 'actions' }, done));
    const opener = document.activeElement;
    function close() {
      input.value = '';
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve();
    }
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    input.select();
  });
}

/** A table with a caption for screen readers; `rows` are arrays of cells. */
export function table(caption, headers, rows, emptyText) {
  if (rows.length === 0) return h('p', { class: 'empty' }, emptyText);
  return h('div', { class: 'table-wrap' },
    h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, headers.map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', null, rows.map((cells) => h('tr', null, cells.map((cell, i) =>
        i === 0 ? h('th', { scope: 'row' }, cell) : h('td', { 'data-label': headers[i] }, cell)))))));
}

/** A page heading that takes focus after navigation, so screen readers announce the page. */
export function pageTitle(text, ...actions) {
  document.title = `${text} · Tooken`;
  return h('div', { class: 'page-head' },
    h('h1', { tabindex: '-1', id: 'page-title' }, text),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind ?? text}` }, text);
}

/**
 * A "Load more" button that appends the next page of a cursor-paged list, then moves focus
 * to the first new row so keyboard users continue where the list grew.
 */
export function loadMore(nextCursor, load) {
  if (!nextCursor) return null;
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    button.disabled = true;
    const before = document.querySelectorAll('main tbody tr').length;
    try {
      await load(nextCursor);
    } catch (err) {
      button.disabled = false;
      problem.textContent = err.message;
      problem.hidden = false;
      return;
    }
    button.remove();
    const first = document.querySelectorAll('main tbody tr')[before]?.firstElementChild;
    if (first) {
      first.tabIndex = -1;
      first.focus();
    }
  } }, 'Load more');
  return h('div', { class: 'load-more' }, problem, button);
}
