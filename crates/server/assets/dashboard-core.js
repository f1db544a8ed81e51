// Shared by the dashboard's modules: the management API client and time
// labels (built on common.js, which the connect page shares), the page
// state, dialogs with their error display, and the one-time secret modal.
//
// Rules kept here:
// - Every call is same-origin with the cookie; writes carry X-CSRF-Token
//   from <meta name="csrf-token">; a 401 goes to /login.
// - Only ids are remembered (URL hash, localStorage), never secrets; a new
//   token or signing secret exists in the page only while its modal is open.
// - Text is set with textContent (never innerHTML): names, user ids and
//   error messages are data, not markup.

import { $, $$, ApiError, call, h, sentence, timeElement } from './common.js';

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
const ROLE = document.body.dataset.role ?? 'viewer';
const STORAGE_KEY = 'gatehouse.dashboard';
const PAGE_SIZE = 100;
const CONCURRENCY = 6;

function setStatus(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/** A <time> with a relative label and the exact time as its tooltip. */
function when(iso, fallback = 'never') {
  if (!iso) return h('span', { class: 'muted' }, fallback);
  return timeElement(iso, { justNow: 60 });
}

// ------------------------------------------------------------------ API

/** The dashboard's credentials: the session cookie, and X-CSRF-Token on writes. */
const SESSION = {
  headers: (method) => (method !== 'GET' && method !== 'HEAD' ? { 'X-CSRF-Token': CSRF } : {}),
  init: { credentials: 'same-origin' },
  unauthorized() {
    location.assign('/login');
    throw new ApiError(401, null);
  },
};

/** One management API call; resolves to the parsed body (null for 204). */
function api(method, path, body) {
  return call(method, path, body, SESSION);
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
};

/** Runs `task` over `items`, at most `limit` at once. */
async function eachLimited(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ------------------------------------------------------------ page state

const state = {
  projects: [],
  projectId: '',
  envId: '', // '' = every environment (organization-wide lists)
  tab: 'tokens',
  apps: [],
  selectedAppId: '',
  webhooks: [],
  selectedWebhookId: '',
  loads: { tokens: 0, pats: 0, apps: 0, detail: 0, audit: 0, webhooks: 0, deliveries: 0 },
};

function environments() {
  return state.projects.find((p) => p.id === state.projectId)?.environments ?? [];
}

function envById(id) {
  for (const p of state.projects) {
    const env = p.environments.find((e) => e.id === id);
    if (env) return { env, project: p };
  }
  return null;
}

function projectById(id) {
  return state.projects.find((p) => p.id === id);
}

/** Remembers the tab, project and environment: ids only, never secrets. */
function remember() {
  const params = new URLSearchParams();
  params.set('tab', state.tab);
  if (state.projectId) params.set('project', state.projectId);
  if (state.envId) params.set('env', state.envId);
  if (state.tab === 'apps' && state.selectedAppId) params.set('app', state.selectedAppId);
  if (state.tab === 'webhooks' && state.selectedWebhookId) params.set('webhook', state.selectedWebhookId);
  history.replaceState(null, '', `#${params}`);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ project: state.projectId, env: state.envId }));
  } catch {
    /* storage may be unavailable; the hash still works */
  }
}

function recalled() {
  const hash = new URLSearchParams(location.hash.slice(1));
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') ?? {};
  } catch {
    stored = {};
  }
  return {
    tab: hash.get('tab'),
    project: hash.get('project') ?? stored.project,
    env: hash.has('project') ? hash.get('env') ?? '' : stored.env,
    app: hash.get('app'),
    webhook: hash.get('webhook'),
  };
}

// -------------------------------------------------------------- dialogs

/** Where focus goes back to when a dialog closes. */
const openers = new WeakMap();

function openDialog(dialog, focus) {
  openers.set(dialog, document.activeElement);
  dialog.showModal();
  const target =
    (focus && $(focus, dialog)) ?? $('input:not([type=hidden]):not(:disabled), select, button', dialog);
  target?.focus();
}

/** Closes `dialog`, sending focus to `then` (default: what opened it). */
function closeDialog(dialog, then) {
  if (then !== undefined) openers.set(dialog, then);
  if (dialog.open) dialog.close();
}

for (const dialog of $$('dialog')) {
  dialog.addEventListener('click', (e) => {
    if (e.target.closest('[data-close]')) closeDialog(dialog);
  });
  dialog.addEventListener('close', () => {
    const back = openers.get(dialog);
    openers.delete(dialog);
    if (back && document.contains(back) && !back.disabled && !document.querySelector('dialog[open]')) back.focus();
  });
}

/** Clears a form's error regions. */
function clearErrors(form) {
  for (const el of $$('.form-error, .field-error', form)) {
    el.textContent = '';
    el.hidden = true;
  }
  for (const el of $$('[aria-invalid]', form)) el.removeAttribute('aria-invalid');
}

/**
 * Shows an API error in a form: each `details` field under its input when
 * the form has one (`fields` maps detail names to input ids), the rest in
 * the form-level region.
 */
function showErrors(form, err, fields = {}) {
  const general = [];
  for (const [field, message] of Object.entries(err.details ?? {})) {
    const inputId = fields[field];
    const slot = inputId && document.getElementById(`${inputId}-error`);
    if (slot) {
      slot.textContent = sentence(message);
      slot.hidden = false;
      document.getElementById(inputId)?.setAttribute('aria-invalid', 'true');
    } else {
      general.push(`${field}: ${message}`);
    }
  }
  const box = $('.form-error', form);
  if (box && (general.length || !Object.keys(err.details ?? {}).length)) {
    box.textContent = general.length ? `${err.message}. ${general.map(sentence).join('. ')}.` : `${err.message}.`;
    box.hidden = false;
  }
  const firstInvalid = $('[aria-invalid="true"]', form);
  const shown = $('.form-error:not([hidden]), .field-error:not([hidden])', form);
  (firstInvalid ?? shown)?.focus?.();
}

async function busy(button, task) {
  button.disabled = true;
  try {
    return await task();
  } finally {
    button.disabled = false;
  }
}

function emptyRow(table, text, action) {
  const columns = $$('thead th', table).length;
  return h('tr', { class: 'empty' }, h('td', { colspan: columns }, h('p', {}, text), action ?? null));
}

// ---------------------------------------------------- one-time secrets

const onceModal = $('#token-modal');
const copyButton = $('#copy-token');

/**
 * Shows a new secret (a token, a signing secret) once, in #token-modal:
 * `noun` names it in the warning, `label` above the field. The value
 * leaves the page when the modal closes.
 */
function showOnce({ title, noun, label, value }) {
  $('#token-modal-title').textContent = title;
  $('#token-warning-title').textContent = `This ${noun} will not be shown again.`;
  $('#new-token-label').textContent = label;
  const input = h('input', {
    id: 'new-token',
    class: 'input mono',
    type: 'text',
    readonly: true,
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': 'token-warning',
  });
  input.value = value;
  input.addEventListener('focus', () => input.select());
  $('#new-token-slot').prepend(input);
  copyButton.textContent = 'Copy';
  openDialog(onceModal, '#new-token');
}

onceModal.addEventListener('close', () => {
  // The secret leaves the page with the modal.
  $('#new-token')?.remove();
  copyButton.textContent = 'Copy';
});

copyButton.addEventListener('click', async () => {
  const input = $('#new-token');
  if (!input) return;
  let copied = false;
  try {
    if (!navigator.clipboard) throw new Error('no clipboard');
    await Promise.race([
      navigator.clipboard.writeText(input.value),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1500)),
    ]);
    copied = true;
  } catch {
    input.focus();
    input.select();
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
  }
  copyButton.textContent = copied ? 'Copied' : 'Press Ctrl+C';
});

export {
  CONCURRENCY,
  PAGE_SIZE,
  ROLE,
  api,
  busy,
  clearErrors,
  closeDialog,
  eachLimited,
  emptyRow,
  envById,
  environments,
  openDialog,
  projectById,
  query,
  recalled,
  remember,
  setStatus,
  showErrors,
  showOnce,
  state,
  when,
};
