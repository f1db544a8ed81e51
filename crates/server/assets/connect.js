// The hosted connect page (SPEC §7). The server renders the shell; this
// script takes the connect token out of the address bar, keeps it only in
// a variable, and drives the connect-token API: list requirements, submit
// credentials, start OAuth2 / action-connector links, disconnect.
//
// Everything is built with DOM methods and textContent (never innerHTML):
// titles, descriptions and error messages are data, not markup.
(() => {
  'use strict';

  // 1. The token leaves the URL first, on every variant of the page, so it
  //    is not kept in history, bookmarks or screenshots of the address bar.
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token') || '';
  if (params.has('token')) {
    window.history.replaceState(null, '', '/connect');
  }
  if (document.body.dataset.page !== 'connect') {
    return;
  }

  const REDIRECT_DELAY_MS = 2000;
  const root = document.getElementById('requirements');
  const page = {
    session: null,
    requirements: [],
    loaded: false,
    redirectTimer: 0,
    clock: 0,
  };

  class Expired extends Error {}

  // ---------------------------------------------------------------- DOM

  /** `h('p', {class: 'x'}, 'text', child)`: an element with attributes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (key.startsWith('on')) {
        el.addEventListener(key.slice(2), value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  /** "cannot be blank" → "Cannot be blank". */
  function sentence(text) {
    const s = String(text || '').trim();
    return s ? s[0].toUpperCase() + s.slice(1) : s;
  }

  // --------------------------------------------------------------- time

  const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function ago(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    if (Math.abs(seconds) < 45) return 'just now';
    const steps = [
      ['minute', 60],
      ['hour', 3600],
      ['day', 86400],
      ['month', 2592000],
      ['year', 31536000],
    ];
    let unit = 'minute';
    let size = 60;
    for (const [name, length] of steps) {
      if (Math.abs(seconds) >= length) {
        unit = name;
        size = length;
      }
    }
    return relative.format(Math.round(seconds / size), unit);
  }

  /** `<time>` showing "5 minutes ago", the exact moment as its title. */
  function timeElement(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return null;
    return h('time', { datetime: iso, title: absolute.format(date), 'data-relative': '' }, ago(date));
  }

  function refreshTimes() {
    for (const el of document.querySelectorAll('time[data-relative]')) {
      el.textContent = ago(new Date(el.getAttribute('datetime')));
    }
  }

  // ---------------------------------------------------------------- API

  /** Calls the connect-token API. A 401 ends the page (`Expired`). */
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      return {
        ok: false,
        status: 0,
        body: { error: { message: 'the server could not be reached; check your connection and try again' } },
      };
    }
    if (response.status === 401) {
      showExpired();
      throw new Expired('connect token rejected');
    }
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

  // ------------------------------------------------------ whole-page states

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

  // ----------------------------------------------------- requirement cards

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

  /** Form fields from the connection type's JSON Schema. */
  function fieldsOf(req) {
    const type = req.connection_type;
    const schema = type.schema || {};
    const required = new Set(schema.required || []);
    const secret = new Set(type.secret_fields || []);
    const fields = Object.entries(schema.properties || {}).map(([name, property], index) => ({
      name,
      property: property || {},
      required: required.has(name),
      secret: secret.has(name) || (property && property.writeOnly === true),
      index,
    }));
    // Required before optional; within those, plain before secret, so a URL
    // comes before its API key.
    fields.sort((a, b) => a.required !== b.required ? (a.required ? -1 : 1)
      : a.secret !== b.secret ? (a.secret ? 1 : -1) : a.index - b.index);
    return fields;
  }

  function isUrlField(field) {
    const p = field.property;
    return p.format === 'uri' || p.format === 'url' || field.name === 'url' || field.name.endsWith('_url');
  }

  function fieldInput(req, field, id, describedBy) {
    const p = field.property;
    const common = {
      id,
      name: field.name,
      required: field.required,
      'aria-required': field.required ? 'true' : false,
      'aria-describedby': describedBy || false,
    };
    if (Array.isArray(p.enum)) {
      return h(
        'select',
        { ...common, class: 'input' },
        field.required ? null : h('option', { value: '' }, '—'),
        p.enum.map((v) => h('option', { value: String(v) }, String(v))),
      );
    }
    if (p.type === 'boolean') {
      return h('input', { ...common, type: 'checkbox', required: false, 'aria-required': false });
    }
    let type = 'text';
    const extra = { autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off' };
    if (field.secret) {
      type = 'password';
    } else if (isUrlField(field)) {
      type = 'url';
      extra.inputmode = 'url';
      extra.placeholder = 'https://';
    } else if (p.type === 'integer' || p.type === 'number') {
      type = 'number';
      extra.inputmode = p.type === 'integer' ? 'numeric' : 'decimal';
    } else if (p.format === 'email') {
      type = 'email';
    }
    return h('input', { ...common, ...extra, type, class: 'input' });
  }

  function credentialsForm(req, completed) {
    const fields = fieldsOf(req);
    const formId = `req-${req.name}-form`;
    const form = h('form', { class: 'req-form', id: formId, novalidate: true, 'aria-labelledby': `req-${req.name}-title` });
    for (const field of fields) {
      const id = `req-${req.name}-${field.name}`;
      const hintId = field.property.description ? `${id}-hint` : null;
      const label = h(
        'label',
        { for: id },
        field.property.title || field.name,
        field.required
          ? [h('span', { class: 'required-mark', 'aria-hidden': 'true' }, '*'), h('span', { class: 'visually-hidden' }, ' (required)')]
          : h('span', { class: 'optional' }, ' (optional)'),
      );
      const input = fieldInput(req, field, id, hintId);
      const wrap = field.property.type === 'boolean'
        ? h('div', { class: 'field checkbox', 'data-field': field.name }, input, label)
        : h('div', { class: 'field', 'data-field': field.name }, label, hintId ? h('p', { class: 'hint', id: hintId }, field.property.description) : null, input);
      form.append(wrap);
    }
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, completed ? 'Replace' : 'Connect');
    const actions = h('div', { class: 'actions' }, submit);
    if (completed) {
      actions.append(h('button', { type: 'button', class: 'btn btn-secondary', 'data-action': 'cancel-replace' }, 'Cancel'));
    }
    form.append(actions);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submitCredentials(req, form, fields, submit);
    });
    return form;
  }

  function section(req) {
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
      const when = req.connected_at ? timeElement(req.connected_at) : null;
      el.append(h('p', { class: 'req-meta' }, when ? ['Connected ', when, '.'] : 'Connected.'));
    }

    const actions = h('div', { class: 'actions' });
    let form = null;
    if (flow === 'credentials') {
      form = credentialsForm(req, completed);
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
      button.addEventListener('click', () => disconnect(req, button, el));
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

  function setBusy(button, busy, label) {
    if (busy) {
      button.dataset.label = button.textContent;
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
      button.replaceChildren(h('span', { class: 'btn-spinner', 'aria-hidden': 'true' }), label);
    } else if (button.isConnected) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      button.textContent = button.dataset.label || button.textContent;
    }
  }

  // ------------------------------------------------------------ actions

  function clearErrors(form) {
    for (const p of form.querySelectorAll('.field-error, .form-error')) p.remove();
    for (const input of form.querySelectorAll('[aria-invalid]')) {
      input.removeAttribute('aria-invalid');
      const hint = input.id && document.getElementById(`${input.id}-hint`);
      if (hint) input.setAttribute('aria-describedby', hint.id);
      else input.removeAttribute('aria-describedby');
    }
  }

  function readConfig(form, fields) {
    const config = {};
    for (const field of fields) {
      const input = form.elements.namedItem(field.name);
      if (!input) continue;
      if (field.property.type === 'boolean') {
        config[field.name] = input.checked;
        continue;
      }
      const raw = input.value;
      if (raw.trim() === '' && !field.required) continue;
      if ((field.property.type === 'integer' || field.property.type === 'number') && raw.trim() !== '' && !Number.isNaN(Number(raw))) {
        config[field.name] = Number(raw);
      } else {
        config[field.name] = raw;
      }
    }
    return config;
  }

  /** Puts each `details["config.<field>"]` under its input, the rest on the form. */
  function showFormErrors(req, form, fields, body) {
    const details = (body && body.error && body.error.details) || {};
    const known = new Set(fields.map((f) => f.name));
    const general = [];
    let first = null;
    for (const [key, message] of Object.entries(details)) {
      const field = key.startsWith('config.') ? key.slice('config.'.length) : null;
      if (field && known.has(field)) {
        const input = form.elements.namedItem(field);
        const errorId = `req-${req.name}-${field}-error`;
        const wrap = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
        const title = fields.find((f) => f.name === field).property.title || field;
        wrap.append(h('p', { class: 'field-error', id: errorId, role: 'alert' }, `${title} ${message}`));
        input.setAttribute('aria-invalid', 'true');
        const hint = document.getElementById(`${input.id}-hint`);
        input.setAttribute('aria-describedby', hint ? `${hint.id} ${errorId}` : errorId);
        first = first || input;
      } else {
        general.push(message);
      }
    }
    if (general.length || !Object.keys(details).length) {
      const text = general.length ? general.map(sentence).join(' ') : sentence(errorMessage(body));
      const p = h('p', { class: 'form-error', id: `req-${req.name}-form-error`, role: 'alert' }, text);
      form.querySelector('.actions').before(p);
    }
    if (first) first.focus();
  }

  async function submitCredentials(req, form, fields, submit) {
    clearErrors(form);
    const config = readConfig(form, fields);
    setBusy(submit, true, req.status === 'completed' ? 'Replacing…' : 'Connecting…');
    try {
      const reply = await api('POST', requirementPath(req, 'credentials'), { type: req.connection_type.type, config });
      if (reply.status === 201) {
        await refresh(req.name);
        return;
      }
      showFormErrors(req, form, fields, reply.body);
    } catch (err) {
      if (!(err instanceof Expired)) throw err;
    } finally {
      setBusy(submit, false);
    }
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

  async function disconnect(req, button, el) {
    clearCardError(req);
    setBusy(button, true, 'Disconnecting…');
    try {
      const reply = await api('DELETE', requirementPath(req, 'connection'));
      if (reply.ok) {
        await refresh(req.name);
        return;
      }
      showCardError(el, req, `Could not disconnect: ${errorMessage(reply.body)}`, button);
    } catch (err) {
      if (!(err instanceof Expired)) throw err;
    } finally {
      setBusy(button, false);
    }
  }

  // ------------------------------------------------------------- render

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
      return keep ? old : section(req);
    });

    const children = [summary(done, reqs.length)];
    let box = null;
    if (complete) {
      box = wasComplete && !justFinished ? root.querySelector('#all-set') : allSet(justFinished);
      children.push(box);
    }
    children.push(...cards);
    root.replaceChildren(...children);
    root.setAttribute('aria-busy', 'false');

    if (!complete) {
      window.clearTimeout(page.redirectTimer);
      page.redirectTimer = 0;
    }
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

  start();
})();
