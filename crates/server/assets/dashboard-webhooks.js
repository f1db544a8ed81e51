// The "Webhooks" tab: the webhooks of the selected environment (of every
// environment the user sees, with "All environments"); for the selected
// one, its recent delivery attempts. With webhooks:write (the shell marks
// the panel data-can-write and renders the create dialog): enabling and
// disabling a webhook, retrying a delivery, and creating a webhook, whose
// signing secret is shown once with showOnce and never kept.

import { $, $$, h } from './common.js';
import {
  PAGE_SIZE,
  api,
  busy,
  clearErrors,
  closeDialog,
  emptyRow,
  envById,
  openDialog,
  query,
  remember,
  setStatus,
  showErrors,
  showOnce,
  state,
  when,
} from './dashboard-core.js';

const DELIVERIES_PAGE_SIZE = 20;
/** After a retry: how often, and how many times, to look for the new attempt. */
const RETRY_POLL_MS = 1000;
const RETRY_POLLS = 12;

const panel = $('#panel-webhooks');
const CAN_WRITE = panel?.dataset.canWrite === 'true';
const table = $('#webhooks');
const deliveriesTable = $('#deliveries');
const detail = $('#webhook-detail');

/**
 * Runs `task` with `button` marked busy. aria-disabled, not disabled: the
 * button keeps focus, so it can be given back when its row is re-rendered.
 */
async function pending(button, task) {
  button.setAttribute('aria-disabled', 'true');
  try {
    return await task();
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

const isPending = (button) => button.getAttribute('aria-disabled') === 'true';

const path = (w, rest = '') => `/v1/webhooks/${encodeURIComponent(w.id)}${rest}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const selected = () => state.webhooks.find((w) => w.id === state.selectedWebhookId);

function envLabel(id) {
  const found = envById(id);
  return found ? `${found.project.name} · ${found.env.name}` : id;
}

/**
 * Re-renders with `render`; when focus was on a control in a row of
 * `container` (the rows are replaced), it goes to the same control of the
 * row with the same id, or else to `fallback`.
 */
function keepingFocus(container, render, fallback) {
  const active = document.activeElement;
  const row = container.contains(active) ? active.closest('tr[data-id]') : null;
  const control = row && active.dataset.control;
  render();
  if (!row) return;
  const again = $(`tr[data-id="${CSS.escape(row.dataset.id)}"] [data-control="${control}"]`, container);
  (again && !again.disabled ? again : fallback)?.focus();
}

// ------------------------------------------------------------- the list

function webhookRow(w) {
  const isSelected = w.id === state.selectedWebhookId;
  const cells = [
    h(
      'td',
      { 'data-label': 'URL', class: 'cell-name' },
      h(
        'button',
        {
          type: 'button',
          class: 'link-button url',
          'data-control': 'select',
          'aria-pressed': String(isSelected),
          onclick: () => selectWebhook(w.id),
        },
        w.url,
      ),
      w.description ? h('span', { class: 'where' }, w.description) : null,
    ),
    h('td', { 'data-label': 'Environment' }, envLabel(w.environment_id)),
    h('td', { 'data-label': 'Events' }, h('ul', { class: 'chips' }, w.events.map((e) => h('li', { class: 'chip' }, h('code', {}, e))))),
    h(
      'td',
      { 'data-label': 'Status', class: 'cell-state' },
      h('span', { class: `badge ${w.enabled ? 'badge-active' : 'badge-revoked'}` }, w.enabled ? 'Enabled' : 'Disabled'),
      !w.enabled && w.disabled_reason ? h('p', { class: 'reason' }, w.disabled_reason) : null,
    ),
    h('td', { 'data-label': 'Created' }, when(w.created_at)),
  ];
  if (CAN_WRITE) {
    const verb = w.enabled ? 'Disable' : 'Enable';
    cells.push(
      h(
        'td',
        { class: 'cell-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-secondary btn-small toggle',
            'data-control': 'toggle',
            'aria-label': `${verb} ${w.url}`,
            onclick: (e) => setEnabled(w, !w.enabled, e.currentTarget),
          },
          verb,
        ),
      ),
    );
  }
  return h('tr', { 'data-id': w.id, class: isSelected ? 'selected' : null }, cells);
}

function renderWebhooks() {
  keepingFocus(
    table,
    () =>
      table.tBodies[0].replaceChildren(
        ...(state.webhooks.length
          ? state.webhooks.map(webhookRow)
          : [emptyRow(table, state.envId ? 'No webhooks in this environment yet.' : 'No webhooks yet.')]),
      ),
    $('#webhooks-heading'),
  );
}

export async function loadWebhooks() {
  if (!table) return;
  const ticket = ++state.loads.webhooks;
  setStatus('webhooks-status', 'Loading…');
  try {
    const res = await api('GET', `/v1/webhooks?${query({ environment_id: state.envId, page_size: PAGE_SIZE })}`);
    if (ticket !== state.loads.webhooks) return;
    state.webhooks = res.data ?? [];
    const total = res.pagination?.total_count ?? state.webhooks.length;
    const shown = total > state.webhooks.length ? ` (showing the newest ${state.webhooks.length})` : '';
    setStatus('webhooks-status', `${total} ${total === 1 ? 'webhook' : 'webhooks'}${shown}`);
    if (!selected()) state.selectedWebhookId = '';
    renderWebhooks();
    showDetail();
  } catch (err) {
    if (ticket !== state.loads.webhooks) return;
    state.webhooks = [];
    table.tBodies[0].replaceChildren(emptyRow(table, `Could not load webhooks: ${err.message}.`));
    setStatus('webhooks-status', '');
    detail.hidden = true;
  }
  const create = $('#create-webhook');
  if (create) {
    create.disabled = !state.envId;
    create.title = state.envId ? '' : 'Choose an environment first';
  }
}

function selectWebhook(id) {
  state.selectedWebhookId = id;
  remember();
  renderWebhooks();
  showDetail({ focus: true });
}

async function setEnabled(w, enabled, button) {
  if (isPending(button)) return;
  try {
    const res = await pending(button, () => api('PATCH', path(w), { enabled }));
    const i = state.webhooks.findIndex((x) => x.id === w.id);
    if (i >= 0) state.webhooks[i] = res.data;
    renderWebhooks();
    setStatus('webhooks-status', `${enabled ? 'Enabled' : 'Disabled'} ${w.url}.`);
    if (w.id === state.selectedWebhookId) showDetail();
  } catch (err) {
    setStatus('webhooks-status', `Could not ${enabled ? 'enable' : 'disable'} ${w.url}: ${err.message}.`);
  }
}

// ----------------------------------------------------------- deliveries

function statusCell(d) {
  if (d.status_code === null || d.status_code === undefined) {
    return h('span', { class: 'badge badge-neutral status-code' }, 'no answer');
  }
  const ok = d.status_code >= 200 && d.status_code < 300;
  return h('span', { class: `badge ${ok ? 'badge-active' : 'badge-revoked'} status-code` }, String(d.status_code));
}

function deliveryRow(w, d) {
  const cells = [
    h('td', { 'data-label': 'Time' }, when(d.at)),
    h('td', { 'data-label': 'Event type' }, h('code', { class: 'event-type' }, d.event_type)),
    h('td', { 'data-label': 'Event ID', class: 'cell-event-id' }, h('code', { class: 'event-id' }, d.event_id)),
    h('td', { 'data-label': 'Attempt', class: 'attempt' }, String(d.attempt)),
    h('td', { 'data-label': 'Status' }, statusCell(d)),
    h('td', { 'data-label': 'Latency', class: 'latency' }, `${d.latency_ms} ms`),
    h('td', { 'data-label': 'Error', class: 'cell-error' }, d.error ?? h('span', { class: 'muted' }, '—')),
  ];
  if (CAN_WRITE) {
    cells.push(
      h(
        'td',
        { class: 'cell-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-secondary btn-small retry',
            'data-control': 'retry',
            'aria-label': `Retry ${d.event_type} ${d.event_id}`,
            disabled: !w.enabled,
            title: w.enabled ? null : 'Enable the webhook to retry',
            onclick: (e) => retry(w, d, e.currentTarget),
          },
          'Retry',
        ),
      ),
    );
  }
  return h('tr', { 'data-id': d.id, 'data-event-id': d.event_id }, cells);
}

/** Fills the detail of the selected webhook, and loads its deliveries. */
function showDetail({ focus = false } = {}) {
  const w = selected();
  detail.hidden = !w;
  if (!w) return;
  $('#webhook-detail-url').textContent = w.url;
  $('#webhook-detail-meta').textContent = [envLabel(w.environment_id), w.enabled ? 'enabled' : 'disabled', w.id].join(' · ');
  if (focus) $('#webhook-detail-url').focus();
  loadDeliveries();
}

/** The selected webhook's newest attempts; resolves to them (null when they could not be read). */
async function loadDeliveries({ quiet = false } = {}) {
  const w = selected();
  if (!w) return null;
  const ticket = ++state.loads.deliveries;
  if (!quiet) setStatus('deliveries-status', 'Loading…');
  try {
    const res = await api('GET', path(w, `/deliveries?${query({ page_size: DELIVERIES_PAGE_SIZE })}`));
    if (ticket !== state.loads.deliveries) return null;
    const items = res.data ?? [];
    keepingFocus(
      deliveriesTable,
      () =>
        deliveriesTable.tBodies[0].replaceChildren(
          ...(items.length
            ? items.map((d) => deliveryRow(w, d))
            : [emptyRow(deliveriesTable, 'No deliveries yet. Attempts appear here once a subscribed event happens.')]),
        ),
      $('#deliveries-heading'),
    );
    const total = res.pagination?.total_count ?? items.length;
    const noun = total === 1 ? 'delivery attempt' : 'delivery attempts';
    if (!quiet) setStatus('deliveries-status', total > items.length ? `The newest ${items.length} of ${total} ${noun}.` : `${total} ${noun}.`);
    return items;
  } catch (err) {
    if (ticket !== state.loads.deliveries) return null;
    setStatus('deliveries-status', `Could not load deliveries: ${err.message}.`);
    return null;
  }
}

/** Sends a delivery's event again, then watches for the new attempt. */
async function retry(w, d, button) {
  if (isPending(button)) return;
  try {
    await pending(button, () => api('POST', path(w, `/deliveries/${encodeURIComponent(d.id)}/retry`)));
  } catch (err) {
    setStatus('deliveries-status', `Could not retry ${d.event_id}: ${err.message}.`);
    return;
  }
  setStatus('deliveries-status', `Retry of ${d.event_id} queued.`);
  const rows = $$(`tr[data-event-id="${CSS.escape(d.event_id)}"] .attempt`, deliveriesTable);
  const before = Math.max(d.attempt, ...rows.map((cell) => Number(cell.textContent)));
  for (let i = 0; i < RETRY_POLLS; i += 1) {
    await sleep(RETRY_POLL_MS);
    if (w.id !== state.selectedWebhookId || state.tab !== 'webhooks') return;
    const items = await loadDeliveries({ quiet: true });
    const made = items?.find((x) => x.event_id === d.event_id && x.attempt > before);
    if (made) {
      const answer = made.status_code ?? 'no answer';
      setStatus('deliveries-status', `Attempt ${made.attempt} of ${d.event_id}: ${answer}.`);
      return;
    }
  }
  setStatus('deliveries-status', `Retry of ${d.event_id} queued; press Refresh to see its attempt.`);
}

$('#deliveries-refresh')?.addEventListener('click', () => loadDeliveries());

// ------------------------------------------------------------ creating

const createDialog = $('#create-webhook-dialog');
const createForm = $('#create-webhook-form');

$('#create-webhook')?.addEventListener('click', () => {
  createForm.reset();
  clearErrors(createForm);
  const found = envById(state.envId);
  $('#create-webhook-where').textContent = found ? `For the events of ${found.project.name} · ${found.env.name}.` : '';
  openDialog(createDialog, '#webhook-url');
});

createForm?.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(createForm);
  const fields = { url: 'webhook-url', events: 'webhook-events', description: 'webhook-description' };
  const url = $('#webhook-url').value.trim();
  const events = $$('input[name=event]:checked', createForm).map((i) => i.value);
  const local = {};
  if (!url) local.url = 'cannot be blank';
  if (!events.length) local.events = 'choose at least one event';
  if (Object.keys(local).length) {
    showErrors(createForm, { message: 'Check the form', details: local }, fields);
    return;
  }
  const body = { environment_id: state.envId, url, events };
  const description = $('#webhook-description').value.trim();
  if (description) body.description = description;
  try {
    const res = await busy($('button[type=submit]', createForm), () => api('POST', '/v1/webhooks', body));
    const { secret, ...webhook } = res.data;
    closeDialog(createDialog, $('#webhooks-heading'));
    showOnce({ title: `Signing secret for ${webhook.url}`, noun: 'secret', label: 'Signing secret', value: secret });
    state.selectedWebhookId = webhook.id;
    remember();
    await loadWebhooks();
  } catch (err) {
    showErrors(createForm, err, fields);
  }
});
