// The developer dashboard (SPEC §7). The server renders the shell, with
// the tabs the user's scopes allow; these modules drive the management API
// with the session cookie. This one owns the project and environment
// switchers, the tabs, and start-up; the tabs live in dashboard-tokens.js,
// dashboard-apps.js, dashboard-audit.js and dashboard-webhooks.js, shared
// helpers in dashboard-core.js and common.js.

import { $, $$, h } from './common.js';
import { ROLE, api, environments, projectById, recalled, remember, state } from './dashboard-core.js';
import { KINDS, loadCredentials } from './dashboard-tokens.js';
import { loadApps } from './dashboard-apps.js';
import { loadAudit } from './dashboard-audit.js';
import { loadWebhooks } from './dashboard-webhooks.js';

function showPageError(err) {
  const el = $('#page-error');
  el.textContent = err ? err.message : '';
  el.hidden = !err;
}

// ------------------------------------------------------------ switchers

const projectSelect = $('#project-switcher');
const envSelect = $('#environment-switcher');

function fillSwitchers() {
  projectSelect.replaceChildren(...state.projects.map((p) => h('option', { value: p.id }, p.name)));
  projectSelect.value = state.projectId;
  projectSelect.disabled = state.projects.length === 0;
  envSelect.replaceChildren(
    ...environments().map((e) => h('option', { value: e.id }, e.name)),
    h('option', { value: '' }, 'All environments'),
  );
  envSelect.value = state.envId;
  envSelect.disabled = state.projects.length === 0;
}

projectSelect.addEventListener('change', () => {
  state.projectId = projectSelect.value;
  const envs = environments();
  state.envId = (envs.find((e) => e.name === 'sandbox') ?? envs[0])?.id ?? '';
  state.selectedAppId = '';
  fillSwitchers();
  remember();
  refresh();
});

envSelect.addEventListener('change', () => {
  state.envId = envSelect.value;
  state.selectedAppId = '';
  remember();
  refresh();
});

// ----------------------------------------------------------------- tabs

const tabs = $$('[role="tab"]');

function selectTab(name, { focus = false } = {}) {
  state.tab = name;
  for (const tab of tabs) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute('aria-controls')).hidden = !on;
    if (on && focus) tab.focus();
  }
  remember();
  refresh();
}

for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab.id.slice(4)));
  tab.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(tab);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    selectTab(tabs[(to + tabs.length) % tabs.length].id.slice(4), { focus: true });
  });
}

function refresh() {
  if (!state.projects.length) return;
  if (state.tab === 'tokens') loadCredentials(KINDS.tokens);
  else if (state.tab === 'pats') loadCredentials(KINDS.pats);
  else if (state.tab === 'audit') loadAudit();
  else if (state.tab === 'webhooks') loadWebhooks();
  else loadApps();
}

// ---------------------------------------------------------------- start

if (ROLE === 'viewer') document.body.classList.add('read-only');

async function start() {
  try {
    const res = await api('GET', '/v1/projects?page_size=200');
    state.projects = res.data ?? [];
  } catch (err) {
    showPageError(err);
    return;
  }
  const wanted = recalled();
  const project = projectById(wanted.project) ?? state.projects[0];
  state.projectId = project?.id ?? '';
  const envs = project?.environments ?? [];
  if (wanted.env === '' && project?.id === wanted.project) state.envId = '';
  else state.envId = (envs.find((e) => e.id === wanted.env) ?? envs.find((e) => e.name === 'sandbox') ?? envs[0])?.id ?? '';
  state.selectedAppId = wanted.app ?? '';
  state.selectedWebhookId = wanted.webhook ?? '';
  fillSwitchers();
  // Only the tabs the shell rendered: a tab the user's scopes do not allow is not there.
  const tab = tabs.some((t) => t.id === `tab-${wanted.tab}`) ? wanted.tab : 'tokens';
  if (!state.projects.length) showPageError(new Error('No projects yet: create one with the API (POST /v1/projects)'));
  selectTab(tab);
}

start();
