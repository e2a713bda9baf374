// Sign up, sign in, and the first workspace, plus invitations waiting to be accepted (README
// "People, workspaces, members and the audit log").

import { api } from './api.js';
import { h, field, errorBox, form } from './dom.js';
import { navigate, refreshMe, signedIn } from './router.js';

function centered(title, ...content) {
  document.title = `${title} · Tooken`;
  return h('main', { id: 'main', class: 'centered' },
    h('p', { class: 'brand' }, 'Tooken'),
    h('h1', { tabindex: '-1', id: 'page-title' }, title),
    content);
}

function credentialsFields(passwordAutocomplete) {
  return [
    field('Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'email' })),
    field('Password', h('input', { name: 'password', type: 'password', required: true,
      minlength: passwordAutocomplete === 'new-password' ? 10 : null, autocomplete: passwordAutocomplete }),
    passwordAutocomplete === 'new-password' ? 'At least 10 characters.' : null),
  ];
}

/** Where to go after signing in: the page the person was sent away from, if it is ours. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

async function enter(path, data) {
  const session = await api('POST', path, {
    email: data.get('email'), password: data.get('password'), cookie: true,
  });
  signedIn(session);
  await refreshMe();
  navigate(nextPath(), { replace: true });
}

export function signInPage() {
  return centered('Sign in',
    form(credentialsFields('current-password'), 'Sign in', (data) => enter('/v1/auth/signin', data)),
    h('p', null, 'New to Tooken? ', h('a', { href: '/sign-up' }, 'Create an account')));
}

export function signUpPage() {
  return centered('Create your account',
    form(credentialsFields('new-password'), 'Create account', (data) => enter('/v1/auth/signup', data)),
    h('p', null, 'Already have an account? ', h('a', { href: '/sign-in' }, 'Sign in')));
}

export function newWorkspacePage(me) {
  const problem = errorBox();
  const invitations = me.invitations.length === 0 ? null : h('section', { 'aria-labelledby': 'invitations-title' },
    h('h2', { id: 'invitations-title' }, 'Invitations'),
    problem,
    h('ul', { class: 'plain' }, me.invitations.map((invitation) => h('li', { class: 'invitation' },
      h('span', null, `${invitation.workspace_name} (${invitation.workspace_slug}) invites you as ${invitation.role}.`),
      h('button', { type: 'button', class: 'primary', onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          const membership = await api('POST', `/v1/invitations/${encodeURIComponent(invitation.id)}/accept`);
          await refreshMe();
          navigate(`/w/${membership.workspace_slug}/tokens`);
        } catch (err) {
          button.disabled = false;
          problem.textContent = err.message;
          problem.hidden = false;
          problem.focus();
        }
      } }, `Join ${invitation.workspace_name}`)))));
  const create = form([
    field('Workspace name', h('input', { name: 'name', required: true, maxlength: 100, autocomplete: 'off' }),
      'For example production or my-team. Everything in a workspace is isolated from other workspaces.'),
    field('Slug (optional)', h('input', { name: 'slug', pattern: '[a-z0-9][a-z0-9-]*', autocomplete: 'off' }),
      'Used in API paths; derived from the name when left blank.'),
  ], 'Create workspace', async (data) => {
    const body = { name: data.get('name') };
    if (data.get('slug')) body.slug = data.get('slug');
    const workspace = await api('POST', '/v1/workspaces', body);
    await refreshMe();
    navigate(`/w/${workspace.slug}/tokens`);
  });
  const back = me.memberships.length
    ? h('p', null, h('a', { href: `/w/${me.memberships[0].workspace_slug}/tokens` }, 'Back to your workspace'))
    : null;
  return centered(me.memberships.length ? 'New workspace' : 'Create your first workspace',
    invitations, create, back);
}
