// The congress dashboard: a one-page app over the REST API (/v1), no framework, no build step.
// Hash routes:
//   #/                 overview: policies, datasources, the recent action requests
//   #/policies/NAME    one policy: rules, violations (paged by the server), "Why?", simulate, history
//   #/library          the policy library, by category
//   #/library/NAME     one library policy: inspect it, customise its parameters, activate it
//   #/actions          action requests: approve or deny the pending ones
// Data reaches the DOM only as text (el() appends strings as text nodes), never as HTML.
'use strict';

const TOKEN_KEY = 'congress-token';
const PAGE_SIZES = [10, 25, 50, 100];
const HISTORY_LIMIT = 500;

// ---------------------------------------------------------------------------------------------
// DOM helpers

let idCounter = 0;

/** A fresh id for label/aria references. */
function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** Creates an element: attributes (on* keys add listeners), then children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'value') node.value = value;
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  return append(node, children);
}

/** Appends children, skipping null/undefined/false; strings and numbers become text nodes. */
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Tells screen readers about something that happened away from the focus. */
function announce(message) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  window.setTimeout(() => { region.textContent = message; }, 50);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function pad(n) {
  return String(n).padStart(2, '0');
}

/** Local date and time, "2024-05-01 14:03:09". */
function formatDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `
    + `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A <time> for an RFC 3339 string, a dash for none. */
function timeNode(iso) {
  if (!iso) return el('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return el('time', { datetime: iso, title: iso }, formatDate(date));
}

function formatCount(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
}

/** An action request's arguments: positional values, then name=value. */
function formatArgs(args) {
  const positional = (args?.positional ?? []).map((v) => JSON.stringify(v));
  const named = Object.entries(args?.named ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return [...positional, ...named].join(', ');
}

function dash(value) {
  return value === null || value === undefined || value === '' ? el('span', { class: 'muted' }, '—') : String(value);
}

// ---------------------------------------------------------------------------------------------
// Badges

const SEVERITY_TONE = { critical: 'critical', high: 'danger', medium: 'warning', low: 'info', info: 'neutral' };
const STATE_TONE = { ok: 'success', error: 'danger' };
const PHASE_TONE = {
  Pending: 'warning', Approved: 'info', Running: 'info', Succeeded: 'success', Failed: 'danger', Denied: 'neutral',
};
const CHANGE_TONE = { appeared: 'danger', cleared: 'success' };

function badge(text, tone = 'neutral', title = null) {
  return el('span', { class: `badge badge--${tone}`, title }, text);
}

function severityBadge(severity) {
  return severity ? badge(severity, SEVERITY_TONE[severity] ?? 'neutral') : dash(null);
}

function stateBadge(policy) {
  return badge(policy.state ?? 'unknown', STATE_TONE[policy.state] ?? 'neutral', policy.message);
}

function phaseBadge(phase) {
  return badge(phase, PHASE_TONE[phase] ?? 'neutral');
}

function syncedBadge(synced) {
  return synced ? badge('synced', 'success') : badge('not synced', 'warning');
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

/** A path with query parameters; empty values are left out. */
function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

const enc = encodeURIComponent;

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Calls the API; throws ApiError with the server's error.message on a 4xx/5xx. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token()) headers['X-Auth-Token'] = token();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await readJson(response);
  if (!response.ok) {
    const message = payload?.error?.message || `${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, message, payload);
  }
  return payload;
}

// ---------------------------------------------------------------------------------------------
// Page building blocks

/** A page: its heading (focused after navigation), an optional back link and buttons, its content. */
function page(title, content, { back = null, tools = [], subtitle = null } = {}) {
  return el('div', { class: 'page' },
    back && el('p', { class: 'back' }, el('a', { href: back.href }, `← ${back.label}`)),
    el('div', { class: 'page-head' },
      el('div', {}, el('h1', { tabindex: '-1' }, title), subtitle && el('p', { class: 'subtitle' }, subtitle)),
      tools.length > 0 && el('div', { class: 'page-tools' }, tools)),
    content);
}

/** A card: a titled section. */
function card(title, body, { tools = [], id = uid('card') } = {}) {
  const headingId = `${id}-title`;
  return el('section', { class: 'card', id, 'aria-labelledby': headingId },
    el('div', { class: 'card-head' },
      el('h2', { id: headingId }, title),
      el('div', { class: 'card-tools' }, tools)),
    body);
}

function refreshButton() {
  return el('button', { type: 'button', class: 'button button--secondary', onclick: () => route() }, 'Refresh');
}

function errorBox(message) {
  return el('div', { class: 'alert alert--error', role: 'alert' }, message);
}

/** A definition list from [label, value] pairs, skipping pairs without a value. */
function facts(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined) continue;
    dl.append(el('div', {}, el('dt', {}, label), el('dd', {}, value)));
  }
  return dl;
}

function policyLink(name) {
  return name ? el('a', { href: `#/policies/${enc(name)}` }, name) : dash(null);
}

function libraryLink(name) {
  return el('a', { href: `#/library/${enc(name)}` }, name);
}

/** A label and its control, stacked. */
function field(labelText, control, help = null) {
  const helpId = help ? uid('help') : null;
  if (helpId) control.setAttribute('aria-describedby', helpId);
  return el('div', { class: 'field' },
    el('label', { for: control.id }, labelText),
    control,
    help && el('p', { class: 'help', id: helpId }, help));
}

/** A search box that calls onChange (debounced) as the user types; compact: the label is for screen readers only. */
function filterBox(labelText, onChange, { initial = '', compact = false } = {}) {
  const input = el('input', {
    type: 'search', id: uid('filter'), value: initial, placeholder: 'Filter…', autocomplete: 'off',
  });
  const fire = debounce(() => onChange(input.value.trim()), 200);
  input.addEventListener('input', fire);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') onChange(input.value.trim());
  });
  return el('div', { class: compact ? 'filter filter--compact' : 'filter' },
    el('label', { for: input.id, class: compact ? 'visually-hidden' : null }, labelText), input);
}

// ---------------------------------------------------------------------------------------------
// Sortable, filterable table (client side, for the small tables)

function compareValues(a, b) {
  const aEmpty = a === null || a === undefined || a === '';
  const bEmpty = b === null || b === undefined || b === '';
  if (aEmpty || bEmpty) return aEmpty === bEmpty ? 0 : aEmpty ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return String(a).localeCompare(String(b), 'en', { numeric: true, sensitivity: 'base' });
}

/** A column header that sorts: a <button> inside the <th>, aria-sort on the <th>. */
function sortHeader(label, active, order, onSort, numeric = false) {
  const indicator = active ? (order === 'asc' ? '▲' : '▼') : '↕';
  return el('th', {
    scope: 'col',
    class: numeric ? 'num' : null,
    'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : 'none',
  }, el('button', { type: 'button', class: 'sort', onclick: onSort },
    label, el('span', { class: 'sort-indicator', 'aria-hidden': 'true' }, indicator)));
}

/**
 * columns: [{ key, label, value(row) -> sort/filter value, cell(row) -> Node|string, sortable, numeric }].
 * Returns { node, tools (filter box and count, null without a filter), setRows(rows), updateRow(key, row) }.
 */
function dataTable({ label, columns, rows, rowKey = null, sort = null, order = 'asc', filter = true, empty = 'None.' }) {
  const state = { rows: [...rows], sort, order, query: '' };
  const thead = el('thead');
  const tbody = el('tbody');
  const count = el('span', { class: 'count muted', 'aria-live': 'polite' });
  const table = el('table', { class: 'table' }, el('caption', { class: 'visually-hidden' }, label), thead, tbody);

  const valueOf = (column, row) => (column.value ? column.value(row) : row[column.key]);
  const textOf = (column, row) => {
    const value = valueOf(column, row);
    return value === null || value === undefined ? '' : String(value).toLowerCase();
  };

  function visibleRows() {
    const query = state.query.toLowerCase();
    let shown = query ? state.rows.filter((row) => columns.some((c) => textOf(c, row).includes(query))) : [...state.rows];
    const column = columns.find((c) => c.key === state.sort);
    if (column) {
      const sign = state.order === 'asc' ? 1 : -1;
      shown = shown.sort((a, b) => sign * compareValues(valueOf(column, a), valueOf(column, b)));
    }
    return shown;
  }

  function onSort(key) {
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else Object.assign(state, { sort: key, order: 'asc' });
    render();
    thead.querySelector(`[data-key="${key}"] button`)?.focus();
  }

  function renderHead() {
    const cells = columns.map((c) => {
      const th = c.sortable === false
        ? el('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)
        : sortHeader(c.label, state.sort === c.key, state.order, () => onSort(c.key), c.numeric);
      th.dataset.key = c.key;
      return th;
    });
    thead.replaceChildren(el('tr', {}, cells));
  }

  function renderRow(row) {
    const tr = el('tr', {}, columns.map((c) => el('td', { class: c.numeric ? 'num' : null },
      c.cell ? c.cell(row) : dash(valueOf(c, row)))));
    if (rowKey) tr.dataset.key = String(rowKey(row));
    return tr;
  }

  function render() {
    renderHead();
    const shown = visibleRows();
    tbody.replaceChildren(...(shown.length > 0
      ? shown.map(renderRow)
      : [el('tr', {}, el('td', { colspan: columns.length, class: 'empty' }, state.query ? 'No match.' : empty))]));
    const noun = state.rows.length === 1 ? 'row' : 'rows';
    count.textContent = state.query ? `${shown.length} of ${state.rows.length} ${noun}` : `${state.rows.length} ${noun}`;
  }

  render();
  return {
    node: el('div', { class: 'table-scroll' }, table),
    /** The filter box and the row count, for the card's head. */
    tools: filter ? el('div', { class: 'table-tools' }, count, filterBox(`Filter ${label.toLowerCase()}`, (q) => { state.query = q; render(); }, { compact: true })) : null,
    setRows(next) { state.rows = [...next]; render(); },
    updateRow(key, row) {
      state.rows = state.rows.map((r) => (String(rowKey(r)) === String(key) ? row : r));
      render();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Overview (#/)

function summary(data) {
  const policies = data.policies ?? [];
  const datasources = data.datasources ?? [];
  const violations = policies.reduce((sum, p) => sum + (p.violations ?? 0), 0);
  const failing = policies.filter((p) => p.state === 'error').length;
  const synced = datasources.filter((d) => d.synced).length;
  const stat = (label, value, tone = null) => el('div', { class: `stat${tone ? ` stat--${tone}` : ''}` },
    el('dt', {}, label), el('dd', {}, value));
  return el('dl', { class: 'stats' },
    stat('Policies', formatCount(policies.length)),
    stat('Violations', formatCount(violations), violations > 0 ? 'danger' : 'success'),
    stat('Policies in error', formatCount(failing), failing > 0 ? 'danger' : null),
    stat('Datasources synced', `${synced} / ${datasources.length}`, synced < datasources.length ? 'warning' : 'success'));
}

function policiesTable(policies) {
  return dataTable({
    label: 'Policies',
    rows: policies,
    rowKey: (p) => p.name,
    sort: 'name',
    empty: 'No policies.',
    columns: [
      { key: 'name', label: 'Name', cell: (p) => policyLink(p.name) },
      { key: 'kind', label: 'Kind' },
      { key: 'enforcement', label: 'Enforcement' },
      { key: 'category', label: 'Category' },
      { key: 'severity', label: 'Severity', cell: (p) => severityBadge(p.severity) },
      {
        key: 'violations', label: 'Violations', numeric: true,
        cell: (p) => el('span', { class: p.violations > 0 ? 'count-bad' : null }, formatCount(p.violations)),
      },
      { key: 'state', label: 'State', cell: stateBadge },
    ],
  });
}

function datasourcesTable(datasources) {
  return dataTable({
    label: 'Datasources',
    rows: datasources,
    rowKey: (d) => d.name,
    sort: 'name',
    empty: 'No datasources.',
    columns: [
      { key: 'name', label: 'Name' },
      { key: 'driver', label: 'Driver' },
      { key: 'synced', label: 'Synced', value: (d) => (d.synced ? 'synced' : 'not synced'), cell: (d) => syncedBadge(d.synced) },
      { key: 'last_updated', label: 'Last updated', cell: (d) => timeNode(d.last_updated) },
      { key: 'last_error', label: 'Last error', cell: (d) => (d.last_error ? el('span', { class: 'text-error' }, d.last_error) : dash(null)) },
      { key: 'rows', label: 'Rows', numeric: true, cell: (d) => formatCount(d.rows) },
    ],
  });
}

/** The columns of an action request table; `tools` adds the Approve/Deny column. */
function actionColumns(tools = null) {
  const columns = [
    { key: 'name', label: 'Action', cell: (a) => el('code', {}, a.name) },
    { key: 'args', label: 'Arguments', value: (a) => formatArgs(a.args), cell: (a) => el('code', {}, formatArgs(a.args)) },
    { key: 'policy', label: 'Policy', cell: (a) => policyLink(a.policy) },
    { key: 'phase', label: 'Phase', cell: (a) => phaseBadge(a.phase) },
    { key: 'created', label: 'Created', cell: (a) => timeNode(a.created) },
    { key: 'message', label: 'Message' },
  ];
  if (tools) columns.push({ key: 'tools', label: 'Decision', sortable: false, value: () => '', cell: tools });
  return columns;
}

async function renderOverview() {
  const data = await api('/v1/overview');
  const actions = dataTable({
    label: 'Recent action requests', rows: data.action_requests ?? [], columns: actionColumns(),
    rowKey: (a) => a.id, sort: 'created', order: 'desc', empty: 'No action requests.',
  });
  const policies = policiesTable(data.policies ?? []);
  const datasources = datasourcesTable(data.datasources ?? []);
  return page('Overview', [
    summary(data),
    card('Policies', policies.node, { id: 'policies', tools: [policies.tools] }),
    card('Datasources', datasources.node, { id: 'datasources', tools: [datasources.tools] }),
    card('Recent action requests', actions.node, {
      id: 'recent-actions', tools: [actions.tools, el('a', { href: '#/actions' }, 'All action requests')],
    }),
  ], { tools: [refreshButton()] });
}

// ---------------------------------------------------------------------------------------------
// Policy (#/policies/NAME)

function policyFacts(policy) {
  return facts([
    ['Kind', policy.kind ?? null],
    ['Enforcement', policy.enforcement ?? null],
    ['Category', policy.category ?? null],
    ['Severity', policy.severity ? severityBadge(policy.severity) : null],
    ['Library', policy.library ? el('span', {}, libraryLink(policy.library.name), ` ${policy.library.version ?? ''}`) : null],
    ['Violations', formatCount(policy.violations)],
    ['State', stateBadge(policy)],
  ]);
}

/** Rules as a list: name and comment above the rule's text. */
function rulesList(rules) {
  if (!rules || rules.length === 0) return el('p', { class: 'muted' }, 'No rules.');
  return el('ol', { class: 'rules' }, rules.map((rule) => el('li', {},
    (rule.name || rule.comment) && el('div', { class: 'rule-head' },
      rule.name && el('span', { class: 'rule-name' }, rule.name),
      rule.comment && el('span', { class: 'rule-comment' }, rule.comment)),
    el('pre', { class: 'code' }, el('code', {}, rule.rule)))));
}

/** A proof as nested lists: the literal, then how it holds (fact, rule, builtin, negation). */
function proofItem(node) {
  const how = String(node.how ?? '');
  const howNode = how.startsWith('rule: ')
    ? el('span', { class: 'proof-how' }, 'by rule ', el('code', {}, how.slice('rule: '.length)))
    : el('span', { class: 'proof-how' }, how);
  const children = node.children ?? [];
  return el('li', {},
    el('code', { class: 'proof-literal' }, node.literal), ' ', howNode,
    children.length > 0 && el('ul', {}, children.map(proofItem)));
}

function proofTree(explanation) {
  return el('ul', { class: 'proof', 'aria-label': `Proof of ${explanation.row}` }, proofItem(explanation.proof));
}

/** Reads the violations' paging state from the route's query (#/policies/p?limit=10&sort=first_seen...). */
function violationsState(params) {
  const number = (key, fallback, min) => {
    const value = Number.parseInt(params.get(key) ?? '', 10);
    return Number.isFinite(value) && value >= min ? value : fallback;
  };
  return {
    offset: number('offset', 0, 0),
    limit: number('limit', 50, 1),
    sort: params.get('sort') === 'first_seen' ? 'first_seen' : 'row',
    order: params.get('order') === 'desc' ? 'desc' : 'asc',
    filter: params.get('filter') ?? '',
  };
}

/** Keeps the violations' state in the address (without a new history entry or a re-render). */
function saveViolationsState(policyName, state) {
  const query = withQuery('', {
    offset: state.offset || null,
    limit: state.limit === 50 ? null : state.limit,
    sort: state.sort === 'row' ? null : state.sort,
    order: state.order === 'asc' ? null : state.order,
    filter: state.filter,
  });
  window.history.replaceState(null, '', `#/policies/${enc(policyName)}${query}`);
}

function violationsSection(policy, params) {
  const state = violationsState(params);
  const status = el('p', { class: 'count muted', role: 'status' });
  const filter = filterBox('Filter violations', (text) => {
    if (text === state.filter) return;
    Object.assign(state, { filter: text, offset: 0 });
    load();
  }, { initial: state.filter, compact: true });
  const section = card('Violations', [], { id: 'violations', tools: [el('div', { class: 'table-tools' }, status, filter)] });
  const thead = el('thead');
  const tbody = el('tbody');
  const pager = el('div', { class: 'pager' });
  const problem = el('div');
  let loads = 0;

  const load = async () => {
    loads += 1;
    const seq = loads;
    section.setAttribute('aria-busy', 'true');
    saveViolationsState(policy.name, state);
    try {
      const data = await api(withQuery(`/v1/policies/${enc(policy.name)}/violations`, state));
      if (seq !== loads) return;
      problem.replaceChildren();
      renderRows(data);
    } catch (error) {
      if (seq !== loads) return;
      if (error.status === 401) return showSignIn();
      problem.replaceChildren(errorBox(error.message));
    } finally {
      if (seq === loads) section.removeAttribute('aria-busy');
    }
  };

  const sortBy = (key) => {
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else Object.assign(state, { sort: key, order: 'asc' });
    state.offset = 0;
    load().then(() => thead.querySelector(`[data-key="${key}"] button`)?.focus());
  };

  function renderHead() {
    const row = sortHeader('Row', state.sort === 'row', state.order, () => sortBy('row'));
    row.dataset.key = 'row';
    const seen = sortHeader('First seen', state.sort === 'first_seen', state.order, () => sortBy('first_seen'));
    seen.dataset.key = 'first_seen';
    thead.replaceChildren(el('tr', {}, row, seen, el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Explanation'))));
  }

  function renderRows(data) {
    renderHead();
    const results = data.results ?? [];
    tbody.replaceChildren(...(results.length > 0
      ? results.map((v) => violationRow(policy.name, v))
      : [el('tr', {}, el('td', { colspan: 3, class: 'empty' }, state.filter ? 'No violation matches the filter.' : 'No violations.'))]));
    const first = results.length > 0 ? data.offset + 1 : 0;
    const last = data.offset + results.length;
    status.textContent = `${formatCount(first)}–${formatCount(last)} of ${formatCount(data.total)}`;
    renderPager(data);
    section.dataset.loaded = 'true';
    if (loads === 1) window.performance.mark('violations-rendered');
  }

  function renderPager(data) {
    const sizeSelect = el('select', { id: uid('page-size') },
      [...new Set([...PAGE_SIZES, state.limit])].sort((a, b) => a - b)
        .map((n) => el('option', { value: String(n), selected: n === state.limit }, String(n))));
    sizeSelect.addEventListener('change', () => {
      state.limit = Number(sizeSelect.value);
      state.offset = 0;
      load();
    });
    const go = (offset) => () => { state.offset = Math.max(0, offset); load(); };
    const atStart = data.offset <= 0;
    const atEnd = data.offset + state.limit >= data.total;
    const lastPage = Math.max(0, Math.ceil(data.total / state.limit) - 1) * state.limit;
    const pageButton = (label, disabled, offset) => el('button', {
      type: 'button', class: 'button button--secondary', disabled, onclick: go(offset),
    }, label);
    pager.replaceChildren(
      el('div', { class: 'field field--inline' }, el('label', { for: sizeSelect.id }, 'Per page'), sizeSelect),
      el('p', { class: 'muted page-number' }, `Page ${formatCount(Math.floor(data.offset / state.limit) + 1)} of ${formatCount(Math.max(1, Math.ceil(data.total / state.limit)))}`),
      el('div', { class: 'pager-buttons' },
        pageButton('« First', atStart, 0),
        pageButton('← Previous', atStart, data.offset - state.limit),
        pageButton('Next →', atEnd, data.offset + state.limit),
        pageButton('Last »', atEnd, lastPage)));
  }


  renderHead();
  tbody.append(el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'Loading…')));
  append(section, [
    problem,
    el('div', { class: 'table-scroll' }, el('table', { class: 'table table--violations' },
      el('caption', { class: 'visually-hidden' }, `Violations of ${policy.name}`), thead, tbody)),
    pager,
  ]);
  load();
  return section;
}

/** One violation: its row, first-seen time, and a "Why?" button that opens its proof below. */
function violationRow(policyName, violation) {
  const detailId = uid('proof');
  const button = el('button', {
    type: 'button', class: 'button button--small button--secondary', 'aria-expanded': 'false', 'aria-controls': detailId,
    'aria-label': `Why ${violation.row}?`,
  }, 'Why?');
  const tr = el('tr', {},
    el('td', {}, el('code', {}, violation.row)),
    el('td', {}, timeNode(violation.first_seen)),
    el('td', { class: 'cell-tools' }, button));
  button.addEventListener('click', () => toggleExplanation(policyName, violation, tr, button, detailId));
  return tr;
}

async function toggleExplanation(policyName, violation, tr, button, detailId) {
  const open = tr.nextElementSibling?.classList.contains('explain-row');
  if (open) {
    tr.nextElementSibling.remove();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  const box = el('div', { id: detailId, class: 'explain', 'aria-busy': 'true' }, el('p', { class: 'muted' }, 'Loading the proof…'));
  tr.after(el('tr', { class: 'explain-row' }, el('td', { colspan: 3 }, box)));
  button.setAttribute('aria-expanded', 'true');
  try {
    const path = withQuery(`/v1/policies/${enc(policyName)}/explain`, { row: violation.row });
    const explanation = await api(path);
    box.replaceChildren(el('p', { class: 'explain-title' }, 'Why ', el('code', {}, violation.row), ' holds:'), proofTree(explanation));
  } catch (error) {
    if (error.status === 401) return showSignIn();
    box.replaceChildren(errorBox(error.message));
  } finally {
    box.removeAttribute('aria-busy');
  }
}

/** A delta line such as error+("vm-9"): the sign after the table name says appears (+) or disappears (-). */
function deltaSign(line) {
  const match = /^[^(]*?([+-])\(/.exec(line);
  return match ? match[1] : null;
}

function deltaList(lines) {
  if (lines.length === 0) return el('p', { class: 'muted' }, 'No change: the query gives the same answer.');
  return el('ul', { class: 'delta', 'aria-label': 'Changes to the query' }, lines.map((line) => {
    const sign = deltaSign(line);
    const tone = sign === '+' ? 'plus' : sign === '-' ? 'minus' : 'other';
    const label = sign === '+' ? 'appears' : sign === '-' ? 'disappears' : '';
    return el('li', { class: `delta-line delta-line--${tone}` },
      el('code', {}, line), label && el('span', { class: 'visually-hidden' }, ` (${label})`));
  }));
}

function simulateSection(policy) {
  const sequence = el('textarea', { id: uid('sequence'), rows: '4', spellcheck: 'false', required: true });
  const query = el('input', { id: uid('query'), type: 'text', value: 'error(x)', spellcheck: 'false', required: true });
  const actionPolicy = el('input', { id: uid('action-policy'), type: 'text', value: 'action', spellcheck: 'false' });
  const submit = el('button', { type: 'submit', class: 'button' }, 'Simulate');
  const output = el('div', { class: 'simulate-output', 'aria-live': 'polite' });

  const onSubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    output.setAttribute('aria-busy', 'true');
    try {
      const result = await api(`/v1/policies/${enc(policy.name)}?action=simulate&delta=true`, {
        method: 'POST',
        body: { query: query.value.trim(), sequence: sequence.value, action_policy: actionPolicy.value.trim() },
      });
      output.replaceChildren(el('h3', {}, 'Result'), deltaList(result?.result ?? []));
    } catch (error) {
      if (error.status === 401) return showSignIn();
      output.replaceChildren(errorBox(error.message));
    } finally {
      submit.disabled = false;
      output.removeAttribute('aria-busy');
    }
  };

  const form = el('form', { class: 'form', onsubmit: onSubmit },
    field('Sequence', sequence, 'One change per line: table+(values) adds a row, table-(values) removes one, e.g. nova:servers+("vm-9", …).'),
    el('div', { class: 'field-row' },
      field('Query', query),
      field('Action policy', actionPolicy)),
    el('div', { class: 'form-actions' }, submit));
  return card('Simulate', [
    el('p', { class: 'muted' }, 'What would change if these rows changed? Nothing is kept.'),
    form, output,
  ], { id: 'simulate' });
}

function historySection(policy) {
  const base = `/v1/policies/${enc(policy.name)}/history`;
  const download = el('a', { href: withQuery(base, { format: 'jsonl' }), download: `${policy.name}-history.jsonl` }, 'Download as JSON lines');
  download.addEventListener('click', (event) => downloadWithToken(event, download));
  const body = el('div', {}, el('p', { class: 'muted' }, 'Loading…'));
  const section = card('History', body, { id: 'history', tools: [download] });


  api(withQuery(base, { limit: HISTORY_LIMIT })).then((data) => {
    const rows = data?.results ?? [];
    const table = dataTable({
      label: 'History', rows, sort: 'at', order: 'desc', empty: 'No change recorded yet.',
      columns: [
        { key: 'at', label: 'Time', cell: (h) => timeNode(h.at) },
        { key: 'change', label: 'Change', cell: (h) => badge(h.change, CHANGE_TONE[h.change] ?? 'neutral') },
        { key: 'row', label: 'Row', cell: (h) => el('code', {}, h.row) },
        { key: 'cause', label: 'Cause' },
      ],
    });
    body.replaceChildren(table.node);
    if (rows.length >= HISTORY_LIMIT) {
      body.append(el('p', { class: 'muted' }, `The first ${HISTORY_LIMIT} changes; download the history for all of them.`));
    }
    section.querySelector('.card-tools').prepend(table.tools);
  }).catch((error) => {
    if (error.status === 401) return showSignIn();
    body.replaceChildren(errorBox(error.message));
  });
  return section;
}

/** A plain link cannot send X-Auth-Token: with a token, fetch the file and save it from memory. */
async function downloadWithToken(event, link) {
  if (!token()) return;
  event.preventDefault();
  try {
    const response = await fetch(link.href, { headers: { 'X-Auth-Token': token() } });
    if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
    const url = URL.createObjectURL(await response.blob());
    const temporary = el('a', { href: url, download: link.getAttribute('download') });
    document.body.append(temporary);
    temporary.click();
    temporary.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    announce(`Download failed: ${error.message}`);
  }
}

async function renderPolicy([name], params) {
  const [policy, rules] = await Promise.all([
    api(`/v1/policies/${enc(name)}`),
    api(`/v1/policies/${enc(name)}/rules`),
  ]);
  return page(policy.name, [
    policy.state === 'error' && policy.message && errorBox(policy.message),
    el('section', { class: 'card', 'aria-label': 'Summary' },
      policy.description && el('p', { class: 'description' }, policy.description),
      policyFacts(policy)),
    violationsSection(policy, params),
    card('Rules', rulesList(rules?.results ?? [])),
    simulateSection(policy),
    historySection(policy),
  ], { back: { href: '#/', label: 'Overview' }, subtitle: 'Policy' });
}

// ---------------------------------------------------------------------------------------------
// Library (#/library, #/library/NAME)

function libraryGroups(policies, query, category) {
  const needle = query.toLowerCase();
  const matches = (lib) => (!category || (lib.category ?? '') === category)
    && (!needle || [lib.name, lib.description, lib.category, lib.severity]
      .some((v) => String(v ?? '').toLowerCase().includes(needle)));
  const groups = new Map();
  for (const lib of policies.filter(matches)) {
    const key = lib.category ?? '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(lib);
  }
  return [...groups.entries()].sort(([a], [b]) => compareValues(a, b));
}

function libraryGroup(category, policies) {
  const table = dataTable({
    label: category || 'Uncategorised', rows: policies, sort: 'name', filter: false, rowKey: (l) => l.name,
    columns: [
      { key: 'name', label: 'Name', cell: (l) => libraryLink(l.name) },
      { key: 'severity', label: 'Severity', cell: (l) => severityBadge(l.severity) },
      { key: 'version', label: 'Version' },
      { key: 'description', label: 'Description', cell: (l) => el('span', { class: 'description' }, l.description ?? '') },
      { key: 'active', label: 'Active as', value: (l) => (l.active ?? []).join(' '), cell: (l) => activeLinks(l.active) },
    ],
  });
  table.node.querySelector('table').classList.add('table--library');
  return card(category || 'Uncategorised', table.node);
}

function activeLinks(names) {
  if (!names || names.length === 0) return dash(null);
  const links = [];
  names.forEach((name, i) => {
    if (i > 0) links.push(', ');
    links.push(policyLink(name));
  });
  return el('span', {}, links);
}

async function renderLibrary() {
  const data = await api('/v1/librarypolicies?include_rules=false');
  const policies = data?.results ?? [];
  const state = { query: '', category: '' };
  const groups = el('div', { class: 'groups' });
  const count = el('p', { class: 'count muted', role: 'status' });

  const render = () => {
    const found = libraryGroups(policies, state.query, state.category);
    const shown = found.reduce((n, [, list]) => n + list.length, 0);
    groups.replaceChildren(...(found.length > 0 ? found.map(([c, list]) => libraryGroup(c, list)) : [el('p', { class: 'muted' }, 'No library policy matches.')]));
    count.textContent = `${shown} of ${policies.length} policies`;
  };

  const categories = [...new Set(policies.map((p) => p.category ?? ''))].sort(compareValues);
  const select = el('select', { id: uid('category') },
    el('option', { value: '' }, 'All categories'),
    categories.filter((c) => c !== '').map((c) => el('option', { value: c }, c)));
  select.addEventListener('change', () => { state.category = select.value; render(); });

  render();
  return page('Library', [
    el('div', { class: 'toolbar' },
      filterBox('Filter the library', (q) => { state.query = q; render(); }),
      el('div', { class: 'field field--inline' }, el('label', { for: select.id }, 'Category'), select),
      count),
    groups,
  ], { subtitle: 'Ready-made policies: inspect one, set its parameters, activate it.' });
}

/** Default rows as lists (a one-column parameter may list bare values). */
function defaultRows(parameter) {
  return (parameter.default ?? []).map((row) => (Array.isArray(row) ? row : [row]));
}

function parametersSummary(parameters) {
  if (!parameters || parameters.length === 0) return el('p', { class: 'muted' }, 'No parameters.');
  return el('div', { class: 'table-scroll' }, el('table', { class: 'table' },
    el('caption', { class: 'visually-hidden' }, 'Parameters'),
    el('thead', {}, el('tr', {}, ['Table', 'Columns', 'Default rows', 'Description'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, parameters.map((p) => el('tr', {},
      el('td', {}, el('code', {}, p.table)),
      el('td', {}, (p.columns ?? []).map((c) => `${c.name} (${c.type})`).join(', ')),
      el('td', { class: 'num' }, String(defaultRows(p).length)),
      el('td', {}, dash(p.description)))))));
}

/** One typed cell of a parameter row. */
function cellInput(column, value, label) {
  const numeric = column.type === 'integer' || column.type === 'number';
  return el('input', {
    type: numeric ? 'number' : 'text',
    step: column.type === 'integer' ? '1' : column.type === 'number' ? 'any' : null,
    value: value === null || value === undefined ? '' : String(value),
    'aria-label': label,
    dataset: { type: column.type ?? 'string', column: column.name },
    spellcheck: 'false',
  });
}

/** An editable table of a parameter's rows: typed cells, add and remove rows, prefilled with its defaults. */
function parameterEditor(parameter) {
  const columns = parameter.columns ?? [];
  const tbody = el('tbody');
  const renumber = () => {
    [...tbody.rows].forEach((tr, i) => {
      tr.querySelectorAll('input').forEach((input, j) => input.setAttribute('aria-label', `${parameter.table} row ${i + 1}, ${columns[j].name}`));
      tr.querySelector('button').setAttribute('aria-label', `Remove row ${i + 1} of ${parameter.table}`);
    });
  };
  const addRow = (values) => {
    const tr = el('tr', {}, columns.map((c, j) => el('td', {}, cellInput(c, values[j], c.name))),
      el('td', { class: 'cell-tools' }, el('button', {
        type: 'button', class: 'button button--small button--secondary',
        onclick: () => { tr.remove(); renumber(); },
      }, 'Remove')));
    tbody.append(tr);
    renumber();
    return tr;
  };
  defaultRows(parameter).forEach(addRow);
  const add = el('button', {
    type: 'button', class: 'button button--small button--secondary',
    onclick: () => addRow([]).querySelector('input')?.focus(),
  }, `Add a row to ${parameter.table}`);
  const fieldset = el('fieldset', { class: 'parameter', dataset: { table: parameter.table } },
    el('legend', {}, el('code', {}, parameter.table)),
    parameter.description && el('p', { class: 'help' }, parameter.description),
    el('div', { class: 'table-scroll' }, el('table', { class: 'table table--edit' },
      el('thead', {}, el('tr', {},
        columns.map((c) => el('th', { scope: 'col' }, c.name, ' ', el('span', { class: 'column-type' }, c.type))),
        el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'Remove')))),
      tbody)),
    add);
  return { node: fieldset, rows: () => readRows(parameter, tbody) };
}

/** The rows typed in a parameter's editor, as JSON values; throws on a number that isn't one. */
function readRows(parameter, tbody) {
  return [...tbody.rows].map((tr, i) => [...tr.querySelectorAll('input')].map((input) => {
    const text = input.value.trim();
    if (input.dataset.type === 'string') return input.value;
    const value = Number(text);
    const valid = text !== '' && Number.isFinite(value) && (input.dataset.type !== 'integer' || Number.isInteger(value));
    if (!valid) throw new Error(`${parameter.table}, row ${i + 1}: ${input.dataset.column} must be ${input.dataset.type === 'integer' ? 'an integer' : 'a number'}.`);
    return value;
  }));
}

/** A free policy name for a new activation: the library policy's name, else name-2, name-3... */
function freeName(lib) {
  const taken = new Set(lib.active ?? []);
  if (!taken.has(lib.name)) return lib.name;
  let n = 2;
  while (taken.has(`${lib.name}-${n}`)) n += 1;
  return `${lib.name}-${n}`;
}

function activateForm(lib) {
  const name = el('input', { id: uid('policy-name'), type: 'text', value: freeName(lib), required: true, spellcheck: 'false', autocomplete: 'off' });
  const editors = (lib.parameters ?? []).map(parameterEditor);
  const submit = el('button', { type: 'submit', class: 'button' }, 'Activate');
  const problem = el('div');

  const onSubmit = async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    let parameters;
    try {
      parameters = Object.fromEntries(editors.map((e, i) => [lib.parameters[i].table, e.rows()]));
    } catch (error) {
      problem.replaceChildren(errorBox(error.message));
      return;
    }
    submit.disabled = true;
    try {
      const policy = await api(withQuery('/v1/policies', { library_policy: lib.name }), {
        method: 'POST', body: { name: name.value.trim(), parameters },
      });
      announce(`Activated ${policy.name}`);
      window.location.hash = `#/policies/${enc(policy.name)}`;
    } catch (error) {
      if (error.status === 401) return showSignIn();
      problem.replaceChildren(errorBox(error.message));
    } finally {
      submit.disabled = false;
    }
  };

  return el('form', { class: 'form', onsubmit: onSubmit },
    field('Policy name', name, 'The new policy\'s name.'),
    editors.length > 0
      ? [el('h3', {}, 'Parameters'), editors.map((e) => e.node)]
      : el('p', { class: 'muted' }, 'This policy has no parameters.'),
    problem,
    el('div', { class: 'form-actions' }, submit));
}

async function renderLibraryPolicy([name]) {
  const lib = await api(`/v1/librarypolicies/${enc(name)}`);
  return page(lib.name, [
    el('section', { class: 'card', 'aria-label': 'Summary' },
      lib.description && el('p', { class: 'description' }, lib.description),
      facts([
        ['Category', lib.category ?? null],
        ['Severity', lib.severity ? severityBadge(lib.severity) : null],
        ['Version', lib.version ?? null],
        ['Kind', lib.kind ?? null],
        ['Enforcement', lib.enforcement ?? null],
        ['Active as', activeLinks(lib.active)],
      ])),
    lib.example && card('Example', el('p', { class: 'example' }, lib.example)),
    card('Rules', rulesList(lib.rules ?? [])),
    card('Parameters', parametersSummary(lib.parameters)),
    card('Activate', activateForm(lib), { id: 'activate' }),
  ], { back: { href: '#/library', label: 'Library' }, subtitle: 'Library policy' });
}

// ---------------------------------------------------------------------------------------------
// Actions (#/actions)

async function decide(request, verb, table) {
  try {
    const updated = await api(`/v1/action-requests/${enc(request.id)}?action=${verb}`, { method: 'POST' });
    table.updateRow(request.id, updated);
    announce(`${verb === 'approve' ? 'Approved' : 'Denied'} ${request.name} ${formatArgs(request.args)}: ${updated.phase}`);
    const cell = table.node.querySelector(`tr[data-key="${CSS.escape(String(request.id))}"] td`);
    cell?.setAttribute('tabindex', '-1');
    cell?.focus();
  } catch (error) {
    if (error.status === 401) return showSignIn();
    announce(error.message);
    table.node.before(errorBox(`${request.name}: ${error.message}`));
    // The request may have changed meanwhile (409 when it had finished): show what it is now.
    api(`/v1/action-requests`).then((data) => table.setRows(data?.results ?? [])).catch(() => {});
  }
}

function decisionButtons(request, getTable) {
  if (request.phase !== 'Pending') return dash(null);
  const target = `${request.name}(${formatArgs(request.args)})`;
  const button = (verb, label, tone) => el('button', {
    type: 'button', class: `button button--small ${tone}`, 'aria-label': `${label} ${target}`,
    onclick: (event) => {
      event.currentTarget.closest('td').querySelectorAll('button').forEach((b) => { b.disabled = true; });
      decide(request, verb, getTable());
    },
  }, label);
  return el('div', { class: 'button-group' }, button('approve', 'Approve', 'button--approve'), button('deny', 'Deny', 'button--deny'));
}

async function renderActions() {
  const data = await api('/v1/action-requests');
  let table = null;
  table = dataTable({
    label: 'Action requests', rows: data?.results ?? [], rowKey: (a) => a.id, sort: 'created', order: 'desc',
    empty: 'No action requests.', columns: actionColumns((a) => decisionButtons(a, () => table)),
  });
  return page('Actions', [
    card('Action requests', table.node, { id: 'action-requests', tools: [table.tools] }),
  ], { tools: [refreshButton()], subtitle: 'What reactive policies ask to execute waits here for approval.' });
}

// ---------------------------------------------------------------------------------------------
// Sign in (a token kept in sessionStorage)

function renderSession() {
  const box = document.getElementById('session');
  box.replaceChildren();
  if (!token()) return;
  box.append(el('button', {
    type: 'button', class: 'button button--ghost',
    onclick: () => { window.sessionStorage.removeItem(TOKEN_KEY); renderSession(); route(); },
  }, 'Forget token'));
}

function signInView() {
  const input = el('input', { id: uid('token'), type: 'password', required: true, autocomplete: 'off' });
  const onSubmit = (event) => {
    event.preventDefault();
    window.sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    renderSession();
    route();
  };
  return page('Sign in', [
    card('API token', el('form', { class: 'form form--narrow', onsubmit: onSubmit },
      el('p', {}, token() ? 'The server refused this token. Enter another one.' : 'The server needs a token to answer.'),
      field('Token', input, 'Sent as X-Auth-Token; kept for this browser tab only.'),
      el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'button' }, 'Sign in')))),
  ]);
}

/** Replaces the page with the token form (after a 401). */
function showSignIn() {
  generation += 1;
  show(signInView(), true);
}

// ---------------------------------------------------------------------------------------------
// Router

const ROUTES = [
  { pattern: /^\/$/, nav: 'overview', render: renderOverview },
  { pattern: /^\/policies\/([^/]+)$/, nav: 'overview', render: renderPolicy },
  { pattern: /^\/library$/, nav: 'library', render: renderLibrary },
  { pattern: /^\/library\/([^/]+)$/, nav: 'library', render: renderLibraryPolicy },
  { pattern: /^\/actions$/, nav: 'actions', render: renderActions },
];

let generation = 0;
let firstRender = true;

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/';
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  return { path: path || '/', params: new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)) };
}

function findRoute(path) {
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (match) return { route: candidate, args: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

function setActiveNav(key) {
  document.querySelectorAll('[data-nav]').forEach((link) => {
    if (link.dataset.nav === key) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
}

function notFound(path) {
  return page('Not found', el('p', {}, `Nothing here: ${path}. `, el('a', { href: '#/' }, 'Back to the overview')));
}

function errorView(error) {
  return page('Something went wrong', errorBox(error.message));
}

/** Puts a page in <main>; after a navigation, focus goes to its heading. */
function show(view, focus) {
  const main = document.getElementById('main');
  main.replaceChildren(view);
  main.removeAttribute('aria-busy');
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Congress` : 'Congress';
  if (focus && heading) heading.focus();
}

async function route() {
  generation += 1;
  const current = generation;
  const { path, params } = parseHash();
  const match = findRoute(path);
  setActiveNav(match?.route.nav ?? null);
  document.getElementById('main').setAttribute('aria-busy', 'true');
  let view;
  try {
    view = match ? await match.route.render(match.args, params) : notFound(path);
  } catch (error) {
    view = error.status === 401 ? signInView() : errorView(error);
  }
  if (current !== generation) return;
  show(view, !firstRender);
  firstRender = false;
}

function start() {
  document.querySelector('.skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
  window.addEventListener('hashchange', () => route());
  renderSession();
  route();
}

start();
