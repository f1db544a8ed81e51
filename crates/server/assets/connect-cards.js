// One card per requirement: its title, kind and status, and the actions
// that fulfil it (a credentials form, an OAuth2 or action-connector sign-in,
// replacing, disconnecting), with their errors shown on the card.
//
// An OAuth2 or action-connector sign-in happens in a popup: it is opened
// inside the click (so that popup blockers allow it), pointed at the
// provider once the server has answered, and Gatehouse's callback page in
// it posts the outcome back (`signInFinished`) before closing itself.
//
// This module only declares; nothing runs when it is imported.

import { h, sentence, timeElement } from './common.js';
import { clearErrors, credentialsForm, setBusy } from './connect-forms.js';
import { Expired, api, errorMessage, page, requirementPath, safeUrl } from './connect-session.js';

const POPUP_NAME = 'gatehouse-oauth2';
const POPUP_FEATURES = 'popup,width=520,height=720';
const POPUP_POLL_MS = 500;
const DENIED = 'Not connected: you did not grant access.';
const FAILED = 'Not connected: the sign-in did not complete. Please try again.';

/**
 * The sign-in under way, if any: its requirement, popup, button, the
 * refresh to run, and the timer that notices the popup being closed.
 */
let signIn = null;

function titleOf(req) {
  const type = req.connection_type;
  return req.title || (type && type.title) || appSlug(req) || req.name;
}

function appSlug(req) {
  return (req.spec && req.spec.data && req.spec.data.app_slug) || '';
}

/** What kind of connection this is, in a few words (or null). */
function kindOf(req) {
  const type = req.connection_type;
  if (req.type === 'action_connector_account') {
    const slug = appSlug(req);
    return slug ? `Sign in to your ${sentence(slug)} account` : 'Sign in to your account';
  }
  if (!type) return null;
  if (type.auth === 'oauth2') return `Sign in with ${type.title}`;
  return type.title !== titleOf(req) ? type.title : null;
}

/** How the requirement is fulfilled: 'credentials', 'oauth2', 'account' or null. */
function flowOf(req) {
  if (req.type === 'action_connector_account') return 'account';
  const type = req.connection_type;
  if (req.type !== 'connection' || !type) return null;
  return type.auth === 'oauth2' ? 'oauth2' : 'credentials';
}

/** "Connected 5 minutes ago", kept current; null for a date that is not one. */
function connectedAt(iso) {
  if (Number.isNaN(new Date(iso).getTime())) return null;
  return timeElement(iso, { live: true });
}

/**
 * The card of `req`. `onChange(name)` runs once the server has changed the
 * requirement (connected, replaced or disconnected).
 */
function section(req, onChange) {
  const completed = req.status === 'completed';
  const expired = !completed && req.connection_status === 'expired';
  const flow = flowOf(req);
  const titleId = `req-${req.name}-title`;
  const errorId = `req-${req.name}-error`;
  const el = h('section', {
    class: 'requirement card',
    'data-name': req.name,
    'data-status': completed ? 'completed' : 'pending',
    'data-connection': expired ? 'expired' : null,
    'aria-labelledby': titleId,
  });
  el.dataset.key = keyOf(req);

  const kind = kindOf(req);
  el.append(
    h(
      'div',
      { class: 'req-head' },
      h('div', { class: 'req-titles' }, h('h2', { id: titleId, tabindex: '-1' }, titleOf(req)), kind ? h('p', { class: 'req-kind' }, kind) : null),
      h('p', { class: 'status', id: `req-${req.name}-status` }, completed ? 'Connected' : expired ? 'Expired' : 'Not connected'),
    ),
  );
  if (req.description) {
    el.append(h('p', { class: 'req-description' }, req.description));
  }
  if (completed) {
    el.append(h('p', { class: 'req-meta', id: `req-${req.name}-meta` }, connectedLine(req)));
  } else if (expired) {
    el.append(
      h(
        'p',
        { class: 'req-expired', id: `req-${req.name}-expired` },
        flow === 'credentials'
          ? 'These credentials expired. Enter them again to keep using them.'
          : 'Your connection expired. Reconnect to keep using it.',
      ),
    );
  }

  const actions = h('div', { class: 'actions' });
  let form = null;
  // A token minted without the platform's key may only add: what is
  // connected stays as it is (SPEC §6), so nothing here offers to change it.
  const addOnly = Boolean(page.session && page.session.add_only);
  if (completed && addOnly) {
    el.append(
      h(
        'p',
        { class: 'req-meta', id: `req-${req.name}-locked` },
        'To change or remove this connection, use the app itself.',
      ),
    );
    return el;
  }
  if (flow === 'credentials') {
    form = credentialsForm(req, completed, onChange);
    if (completed) {
      form.hidden = true;
      const toggle = h(
        'button',
        { type: 'button', class: 'btn btn-secondary', 'aria-expanded': 'false', 'aria-controls': form.id, 'data-action': 'replace' },
        'Replace credentials',
      );
      toggle.addEventListener('click', () => {
        form.hidden = false;
        toggle.setAttribute('aria-expanded', 'true');
        actions.hidden = true;
        const first = form.querySelector('input, select');
        if (first) first.focus();
      });
      form.querySelector('[data-action="cancel-replace"]').addEventListener('click', () => {
        form.hidden = true;
        actions.hidden = false;
        toggle.setAttribute('aria-expanded', 'false');
        clearErrors(form);
        toggle.focus();
      });
      actions.append(toggle);
    }
  } else if (flow === 'oauth2' || flow === 'account') {
    const button = h(
      'button',
      {
        type: 'button',
        class: completed ? 'btn btn-secondary' : 'btn btn-primary',
        'data-action': 'authorize',
        'aria-describedby': expired ? `${titleId} req-${req.name}-expired` : titleId,
      },
      completed || expired ? 'Reconnect' : 'Connect',
    );
    button.addEventListener('click', () => authorize(req, flow, button, el, onChange));
    actions.append(button);
  } else if (!completed) {
    el.append(h('p', { class: 'form-error', id: errorId, role: 'alert' }, 'This connection type is not available here. Please contact the app’s support.'));
  }
  if (completed) {
    const button = h('button', { type: 'button', class: 'btn btn-danger', 'data-action': 'disconnect', 'aria-describedby': titleId }, 'Disconnect');
    button.addEventListener('click', () => disconnect(req, button, el, onChange));
    actions.append(button);
  }
  if (form && !completed) {
    el.append(form);
  } else {
    if (actions.childElementCount) el.append(actions);
    if (form) el.append(form);
  }
  return el;
}

/** "Connected as ada@example.com, 5 minutes ago." (or without the account or time). */
function connectedLine(req) {
  const label = req.account && req.account.label;
  const when = req.connected_at ? connectedAt(req.connected_at) : null;
  const who = label ? ['Connected as ', h('strong', { class: 'req-account' }, label)] : ['Connected'];
  if (!when) return [...who, '.'];
  return label ? [...who, ', ', when, '.'] : [...who, ' ', when, '.'];
}

/** Changes when what a card shows changes. */
function keyOf(req) {
  const label = (req.account && req.account.label) || '';
  return JSON.stringify([req.id, req.status, req.connected_at || '', flowOf(req), req.connection_status || '', label]);
}

/** A message next to the card's actions (`#req-<name>-error`). */
function showCardError(el, req, message, control) {
  const id = `req-${req.name}-error`;
  let p = document.getElementById(id);
  if (!p) {
    p = h('p', { class: 'form-error', id, role: 'alert' });
    el.append(p);
  }
  p.textContent = message;
  if (control) control.setAttribute('aria-describedby', `req-${req.name}-title ${id}`);
}

function clearCardError(req) {
  const p = document.getElementById(`req-${req.name}-error`);
  if (p) p.remove();
}

/** The card of the requirement named `name`, as the page shows it now. */
function cardOf(name) {
  return document.querySelector(`section.requirement[data-name="${CSS.escape(name)}"]`);
}

function clearBlocked(req) {
  const box = document.getElementById(`req-${req.name}-blocked`);
  if (box) box.remove();
}

/**
 * The click on Connect / Sign in / Reconnect. The popup is opened here,
 * before anything is awaited, so that it counts as opened by the click.
 */
function authorize(req, flow, button, el, onChange) {
  clearCardError(req);
  clearBlocked(req);
  const popup = window.open('', POPUP_NAME, POPUP_FEATURES);
  startSignIn(req, flow, button, el, onChange, popup);
}

async function startSignIn(req, flow, button, el, onChange, popup) {
  setBusy(button, true, 'Opening…');
  const path = requirementPath(req, flow === 'oauth2' ? 'oauth2/authorize' : 'action-connector/authorize');
  let waiting = false;
  try {
    const reply = await api('POST', path);
    const url = reply.ok && reply.body && reply.body.data && safeUrl(reply.body.data.url);
    if (!url) {
      if (popup) popup.close();
      showCardError(el, req, `Could not start the connection: ${errorMessage(reply.body, 'requirement')}`, button);
      return;
    }
    if (!popup || popup.closed) {
      showBlocked(el, req, url, button, onChange);
      return;
    }
    popup.location.href = url;
    popup.focus();
    waiting = true;
    watch(req, popup, button, onChange);
  } catch (err) {
    if (popup) popup.close();
    if (!(err instanceof Expired)) throw err;
  } finally {
    if (!waiting) setBusy(button, false);
  }
}

/**
 * The browser refused the popup: a link on the card opens the provider
 * (a click on it is never blocked; it opens a tab if a window cannot be).
 */
function showBlocked(el, req, url, button, onChange) {
  clearBlocked(req);
  const id = `req-${req.name}-blocked`;
  const link = h(
    'a',
    { class: 'btn btn-primary', href: url, target: POPUP_NAME, 'data-action': 'open-popup', 'aria-describedby': `${id}-text` },
    'Open the sign-in window',
  );
  link.addEventListener('click', (event) => {
    const popup = window.open(url, POPUP_NAME, POPUP_FEATURES);
    window.setTimeout(() => box.remove(), 0);
    if (!popup) return; // the link itself opens it, in a new tab or window
    event.preventDefault();
    popup.focus();
    watch(req, popup, button, onChange);
  });
  const box = h(
    'div',
    { class: 'popup-blocked', id },
    h('p', { id: `${id}-text`, role: 'alert' }, 'Your browser blocked the sign-in window. Open it here to continue.'),
    link,
  );
  const actions = el.querySelector('.actions');
  if (actions) actions.after(box);
  else el.append(box);
  link.focus();
}

/** Follows the popup: the sign-in ends with its message, or when it is closed. */
function watch(req, popup, button, onChange) {
  endSignIn();
  setBusy(button, false); // from "Opening…"
  setBusy(button, true, 'Waiting for sign-in…');
  const timer = window.setInterval(() => {
    if (!popup.closed || signIn === null || signIn.popup !== popup) return;
    // Closed without an answer (or the answer could not reach this page):
    // the requirements say what happened.
    endSignIn();
    onChange(null).catch(ignoreExpired);
  }, POPUP_POLL_MS);
  signIn = { req, popup, button, onChange, timer };
}

function endSignIn() {
  if (!signIn) return;
  window.clearInterval(signIn.timer);
  setBusy(signIn.button, false);
  signIn = null;
}

function ignoreExpired(err) {
  if (!(err instanceof Expired)) throw err;
}

/**
 * The callback page's message (`{type: "gatehouse:oauth2", status,
 * requirement_id}`, already checked to come from this origin): reloads the
 * requirements and, unless it connected, says why on the card.
 * `onChange` is the page's refresh, for a sign-in started elsewhere.
 */
async function signInFinished(data, onChange) {
  const current = signIn;
  endSignIn();
  const refresh = (current && current.onChange) || onChange;
  const req = page.requirements.find((r) => r.id === data.requirement_id) || (current && current.req);
  if (data.status === 'connected') {
    await refresh(req ? req.name : null);
    return;
  }
  await refresh(null);
  if (!req) return;
  const el = cardOf(req.name);
  if (!el) return;
  clearBlocked(req);
  const button = el.querySelector('[data-action="authorize"]');
  showCardError(el, req, data.status === 'denied' ? DENIED : FAILED, button);
  if (button) button.focus();
}

async function disconnect(req, button, el, onChange) {
  clearCardError(req);
  setBusy(button, true, 'Disconnecting…');
  try {
    const reply = await api('DELETE', requirementPath(req, 'connection'));
    if (reply.ok) {
      await onChange(req.name);
      return;
    }
    showCardError(el, req, `Could not disconnect: ${errorMessage(reply.body)}`, button);
  } catch (err) {
    if (!(err instanceof Expired)) throw err;
  } finally {
    setBusy(button, false);
  }
}

export { keyOf, section, signInFinished };
