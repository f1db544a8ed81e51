// One card per requirement: its title, kind and status, and the actions
// that fulfil it (a credentials form, an OAuth2 or action-connector sign-in,
// replacing, disconnecting), with their errors shown on the card.
//
// This module only declares; nothing runs when it is imported.

import { h, sentence, timeElement } from './common.js';
import { clearErrors, credentialsForm, setBusy } from './connect-forms.js';
import { Expired, api, errorMessage, requirementPath, safeUrl } from './connect-session.js';

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
  const flow = flowOf(req);
  const titleId = `req-${req.name}-title`;
  const errorId = `req-${req.name}-error`;
  const el = h('section', {
    class: 'requirement card',
    'data-name': req.name,
    'data-status': completed ? 'completed' : 'pending',
    'aria-labelledby': titleId,
  });
  el.dataset.key = keyOf(req);

  const kind = kindOf(req);
  el.append(
    h(
      'div',
      { class: 'req-head' },
      h('div', { class: 'req-titles' }, h('h2', { id: titleId, tabindex: '-1' }, titleOf(req)), kind ? h('p', { class: 'req-kind' }, kind) : null),
      h('p', { class: 'status', id: `req-${req.name}-status` }, completed ? 'Connected' : 'Not connected'),
    ),
  );
  if (req.description) {
    el.append(h('p', { class: 'req-description' }, req.description));
  }
  if (completed) {
    const when = req.connected_at ? connectedAt(req.connected_at) : null;
    el.append(h('p', { class: 'req-meta' }, when ? ['Connected ', when, '.'] : 'Connected.'));
  }

  const actions = h('div', { class: 'actions' });
  let form = null;
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
      { type: 'button', class: completed ? 'btn btn-secondary' : 'btn btn-primary', 'data-action': 'authorize', 'aria-describedby': titleId },
      completed ? 'Reconnect' : 'Connect',
    );
    button.addEventListener('click', () => authorize(req, flow, button, el));
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

/** Changes when what a card shows changes. */
function keyOf(req) {
  return JSON.stringify([req.id, req.status, req.connected_at || '', flowOf(req)]);
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

async function authorize(req, flow, button, el) {
  clearCardError(req);
  setBusy(button, true, 'Opening…');
  const path = requirementPath(req, flow === 'oauth2' ? 'oauth2/authorize' : 'action-connector/authorize');
  let leaving = false;
  try {
    const reply = await api('POST', path);
    const url = reply.ok && reply.body && reply.body.data && safeUrl(reply.body.data.url);
    if (url) {
      leaving = true;
      window.location.assign(url);
      return;
    }
    showCardError(el, req, `Could not start the connection: ${errorMessage(reply.body, 'requirement')}`, button);
  } catch (err) {
    if (!(err instanceof Expired)) throw err;
  } finally {
    if (!leaving) setBusy(button, false);
  }
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

export { keyOf, section };
