// The one way the dashboard talks to the server: the public /v1 API, authenticated by the
// HttpOnly session cookie, with the session's CSRF token on every change.

let csrfToken = null;
let onSignedOut = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called when the session ends (expired, signed out elsewhere). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `The server answered ${status}.`);
    this.status = status;
    this.code = body?.error;
    this.field = body?.field;
  }
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { error: 'network', message: 'Cannot reach the Tooken server. Check your connection and try again.' });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) onSignedOut();
    throw new ApiError(response.status, data);
  }
  return data;
}

/** A path inside one workspace: `/v1/workspaces/{slug}/tokens`. */
export function inWorkspace(slug, path) {
  return `/v1/workspaces/${encodeURIComponent(slug)}${path}`;
}

/** Adds the defined entries of `params` as a query string. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
