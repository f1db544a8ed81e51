// The "Audit log" tab: the organization's audit events, newest first,
// filtered by action and by actor (typed, or picked from a row), a page at
// a time. "Load more" follows the answer's next_cursor, which points at an
// event rather than an offset, so it stays correct while events are written.
// The shell renders the tab only for a user holding audit:read.

import { $, h, sentence } from './common.js';
import { api, emptyRow, query, setStatus, state, when } from './dashboard-core.js';

const AUDIT_PAGE_SIZE = 50;

const table = $('#audit');
const form = $('#audit-filters');
const actionInput = $('#audit-action');
const actorInput = $('#audit-actor');
const more = $('#audit-more');

/** What the listed rows were asked for, and where the next page starts. */
const view = { filters: { action: '', actor_id: '' }, cursor: null, shown: 0, loading: false };

const KIND_LABELS = {
  session: 'Dashboard session',
  system: 'Gatehouse',
  public: 'Public app',
};

/** `personal_access_token` → "Personal access token". */
function kindLabel(kind) {
  return KIND_LABELS[kind] ?? sentence(String(kind ?? '').replaceAll('_', ' '));
}

function eventRow(e) {
  return h(
    'tr',
    { 'data-id': e.id, 'data-action': e.action, 'data-actor-id': e.actor.id },
    h('td', { 'data-label': 'Time' }, when(e.at)),
    h(
      'td',
      { 'data-label': 'Actor', class: 'cell-actor' },
      h('span', { class: 'level' }, kindLabel(e.actor.kind)),
      h(
        'button',
        {
          type: 'button',
          class: 'link-button actor',
          title: 'Show only this actor’s events',
          'aria-label': `${e.actor.id}: show only this actor’s events`,
          onclick: () => filterByActor(e.actor.id),
        },
        h('code', {}, e.actor.id),
      ),
    ),
    h('td', { 'data-label': 'Action', class: 'cell-action' }, h('code', { class: 'action' }, e.action)),
    h(
      'td',
      { 'data-label': 'Target', class: 'cell-target' },
      h('span', { class: 'level' }, kindLabel(e.target.type)),
      h('code', { class: 'target-id' }, e.target.id),
    ),
    h(
      'td',
      { 'data-label': 'IP' },
      e.ip ? h('code', { class: 'ip', title: e.user_agent ?? '' }, e.ip) : h('span', { class: 'muted' }, '—'),
    ),
  );
}

function describe(total) {
  const { action, actor_id: actor } = view.filters;
  const count = view.shown < total ? `${view.shown} of ${total}` : String(total);
  const parts = [`${count} ${total === 1 ? 'event' : 'events'}`];
  if (action) parts.push(`action ${action}`);
  if (actor) parts.push(`by ${actor}`);
  return parts.join(' · ');
}

/**
 * Loads the first page for the current filters, or (`append`) the page
 * after the rows shown.
 */
export async function loadAudit({ append = false } = {}) {
  if (!table) return;
  if (append && (!view.cursor || view.loading)) return;
  const ticket = ++state.loads.audit;
  const body = table.tBodies[0];
  const params = { ...view.filters, page_size: AUDIT_PAGE_SIZE, cursor: append ? view.cursor : '' };
  view.loading = true;
  table.setAttribute('aria-busy', 'true');
  more.setAttribute('aria-disabled', 'true');
  setStatus('audit-status', append ? 'Loading more…' : 'Loading…');
  try {
    const res = await api('GET', `/v1/audit-events?${query(params)}`);
    if (ticket !== state.loads.audit) return;
    const events = res.data ?? [];
    const rows = events.map(eventRow);
    if (append) {
      body.append(...rows);
    } else {
      const filtered = view.filters.action || view.filters.actor_id;
      body.replaceChildren(...(rows.length ? rows : [emptyRow(table, filtered ? 'No events match these filters.' : 'No events yet.')]));
    }
    view.shown = (append ? view.shown : 0) + events.length;
    view.cursor = res.next_cursor ?? null;
    const hadFocus = document.activeElement === more;
    more.hidden = !view.cursor;
    // The button left with the last page: carry on at the first new row.
    if (hadFocus && more.hidden) $('button.actor', rows[0] ?? table)?.focus();
    setStatus('audit-status', describe(res.pagination?.total_count ?? view.shown));
  } catch (err) {
    if (ticket !== state.loads.audit) return;
    if (append) {
      setStatus('audit-status', `Could not load more events: ${err.message}.`);
    } else {
      view.cursor = null;
      more.hidden = true;
      body.replaceChildren(emptyRow(table, `Could not load the audit log: ${err.message}.`));
      setStatus('audit-status', '');
    }
  } finally {
    if (ticket === state.loads.audit) {
      view.loading = false;
      table.removeAttribute('aria-busy');
      more.removeAttribute('aria-disabled');
    }
  }
}

/** Lists from the newest event again with the form's filters (unless they are already shown and `force` is off). */
function applyFilters({ force = false } = {}) {
  const next = { action: actionInput.value.trim(), actor_id: actorInput.value.trim() };
  const same = next.action === view.filters.action && next.actor_id === view.filters.actor_id;
  if (same && !force) return;
  view.filters = next;
  view.cursor = null;
  loadAudit();
}

function filterByActor(id) {
  actorInput.value = id;
  applyFilters();
  actorInput.focus();
}

if (table) {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    applyFilters({ force: true });
  });
  for (const input of [actionInput, actorInput]) input.addEventListener('change', () => applyFilters());
  $('#audit-clear').addEventListener('click', () => {
    actionInput.value = '';
    actorInput.value = '';
    applyFilters();
    actionInput.focus();
  });
  more.addEventListener('click', () => loadAudit({ append: true }));
}
