// Credentials forms generated from a connection type's JSON Schema: the
// fields and their inputs, reading the values, submitting them, and the
// API's errors shown under each input; plus the busy state of a button.
//
// This module only declares; nothing runs when it is imported.

import { h, sentence } from './common.js';
import { Expired, api, errorMessage, requirementPath } from './connect-session.js';

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

/**
 * The form that connects (or, when `completed`, replaces) a credentials
 * requirement. `onChange(name)` runs once the server has accepted them.
 */
function credentialsForm(req, completed, onChange) {
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
    submitCredentials(req, form, fields, submit, onChange);
  });
  return form;
}

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

async function submitCredentials(req, form, fields, submit, onChange) {
  clearErrors(form);
  const config = readConfig(form, fields);
  setBusy(submit, true, req.status === 'completed' ? 'Replacing…' : 'Connecting…');
  try {
    const reply = await api('POST', requirementPath(req, 'credentials'), { type: req.connection_type.type, config });
    if (reply.status === 201) {
      await onChange(req.name);
      return;
    }
    showFormErrors(req, form, fields, reply.body);
  } catch (err) {
    if (!(err instanceof Expired)) throw err;
  } finally {
    setBusy(submit, false);
  }
}

/** A spinner and `label` on `button` while its action runs; then back. */
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

export { clearErrors, credentialsForm, setBusy };
