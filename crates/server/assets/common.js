// Shared by the hosted connect page and the developer dashboard: DOM
// helpers, the JSON API call, and date formatting. Each page brings its own
// credentials to the API call; nothing here reads the page or keeps state.
//
// Text is set with textContent (never innerHTML): names, titles and error
// messages are data, not markup.

// ------------------------------------------------------------------ DOM

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** `h('p', {class: 'x'}, 'text', child)`: an element with attributes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** "cannot be blank" → "Cannot be blank". */
function sentence(text) {
  const s = String(text ?? '').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

// ------------------------------------------------------------------ API

/** An error envelope (`{"error": {"code", "message", "details"}}`) as an error. */
class ApiError extends Error {
  constructor(status, body) {
    const err = body?.error ?? {};
    super(err.message || `Request failed (${status})`);
    this.status = status;
    this.code = err.code;
    this.details = err.details ?? {};
  }
}

/**
 * One same-origin JSON API call. `auth` is how the calling page proves who
 * it is:
 * - `headers(method)`: headers to add (a bearer token, a CSRF token);
 * - `init`: fetch options to add (`credentials`, `cache`);
 * - `unauthorized()`: runs on a 401, before the body is read, and throws.
 *
 * Resolves to `{ ok, status, body }`, `body` being the parsed JSON (null
 * for a 204 or a body that is not JSON); rejects when the server cannot be
 * reached.
 */
async function request(method, path, body, auth) {
  const headers = { Accept: 'application/json', ...auth.headers(method) };
  const init = { ...auth.init, method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) auth.unauthorized();
  let json = null;
  if (response.status !== 204) {
    try {
      json = await response.json();
    } catch {
      json = null;
    }
  }
  return { ok: response.ok, status: response.status, body: json };
}

/** `request`, resolving to the body; an error reply throws an `ApiError`. */
async function call(method, path, body, auth) {
  const reply = await request(method, path, body, auth);
  if (!reply.ok) throw new ApiError(reply.status, reply.body);
  return reply.body;
}

// ----------------------------------------------------------------- time

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

const UNITS = [
  ['year', 31536000],
  ['month', 2592000],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
];

/**
 * "3 minutes ago", "in 2 days", in the largest unit that fits; "just now"
 * under `justNow` seconds either way (at most 60).
 */
function ago(date, { justNow = 45 } = {}) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (Math.abs(seconds) < justNow) return 'just now';
  const [unit, size] = UNITS.find(([, length]) => Math.abs(seconds) >= length) ?? UNITS[UNITS.length - 1];
  return relative.format(Math.round(seconds / size), unit);
}

/** The exact moment in the reader's locale, e.g. "Mar 12, 2025, 2:05 PM". */
function exact(date) {
  return absolute.format(date);
}

/**
 * A `<time>` showing `ago(...)`, the exact moment as its title. A `live`
 * one carries `data-relative` and is kept current by `refreshTimes`.
 */
function timeElement(iso, { live = false, justNow } = {}) {
  const date = new Date(iso);
  return h('time', { datetime: iso, title: exact(date), 'data-relative': live }, ago(date, { justNow }));
}

/** Relabels every live `<time>` on the page. */
function refreshTimes() {
  for (const el of document.querySelectorAll('time[data-relative]')) {
    el.textContent = ago(new Date(el.getAttribute('datetime')));
  }
}

export { $, $$, ApiError, ago, call, exact, h, refreshTimes, request, sentence, timeElement };
