// The "API tokens" and "Personal access tokens" tabs: list, create (the
// new token is shown once, with showOnce, and leaves the DOM when the
// modal closes), and revoke after a confirmation.

import { $, $$, h } from './common.js';
import {
  ROLE,
  PAGE_SIZE,
  api,
  busy,
  clearErrors,
  closeDialog,
  emptyRow,
  envById,
  openDialog,
  projectById,
  query,
  setStatus,
  showErrors,
  showOnce,
  state,
  when,
} from './dashboard-core.js';

export const KINDS = {
  tokens: {
    key: 'tokens',
    path: '/v1/access-keys',
    table: $('#tokens'),
    noun: 'API token',
    dialog: $('#create-token-dialog'),
    form: $('#create-token-form'),
    prefix: 'token',
  },
  pats: {
    key: 'pats',
    path: '/v1/personal-access-tokens',
    table: $('#pats'),
    noun: 'personal access token',
    dialog: $('#create-pat-dialog'),
    form: $('#create-pat-form'),
    prefix: 'pat',
  },
};

function reachLabel(c) {
  if (c.environment_id) {
    const found = envById(c.environment_id);
    return found ? ['Environment', `${found.project.name} · ${found.env.name}`] : ['Environment', c.environment_id];
  }
  if (c.project_id) return ['Project', projectById(c.project_id)?.name ?? c.project_id];
  return ['Organization', ''];
}

function statusOf(c) {
  if (c.revoked_at) return ['Revoked', 'revoked'];
  if (!c.active) return ['Expired', 'expired'];
  return ['Active', 'active'];
}

function credentialRow(kind, c) {
  const [status, tone] = statusOf(c);
  const [level, where] = reachLabel(c);
  const canWrite = ROLE !== 'viewer';
  const cells = [
    h(
      'td',
      { 'data-label': 'Name', class: 'cell-name' },
      h('span', { class: 'name' }, c.name),
      h(
        'details',
        { class: 'scope-list' },
        h('summary', {}, `${c.scopes.length} ${c.scopes.length === 1 ? 'scope' : 'scopes'}`),
        h('ul', {}, c.scopes.map((s) => h('li', {}, h('code', {}, s)))),
      ),
    ),
    h('td', { 'data-label': 'Token' }, h('code', { class: 'preview', title: `Checksum ${c.checksum}` }, c.preview)),
    h('td', { 'data-label': 'Scope' }, h('span', { class: 'level' }, level), where ? h('span', { class: 'where' }, where) : null),
  ];
  if (kind.key === 'tokens') cells.push(h('td', { 'data-label': 'Created by', class: 'cell-email' }, c.created_by?.email ?? ''));
  cells.push(
    h('td', { 'data-label': 'Created' }, when(c.created_at)),
    h('td', { 'data-label': 'Last used' }, when(c.last_used_at)),
    h(
      'td',
      { 'data-label': 'Status' },
      h('span', { class: `badge badge-${tone}` }, status),
      c.expires_at && !c.revoked_at && c.active ? h('span', { class: 'where' }, 'expires ', when(c.expires_at)) : null,
    ),
    h(
      'td',
      { class: 'cell-actions' },
      c.active && canWrite
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn btn-danger btn-small revoke',
              'aria-label': `Revoke ${c.name}`,
              onclick: () => confirmRevoke(kind, c),
            },
            'Revoke',
          )
        : null,
    ),
  );
  return h('tr', { 'data-id': c.id }, cells);
}

export async function loadCredentials(kind) {
  const ticket = ++state.loads[kind.key];
  const body = $('tbody', kind.table);
  setStatus(`${kind.key}-status`, 'Loading…');
  const params = { page_size: PAGE_SIZE };
  if (kind.key === 'tokens') params.environment_id = state.envId;
  try {
    const res = await api('GET', `${kind.path}?${query(params)}`);
    if (ticket !== state.loads[kind.key]) return;
    const items = res.data ?? [];
    body.replaceChildren(
      ...(items.length
        ? items.map((c) => credentialRow(kind, c))
        : [emptyRow(kind.table, kind.key === 'tokens' ? 'No API tokens here yet.' : 'You have no personal access tokens yet.')]),
    );
    const total = res.pagination?.total_count ?? items.length;
    const shown = total > items.length ? ` (showing the newest ${items.length})` : '';
    setStatus(`${kind.key}-status`, `${total} ${total === 1 ? kind.noun : `${kind.noun}s`}${shown}`);
  } catch (err) {
    if (ticket !== state.loads[kind.key]) return;
    body.replaceChildren(emptyRow(kind.table, `Could not load: ${err.message}.`));
    setStatus(`${kind.key}-status`, '');
  }
}

// Creating.

/** Names the current environment and project in the token form's Access. */
function describeWhere() {
  const reach = $('#token-reach');
  if (!reach) return;
  const found = state.envId ? envById(state.envId) : null;
  const project = projectById(state.projectId);
  const envOption = $('#reach-environment');
  const projectOption = $('#reach-project');
  envOption.disabled = !found;
  envOption.textContent = found ? `Environment: ${found.env.name}` : 'Environment: choose one first';
  projectOption.disabled = !project;
  projectOption.textContent = project ? `Project: every environment of ${project.name}` : 'Project: every environment';
  reach.value = found ? 'environment' : 'organization';
  $('#create-token-where').textContent = 'For servers and scripts. Give it only the scopes it needs.';
}

function openCreate(kind) {
  const form = kind.form;
  form.reset();
  clearErrors(form);
  if (kind.key === 'tokens') describeWhere();
  openDialog(kind.dialog, `#${kind.prefix}-name`);
}

async function submitCreate(kind, event) {
  event.preventDefault();
  const form = kind.form;
  clearErrors(form);
  const name = $(`#${kind.prefix}-name`).value.trim();
  const scopes = $$('input[name=scope]:checked', form).map((i) => i.value);
  const local = {};
  if (!name) local.name = 'cannot be blank';
  if (!scopes.length) local.scopes = 'choose at least one scope';
  const fields = { name: `${kind.prefix}-name`, scopes: `${kind.prefix}-scopes` };
  if (Object.keys(local).length) {
    showErrors(form, { message: 'Check the form', details: local }, fields);
    return;
  }
  const body = { name, scopes };
  const days = Number($(`#${kind.prefix}-expiry`).value);
  if (days) body.expires_at = new Date(Date.now() + days * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
  if (kind.key === 'tokens') {
    const reach = $('#token-reach').value;
    if (reach === 'environment') body.environment_id = state.envId;
    else if (reach === 'project') body.project_id = state.projectId;
  }
  const submit = $('button[type=submit]', form);
  try {
    const res = await busy(submit, () => api('POST', kind.path, body));
    closeDialog(kind.dialog);
    showOnce({ title: `Your new ${kind.noun}: ${res.data.name}`, noun: 'token', label: 'Token', value: res.data.token });
    loadCredentials(kind);
  } catch (err) {
    showErrors(form, err, fields);
  }
}

for (const kind of Object.values(KINDS)) {
  if (!kind.form) continue;
  $(`#create-${kind.prefix}`)?.addEventListener('click', () => openCreate(kind));
  kind.form.addEventListener('submit', (e) => submitCreate(kind, e));
}

// Revoking.

const revokeDialog = $('#confirm-revoke');
let pendingRevoke = null;

function confirmRevoke(kind, c) {
  pendingRevoke = { kind, c };
  $('#confirm-revoke-title').textContent = `Revoke this ${kind.noun}?`;
  $('#confirm-revoke-name').textContent = c.name;
  clearErrors(revokeDialog);
  openDialog(revokeDialog, '[data-close]');
}

$('#confirm-revoke-submit').addEventListener('click', async (e) => {
  if (!pendingRevoke) return;
  const { kind, c } = pendingRevoke;
  try {
    await busy(e.currentTarget, () => api('DELETE', `${kind.path}/${encodeURIComponent(c.id)}`));
    pendingRevoke = null;
    closeDialog(revokeDialog, $(`#${kind.key}-heading`));
    setStatus(`${kind.key}-status`, `Revoked ${c.name}.`);
    await loadCredentials(kind);
  } catch (err) {
    showErrors(revokeDialog, err);
  }
});

revokeDialog.addEventListener('close', () => {
  pendingRevoke = null;
});
