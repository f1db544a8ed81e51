// The hosted connect page (SPEC §7), entry module. The server renders the
// shell; this module takes the connect token out of the address bar, then
// loads the requirements and keeps the page in step with them: a summary,
// one card per requirement (connect-cards.js), "All set" and the return to
// the app. An OAuth2 sign-in's popup reports back with a message, taken
// only from this page's own origin; the page tells the platform's page
// that opened or frames it (the browser SDK) when it is complete or
// closed, on the token's allowed origins only. The token lives in connect-session.js;
// forms generated from schemas in connect-forms.js; DOM, API and time
// helpers in common.js.
//
// Everything is built with DOM methods and textContent (never innerHTML):
// titles, descriptions and error messages are data, not markup.
//
// The modules imported here only declare, so the address-bar clean-up
// below is the first thing the page's scripts do.

import { h, refreshTimes, sentence } from './common.js';
import { keyOf, section, signInFinished } from './connect-cards.js';
import { Expired, api, errorMessage, page, safeUrl, showExpired, useToken } from './connect-session.js';

// 1. The token leaves the URL first, on every variant of the page, so it
//    is not kept in history, bookmarks or screenshots of the address bar.
const params = new URLSearchParams(window.location.search);
const token = params.get('token') || '';
if (params.has('token')) {
  window.history.replaceState(null, '', '/connect');
}

const REDIRECT_DELAY_MS = 2000;
const SDK_MESSAGE = 'gatehouse:connect';
const root = document.getElementById('requirements');

function showLoadError(message) {
  root.setAttribute('aria-busy', 'false');
  root.replaceChildren(
    h(
      'div',
      { class: 'card notice', id: 'load-error' },
      h('h2', {}, 'We could not load your connections'),
      h('p', {}, message),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-primary', onclick: () => start() }, 'Try again')),
    ),
  );
}

function appName() {
  return (page.session && page.session.app && page.session.app.name) || 'the app';
}

function summary(done, total) {
  const text = total === 0 ? 'Nothing to connect' : `${done} of ${total} connected`;
  return h(
    'div',
    { class: 'summary', id: 'summary' },
    h('p', { class: 'summary-text', id: 'summary-text' }, text),
    total ? h('progress', { class: 'summary-bar', max: total, value: done, 'aria-labelledby': 'summary-text' }) : null,
  );
}

function allSet(justFinished) {
  const app = appName();
  const target = safeUrl(page.session && page.session.redirect_url);
  const box = h(
    'div',
    { id: 'all-set', class: 'card all-set', tabindex: '-1' },
    h('span', { class: 'all-set-icon', 'aria-hidden': 'true' }),
    h('h2', {}, 'All set'),
    h('p', {}, page.requirements.length ? `Everything ${app} needs is connected.` : `${app} does not need any connections.`),
  );
  if (target) {
    if (justFinished) {
      box.append(h('p', { class: 'redirect-note', id: 'redirect-note' }, `Taking you back to ${app}…`));
    }
    box.append(h('a', { class: 'btn btn-primary', id: 'return-link', href: target, rel: 'noreferrer' }, `Return to ${app}`));
  } else {
    box.append(h('p', { class: 'redirect-note' }, 'You can close this page now.'));
  }
  return box;
}

/**
 * Tells the page that opened this one (the SDK's popup) or frames it (its
 * modal) how it ended: `{type: "gatehouse:connect", status, user_id}`,
 * posted once per status to each of the token's `allowed_origins` as the
 * target origin, so the browser delivers it only to a window of one of
 * them. Nothing when the token lists no origins.
 */
function tellOpener(status) {
  const origins = (page.session && page.session.allowed_origins) || [];
  const other = window.opener || (window.parent !== window ? window.parent : null);
  if (!other || !origins.length || page.told === status) return;
  page.told = status;
  const message = { type: SDK_MESSAGE, status, user_id: page.session.user_id };
  for (const origin of origins) {
    try {
      other.postMessage(message, origin);
    } catch {
      // A window that went away meanwhile.
    }
  }
}

/**
 * Shows the current requirements. Cards whose content did not change are
 * kept as they are, so half-typed input in another card survives.
 */
function render(changed) {
  const reqs = page.requirements;
  const done = reqs.filter((r) => r.status === 'completed').length;
  const complete = done === reqs.length;
  const wasComplete = root.querySelector('#all-set') !== null;
  const justFinished = complete && page.loaded && !wasComplete;

  const existing = new Map();
  for (const el of root.querySelectorAll('section.requirement')) existing.set(el.dataset.name, el);
  const cards = reqs.map((req) => {
    const old = existing.get(req.name);
    const keep = old && req.name !== changed && old.dataset.key === keyOf(req);
    return keep ? old : section(req, refresh);
  });

  const children = [summary(done, reqs.length)];
  let box = null;
  if (complete) {
    box = wasComplete && !justFinished ? root.querySelector('#all-set') : allSet(justFinished);
    children.push(box);
  }
  children.push(...cards);
  const cancel = !complete && safeUrl(page.session && page.session.error_redirect_url);
  if (cancel) {
    // The token's error_redirect_url: leave without finishing.
    children.push(
      h('p', { class: 'redirect-note', id: 'cancel' }, h('a', { id: 'cancel-link', href: cancel, rel: 'noreferrer' }, `Cancel and return to ${appName()}`)),
    );
  }
  root.replaceChildren(...children);
  root.setAttribute('aria-busy', 'false');

  if (!complete) {
    window.clearTimeout(page.redirectTimer);
    page.redirectTimer = 0;
  }
  if (complete) tellOpener('complete');
  if (justFinished) {
    box.focus();
    const target = safeUrl(page.session && page.session.redirect_url);
    if (target) {
      window.clearTimeout(page.redirectTimer);
      page.redirectTimer = window.setTimeout(() => window.location.assign(target), REDIRECT_DELAY_MS);
    }
  } else if (changed) {
    const heading = document.getElementById(`req-${changed}-title`);
    if (heading) heading.focus();
  }
  page.loaded = true;
}

/** Reloads the requirements after `changed` (a requirement's name) changed. */
async function refresh(changed) {
  const reply = await api('GET', '/v1/connect/requirements');
  if (!reply.ok) {
    showLoadError(sentence(errorMessage(reply.body)));
    return;
  }
  page.requirements = reply.body.data || [];
  render(changed);
}

async function start() {
  if (!token) {
    showExpired();
    return;
  }
  root.setAttribute('aria-busy', 'true');
  try {
    const [session, requirements] = await Promise.all([
      api('GET', '/v1/connect/session'),
      api('GET', '/v1/connect/requirements'),
    ]);
    if (!session.ok || !requirements.ok) {
      showLoadError(sentence(errorMessage((session.ok ? requirements : session).body)));
      return;
    }
    page.session = session.body.data;
    page.requirements = requirements.body.data || [];
    root.replaceChildren();
    render(null);
    page.clock = window.setInterval(refreshTimes, 30000);
  } catch (err) {
    if (!(err instanceof Expired)) throw err;
  }
}

/** The OAuth2 callback page in the popup: `{type: "gatehouse:oauth2", status, requirement_id}`. */
function onMessage(event) {
  if (event.origin !== window.location.origin || event.data?.type !== 'gatehouse:oauth2') return;
  if (document.body.dataset.page !== 'connect' || !page.loaded) return;
  signInFinished(event.data, refresh).catch((err) => {
    if (!(err instanceof Expired)) throw err;
  });
}

if (document.body.dataset.page === 'connect') {
  useToken(token);
  window.addEventListener('message', onMessage);
  // Closed (or navigated away) before everything was connected.
  window.addEventListener('pagehide', () => {
    if (page.told !== 'complete') tellOpener('closed');
  });
  start();
}
