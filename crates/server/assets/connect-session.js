// The connect page's session with the connect-token API: the token (held
// only in this module's memory), the page's state, the calls, how their
// errors are worded, and the expired-link page a rejected token ends in.
//
// This module only declares; nothing runs when it is imported.

import { h, request } from './common.js';

const page = {
  session: null,
  requirements: [],
  loaded: false,
  redirectTimer: 0,
  clock: 0,
};

let token = '';

/** Keeps the connect token for the API calls (never stored anywhere). */
function useToken(value) {
  token = value;
}

/** Thrown by `api` once the token is rejected and the page has ended. */
class Expired extends Error {}

/** The connect page's credentials: the bearer token, no cookies, no cache. */
const BEARER = {
  headers: () => ({ Authorization: `Bearer ${token}` }),
  init: { cache: 'no-store', credentials: 'omit' },
  unauthorized() {
    showExpired();
    throw new Expired('connect token rejected');
  },
};

/**
 * Calls the connect-token API: `{ ok, status, body }`, with status 0 when
 * the server cannot be reached. A 401 ends the page (`Expired`).
 */
async function api(method, path, body) {
  try {
    return await request(method, path, body, BEARER);
  } catch (err) {
    if (err instanceof Expired) throw err;
    return {
      ok: false,
      status: 0,
      body: { error: { message: 'the server could not be reached; check your connection and try again' } },
    };
  }
}

function requirementPath(req, suffix) {
  return `/v1/connect/requirements/${encodeURIComponent(req.id)}/${suffix}`;
}

/** The most useful part of an error envelope, as the API words it. */
function errorMessage(body, preferred) {
  const error = (body && body.error) || {};
  const details = error.details || {};
  if (preferred && details[preferred]) return details[preferred];
  const first = Object.values(details)[0];
  if (first) return first;
  if (error.message && error.code !== 'internal') return error.message;
  return 'something went wrong, please try again';
}

/** An http(s) URL, or null. */
function safeUrl(value) {
  if (typeof value !== 'string' || !value) return null;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

function brand() {
  return h('p', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Secure connection');
}

/** The token expired or was revoked while the page was open. */
function showExpired() {
  window.clearTimeout(page.redirectTimer);
  window.clearInterval(page.clock);
  document.body.dataset.page = 'connect-error';
  document.title = 'This link has expired or is no longer valid';
  const heading = h('h1', { tabindex: '-1' }, 'This link has expired or is no longer valid');
  const shell = document.querySelector('.shell') || document.body;
  shell.replaceChildren(
    h('header', { class: 'masthead' }, brand()),
    h(
      'main',
      { class: 'card notice', id: 'notice' },
      h('span', { class: 'notice-icon', 'aria-hidden': 'true' }),
      heading,
      h('p', {}, 'For your security, connect links work only for a limited time.'),
      h('p', {}, 'Go back to the app you came from and ask for a new link.'),
    ),
  );
  heading.focus();
}

export { Expired, api, errorMessage, page, requirementPath, safeUrl, showExpired, useToken };
