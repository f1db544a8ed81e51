// The "Apps" tab: the environment's apps; for the selected one, its
// deployed version's requirements, the OAuth2 providers of its environment
// (and which requirement has none), and its end users with their
// connection states (never a secret); creating an app; erasing an end user.

import { $, h, sentence } from './common.js';
import {
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
  openDialog,
  query,
  remember,
  setStatus,
  showErrors,
  state,
  when,
} from './dashboard-core.js';

function appRow(app) {
  const selected = app.id === state.selectedAppId;
  const found = envById(app.environment_id);
  return h(
    'tr',
    { 'data-id': app.id, class: selected ? 'selected' : null },
    h(
      'td',
      { 'data-label': 'Name', class: 'cell-name' },
      h(
        'button',
        { type: 'button', class: 'link-button', 'aria-pressed': String(selected), onclick: () => selectApp(app.id) },
        app.name,
      ),
      !state.envId && found ? h('span', { class: 'where' }, found.env.name) : null,
    ),
    h('td', { 'data-label': 'Hostname' }, h('code', {}, app.hostname)),
    h('td', { 'data-label': 'Access' }, h('span', { class: `badge badge-${app.access_control.access_type}` }, sentence(app.access_control.access_type))),
    h(
      'td',
      { 'data-label': 'Deployed version' },
      app.deployed_version_id ? h('code', {}, app.deployed_version_id) : h('span', { class: 'muted' }, 'not deployed'),
    ),
  );
}

function renderApps() {
  const body = $('#apps tbody');
  body.replaceChildren(
    ...(state.apps.length
      ? state.apps.map(appRow)
      : [emptyRow($('#apps'), state.envId ? 'No apps in this environment yet.' : 'No apps yet.')]),
  );
}

export async function loadApps() {
  const ticket = ++state.loads.apps;
  setStatus('apps-status', 'Loading…');
  try {
    const res = await api('GET', `/v1/apps?${query({ environment_id: state.envId, page_size: PAGE_SIZE })}`);
    if (ticket !== state.loads.apps) return;
    state.apps = res.data ?? [];
    const total = res.pagination?.total_count ?? state.apps.length;
    setStatus('apps-status', `${total} ${total === 1 ? 'app' : 'apps'}`);
    if (!state.apps.some((a) => a.id === state.selectedAppId)) state.selectedAppId = '';
    renderApps();
    if (state.selectedAppId) loadAppDetail();
    else $('#app-detail').hidden = true;
  } catch (err) {
    if (ticket !== state.loads.apps) return;
    state.apps = [];
    $('#apps tbody').replaceChildren(emptyRow($('#apps'), `Could not load apps: ${err.message}.`));
    setStatus('apps-status', '');
  }
  const create = $('#create-app');
  if (create) create.disabled = !state.envId;
  if (create) create.title = state.envId ? '' : 'Choose an environment first';
}

function selectApp(id) {
  state.selectedAppId = id;
  remember();
  renderApps();
  loadAppDetail({ focus: true });
}

/** The connection type or app slug a requirement needs. */
function needsOf(r) {
  return r.spec?.data?.type ?? r.spec?.data?.app_slug ?? '';
}

/** The providers (of the app's environment) that serve `r`. */
function providersFor(r, providers) {
  const data = r.spec?.data ?? {};
  return providers.filter((p) =>
    r.type === 'connection' ? p.connection_type && p.connection_type === data.type : p.app_slug && p.app_slug === data.app_slug,
  );
}

/**
 * True when `r` is signed in through an OAuth2 provider: every linked
 * account, and a connection whose type a provider serves or is named as an
 * OAuth2 type (the dashboard has no catalog to ask).
 */
function needsProvider(r, providers) {
  if (r.type !== 'connection') return true;
  return providersFor(r, providers).length > 0 || /oauth2$/i.test(r.spec?.data?.type ?? '');
}

/** "OAuth2 provider: local", or the warning that there is none (`providers` null: unknown). */
function providerNote(r, providers) {
  if (!providers || !needsProvider(r, providers)) return null;
  const serving = providersFor(r, providers);
  if (!serving.length) {
    return h('p', { class: 'req-warning', 'data-provider': 'missing' }, `No OAuth2 provider configured for ${needsOf(r)}`);
  }
  return h(
    'p',
    { class: 'hint', 'data-provider': 'configured' },
    `OAuth2 provider: ${serving.map((p) => p.name).join(', ')}`,
  );
}

function requirementItem(r, providers, holders, total) {
  const kindLabel = r.type === 'connection' ? 'Connection' : 'Linked account';
  return h(
    'li',
    { class: 'requirement', 'data-name': r.name },
    h('div', { class: 'req-title' }, h('strong', {}, r.title || r.name), ' ', h('code', {}, r.name)),
    r.description ? h('p', { class: 'hint' }, r.description) : null,
    h('p', { class: 'req-meta' }, h('span', { class: 'badge badge-neutral' }, kindLabel), h('code', {}, needsOf(r))),
    providerNote(r, providers),
    holders === undefined ? null : h('p', { class: 'hint' }, `Met for ${holders} of ${total} end ${total === 1 ? 'user' : 'users'}`),
  );
}

function providerRow(p) {
  const serves = p.connection_type
    ? [h('code', {}, p.connection_type), h('span', { class: 'where' }, 'connection type')]
    : [h('code', {}, p.app_slug ?? ''), h('span', { class: 'where' }, 'action connector')];
  const file = p.source === 'file';
  return h(
    'tr',
    { 'data-id': p.id },
    h('td', { 'data-label': 'Name', class: 'cell-name' }, h('span', { class: 'name' }, p.name)),
    h('td', { 'data-label': 'Serves' }, serves),
    h(
      'td',
      { 'data-label': 'Source' },
      h('span', { class: `badge ${file ? 'badge-neutral' : 'badge-private'}`, title: file ? 'From gatehouse.toml (read-only)' : 'Created with the API' }, file ? 'File' : 'API'),
    ),
    h('td', { 'data-label': 'Client ID' }, h('code', { class: 'client-id' }, p.client_id)),
    h('td', { 'data-label': 'Redirect URI' }, h('code', { class: 'redirect-uri' }, p.redirect_uri)),
  );
}

/** The environment's OAuth2 providers (every page of them), or null when they cannot be read. */
async function loadProviders(environmentId) {
  const all = [];
  for (let page = 1; page <= 20; page += 1) {
    const res = await api('GET', `/v1/oauth2-providers?${query({ environment_id: environmentId, page, page_size: PAGE_SIZE })}`);
    const items = res.data ?? [];
    all.push(...items);
    const total = res.pagination?.total_count ?? all.length;
    if (!items.length || all.length >= total) break;
  }
  return all;
}

function renderProviders(providers, error) {
  const table = $('#oauth2-providers');
  if (error) {
    setStatus('providers-status', `Could not load OAuth2 providers: ${error.message}.`);
    table.tBodies[0].replaceChildren();
    return;
  }
  const n = providers.length;
  setStatus('providers-status', n ? `${n} OAuth2 ${n === 1 ? 'provider' : 'providers'} in this environment.` : '');
  table.tBodies[0].replaceChildren(
    ...(n ? providers.map(providerRow) : [emptyRow(table, 'No OAuth2 providers in this environment.')]),
  );
}

function connectionChips(user, app, requirements) {
  const mine = (list) => (list ?? []).filter((c) => c.app_id === app.id);
  const connections = mine(user.connections);
  const accounts = mine(user.accounts);
  const chips = [];
  const named = new Set();
  for (const r of requirements) {
    named.add(r.name);
    const conn = connections.find((c) => c.requirement_name === r.name);
    const acct = accounts.find((a) => a.requirement_name === r.name);
    let label = 'missing';
    let tone = 'missing';
    if (acct) [label, tone] = ['linked', 'active'];
    else if (conn) [label, tone] = [conn.status, conn.status === 'active' ? 'active' : conn.status];
    chips.push(h('li', { class: `chip chip-${tone}` }, h('code', {}, r.name), ` ${label}`));
  }
  for (const c of connections.filter((c) => !named.has(c.requirement_name))) {
    chips.push(h('li', { class: `chip chip-${c.status}` }, h('code', {}, c.requirement_name), ` ${c.status}`));
  }
  for (const a of accounts.filter((a) => !named.has(a.requirement_name))) {
    chips.push(h('li', { class: 'chip chip-active' }, h('code', {}, a.requirement_name), ' linked'));
  }
  return chips.length ? h('ul', { class: 'chips' }, chips) : h('span', { class: 'muted' }, 'none');
}

async function loadAppDetail({ focus = false } = {}) {
  const app = state.apps.find((a) => a.id === state.selectedAppId);
  const panel = $('#app-detail');
  if (!app) {
    panel.hidden = true;
    return;
  }
  const ticket = ++state.loads.detail;
  panel.hidden = false;
  $('#app-detail-name').textContent = app.name;
  const found = envById(app.environment_id);
  $('#app-detail-meta').textContent = [
    app.hostname,
    found ? `${found.project.name} · ${found.env.name}` : app.environment_id,
    app.access_control.access_type,
  ].join(' · ');
  if (focus) $('#app-detail-name').focus();
  $('#requirements').replaceChildren();
  $('#oauth2-providers tbody').replaceChildren();
  $('#end-users tbody').replaceChildren();
  setStatus('requirements-status', 'Loading…');
  setStatus('providers-status', 'Loading…');
  setStatus('end-users-status', 'Loading…');

  const providersLoad = loadProviders(app.environment_id).then(
    (list) => ({ list }),
    (error) => ({ list: null, error }),
  );
  let requirements = [];
  try {
    if (!app.deployed_version_id) {
      setStatus('requirements-status', 'No version is deployed yet.');
    } else {
      const res = await api('GET', `/v1/apps/${encodeURIComponent(app.id)}/versions?page_size=200`);
      if (ticket !== state.loads.detail) return;
      const version = (res.data ?? []).find((v) => v.id === app.deployed_version_id);
      requirements = version?.requirements ?? [];
      setStatus(
        'requirements-status',
        version
          ? `Deployed version ${version.id}: ${requirements.length} ${requirements.length === 1 ? 'requirement' : 'requirements'}.`
          : 'The deployed version could not be found.',
      );
    }
  } catch (err) {
    if (ticket !== state.loads.detail) return;
    setStatus('requirements-status', `Could not load requirements: ${err.message}.`);
  }
  const { list: providers, error: providersError } = await providersLoad;
  if (ticket !== state.loads.detail) return;
  renderProviders(providers, providersError);
  $('#requirements').replaceChildren(...requirements.map((r) => requirementItem(r, providers)));

  try {
    const env = app.environment_id;
    const res = await api('GET', `/v1/end-users?${query({ environment_id: env, app_id: app.id, page_size: PAGE_SIZE })}`);
    if (ticket !== state.loads.detail) return;
    const users = res.data ?? [];
    const details = await eachLimited(users, CONCURRENCY, (u) =>
      api('GET', `/v1/end-users/${encodeURIComponent(u.user_id)}?${query({ environment_id: env })}`)
        .then((r) => r.data)
        .catch(() => null),
    );
    if (ticket !== state.loads.detail) return;
    const rows = users.map((u, i) => endUserRow(app, u, details[i], requirements));
    $('#end-users tbody').replaceChildren(
      ...(rows.length ? rows : [emptyRow($('#end-users'), 'No end users yet. They appear once a connect token is minted for them.')]),
    );
    const total = res.pagination?.total_count ?? users.length;
    setStatus('end-users-status', `${total} end ${total === 1 ? 'user' : 'users'}`);
    // Per requirement: how many users fulfil it.
    const counts = requirements.map(
      (r) =>
        details.filter(
          (d) =>
            d &&
            ((d.connections ?? []).some((c) => c.app_id === app.id && c.requirement_name === r.name && c.status === 'active') ||
              (d.accounts ?? []).some((a) => a.app_id === app.id && a.requirement_name === r.name)),
        ).length,
    );
    $('#requirements').replaceChildren(...requirements.map((r, i) => requirementItem(r, providers, counts[i], users.length)));
  } catch (err) {
    if (ticket !== state.loads.detail) return;
    setStatus('end-users-status', `Could not load end users: ${err.message}.`);
  }
}

function endUserRow(app, summary, detail, requirements) {
  const canWrite = ROLE !== 'viewer';
  return h(
    'tr',
    { 'data-user-id': summary.user_id },
    h('td', { 'data-label': 'User ID' }, h('code', { class: 'user-id' }, summary.user_id)),
    h(
      'td',
      { 'data-label': 'Connections' },
      detail ? connectionChips(detail, app, requirements) : h('span', { class: 'muted' }, 'unavailable'),
    ),
    h('td', { 'data-label': 'Since' }, when(summary.created_at, '')),
    h(
      'td',
      { class: 'cell-actions' },
      canWrite
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn btn-danger btn-small erase',
              'aria-label': `Erase ${summary.user_id}`,
              onclick: () => confirmErase(app, summary.user_id),
            },
            'Erase',
          )
        : null,
    ),
  );
}

// Erasing an end user.

const eraseDialog = $('#confirm-erase');
let pendingErase = null;

function confirmErase(app, userId) {
  pendingErase = { app, userId };
  $('#confirm-erase-name').textContent = userId;
  clearErrors(eraseDialog);
  openDialog(eraseDialog, '[data-close]');
}

$('#confirm-erase-submit').addEventListener('click', async (e) => {
  if (!pendingErase) return;
  const { app, userId } = pendingErase;
  try {
    await busy(e.currentTarget, () =>
      api('DELETE', `/v1/end-users/${encodeURIComponent(userId)}?${query({ environment_id: app.environment_id })}`),
    );
    pendingErase = null;
    closeDialog(eraseDialog, $('#app-detail-name'));
    await loadAppDetail();
    setStatus('end-users-status', `Erased ${userId}.`);
  } catch (err) {
    showErrors(eraseDialog, err);
  }
});

eraseDialog.addEventListener('close', () => {
  pendingErase = null;
});

// Creating an app.

const appDialog = $('#create-app-dialog');
const appForm = $('#create-app-form');

$('#create-app')?.addEventListener('click', () => {
  appForm.reset();
  clearErrors(appForm);
  const found = envById(state.envId);
  $('#create-app-where').textContent = found ? `In ${found.project.name} · ${found.env.name}.` : '';
  openDialog(appDialog, '#app-name');
});

appForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(appForm);
  const fields = { name: 'app-name' };
  const name = $('#app-name').value.trim();
  if (!name) {
    showErrors(appForm, { message: 'Check the form', details: { name: 'cannot be blank' } }, fields);
    return;
  }
  const body = { name, environment_id: state.envId, access_type: $('#app-access').value };
  try {
    const res = await busy($('button[type=submit]', appForm), () => api('POST', '/v1/apps', body));
    closeDialog(appDialog, null);
    state.selectedAppId = res.data.id;
    remember();
    await loadApps();
    $('#app-detail-name').focus();
  } catch (err) {
    showErrors(appForm, err, fields);
  }
});
