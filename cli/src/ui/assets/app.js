// duraflow UI. Every value from the store is put on the page as text (textContent, attribute
// values), never parsed as HTML.
'use strict';

const REFRESH_MS = 2000;
const STATUSES = ['running', 'completed', 'failed', 'cancelled'];

// ---- small helpers -------------------------------------------------------------------------

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function getJSON(url, init) {
  const r = await fetch(url, init);
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function banner(message) {
  const b = document.getElementById('banner');
  b.textContent = message || '';
  b.hidden = !message;
}

function iso(ms) {
  return ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('.000Z', 'Z');
}

function dur(ms) {
  ms = Math.max(0, Math.round(ms));
  const s = Math.floor(ms / 1000);
  if (ms < 1000) return `${ms}ms`;
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function short(value, max) {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  if (s === undefined) return '';
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

function badge(status) {
  return el('span', { class: `badge ${status}`, 'data-status': status, text: status });
}

function runLink(id) {
  return el('a', { href: `/run?id=${encodeURIComponent(id)}`, class: 'mono', text: id });
}

let config = { allow_writes: false };
let timer = null;
function every(ms, f) {
  if (timer) clearInterval(timer);
  timer = setInterval(f, ms);
}

// ---- the list of workflows -----------------------------------------------------------------

const WITHIN = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'],
  ['24h', 'last 24 hours'], ['7d', 'last 7 days']];

function listState() {
  const q = new URLSearchParams(location.search);
  return {
    status: q.get('status') || '', prefix: q.get('prefix') || '', type: q.get('type') || '',
    within: q.get('within') || '', offset: Number(q.get('offset')) || 0,
    limit: Number(q.get('limit')) || 50,
  };
}

function setListState(s) {
  const q = new URLSearchParams();
  for (const k of ['status', 'prefix', 'type', 'within']) if (s[k]) q.set(k, s[k]);
  if (s.offset) q.set('offset', s.offset);
  if (s.limit !== 50) q.set('limit', s.limit);
  const qs = q.toString();
  history.replaceState(null, '', qs ? `/?${qs}` : '/');
}

function listPage() {
  document.title = 'duraflow: workflows';
  const main = document.getElementById('main');
  const s = listState();
  const counts = el('div', { class: 'counts', id: 'counts' });
  const prefix = el('input', { id: 'filter-prefix', type: 'search', placeholder: 'id starts with…', value: s.prefix });
  const type = el('input', { id: 'filter-type', type: 'search', placeholder: 'workflow name', value: s.type });
  const within = el('select', { id: 'filter-within' },
    ...WITHIN.map(([v, label]) => el('option', { value: v, selected: v === s.within, text: label })));
  const tbody = el('tbody', { id: 'workflow-rows' });
  const pagerText = el('span', { id: 'pager-text', class: 'muted' });
  const prev = el('button', { id: 'prev', type: 'button', text: '← newer' });
  const next = el('button', { id: 'next', type: 'button', text: 'older →' });
  main.replaceChildren(
    el('h1', { text: 'Workflows' }), counts,
    el('div', { class: 'filters' },
      el('label', {}, 'Search by id', prefix),
      el('label', {}, 'Type', type),
      el('label', {}, 'Started', within)),
    el('table', { id: 'workflows' },
      el('thead', {}, el('tr', {}, ...['Workflow id', 'Type', 'Status', 'Started', 'Duration', 'Run id']
        .map((h) => el('th', { text: h })))),
      tbody),
    el('div', { class: 'pager' }, prev, pagerText, next));

  let typing = null;
  const changed = () => {
    s.prefix = prefix.value.trim(); s.type = type.value.trim(); s.within = within.value; s.offset = 0;
    setListState(s);
    clearTimeout(typing);
    typing = setTimeout(load, 150);
  };
  prefix.addEventListener('input', changed);
  type.addEventListener('input', changed);
  within.addEventListener('change', changed);
  prev.addEventListener('click', () => { s.offset = Math.max(0, s.offset - s.limit); setListState(s); load(); });
  next.addEventListener('click', () => { s.offset += s.limit; setListState(s); load(); });

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const q = new URLSearchParams({ limit: s.limit, offset: s.offset });
    if (s.status) q.set('status', s.status);
    if (s.prefix) q.set('prefix', s.prefix);
    if (s.type) q.set('type', s.type);
    if (s.within) q.set('after', s.within);
    let data;
    try {
      data = await getJSON(`/api/workflows?${q}`);
    } catch (e) {
      banner(`Cannot load the workflows: ${e.message}`);
      return;
    }
    if (mine !== seq) return; // a newer request is on its way
    banner('');
    renderCounts(data.counts);
    tbody.replaceChildren(...data.workflows.map((w) => el('tr', { 'data-workflow-id': w.workflow_id, 'data-status': w.status },
      el('td', {}, runLink(w.workflow_id)),
      el('td', { class: 'mono', text: w.workflow_type }),
      el('td', {}, badge(w.status)),
      el('td', { class: 'mono', text: iso(w.started_ms) }),
      el('td', { text: dur((w.closed_ms ?? Date.now()) - w.started_ms) }),
      el('td', { class: 'mono muted', text: w.run_id }))));
    if (data.workflows.length === 0) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 6, class: 'muted', text: 'No workflow matches these filters.' })));
    }
    const first = data.workflows.length ? s.offset + 1 : 0;
    pagerText.textContent = `${first}–${s.offset + data.workflows.length} of ${data.matching}`;
    prev.disabled = s.offset === 0;
    next.disabled = s.offset + data.workflows.length >= data.matching;
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }

  function renderCounts(c) {
    const total = STATUSES.reduce((n, k) => n + (c[k] || 0), 0);
    const chip = (status, label, n) => el('button', {
      type: 'button', class: s.status === status ? 'active' : '', 'data-status-filter': status || 'all',
      on: { click: () => { s.status = status; s.offset = 0; setListState(s); load(); } },
    }, label, el('span', { class: 'n', text: n }));
    counts.replaceChildren(chip('', 'All', total), ...STATUSES.map((k) => chip(k, k, c[k] || 0)));
  }

  load();
  every(REFRESH_MS, load);
}

// ---- a run ---------------------------------------------------------------------------------

function runPage(id) {
  document.title = `duraflow: ${id}`;
  const main = document.getElementById('main');
  if (!id) {
    main.replaceChildren(el('p', { text: 'Say which workflow: /run?id=WORKFLOW_ID.' }));
    return;
  }
  async function load() {
    let d, events;
    try {
      [d, events] = await Promise.all([
        getJSON(`/api/workflow?id=${encodeURIComponent(id)}`),
        getJSON(`/api/history?id=${encodeURIComponent(id)}`),
      ]);
    } catch (e) {
      banner(`Cannot load workflow ${id}: ${e.message}`);
      return;
    }
    banner('');
    // Someone typing a signal: refresh later, not under their hands.
    const form = document.getElementById('signal-form');
    if (form && [...form.querySelectorAll('input')].some((i) => i.value || i === document.activeElement)) return;
    renderRun(main, d, events, load);
    if (d.status !== 'running' && timer) { clearInterval(timer); timer = null; }
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }
  load();
  every(REFRESH_MS, load);
}

function renderRun(main, d, events, reload) {
  const facts = el('dl', { class: 'facts' });
  const fact = (k, v) => { if (v !== null && v !== undefined && v !== '') facts.append(el('dt', { text: k }), el('dd', {}, v)); };
  fact('Type', el('span', { class: 'mono', text: d.workflow_type }));
  fact('Run id', el('span', { class: 'mono', text: d.run_id }));
  fact('Task queue', d.task_queue);
  fact('Started', iso(d.started_ms));
  fact('Closed', d.closed_ms ? `${iso(d.closed_ms)} (after ${dur(d.closed_ms - d.started_ms)})` : null);
  fact('Events', String(d.history_length));
  fact('Cancel requested', d.cancel_requested ? 'yes' : null);
  fact('Held', d.held_reason);
  if (d.pending_task) {
    const age = dur(Date.now() - d.pending_task.due_ms);
    fact('Workflow task', d.pending_task.worker ? `${d.pending_task.state} on ${d.pending_task.worker}` : `${d.pending_task.state} for ${age}`);
  }
  for (const note of d.notes || []) fact('Note', el('span', { class: 'note', text: note }));
  if (d.result !== null && d.result !== undefined) fact('Result', el('pre', { class: 'payload', text: JSON.stringify(d.result, null, 2) }));
  if (d.error) fact('Error', el('pre', { class: 'payload', text: JSON.stringify(d.error, null, 2) }));

  const actions = el('div', { class: 'actions' });
  if (config.allow_writes && d.status === 'running' && !d.cancel_requested) {
    actions.append(el('button', {
      type: 'button', class: 'danger', id: 'cancel-workflow', text: 'Cancel workflow',
      on: { click: async () => {
        try {
          await getJSON(`/api/cancel?id=${encodeURIComponent(d.workflow_id)}`, { method: 'POST', headers: { 'x-duraflow-ui': '1' } });
          reload();
        } catch (e) { banner(`Cannot cancel: ${e.message}`); }
      } },
    }));
  }

  if (config.allow_writes && config.signals && d.status === 'running') {
    const name = el('input', { id: 'signal-name', placeholder: 'signal name' });
    const input = el('input', { id: 'signal-input', placeholder: 'JSON input, e.g. {"by": "ann"}', class: 'mono' });
    actions.append(el('form', { id: 'signal-form', class: 'filters', on: { submit: async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams({ id: d.workflow_id, name: name.value.trim() });
      try {
        await getJSON(`/api/signal?${q}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-duraflow-ui': '1' }, body: input.value.trim() || 'null' });
        name.value = ''; input.value = ''; name.blur(); input.blur();
        reload();
      } catch (e) { banner(`Cannot signal: ${e.message}`); }
    } } }, el('label', {}, 'Signal', name), el('label', {}, 'Input', input),
    el('button', { type: 'submit', text: 'Send signal' })));
  }

  const parts = [
    el('p', {}, el('a', { href: '/', text: '← workflows' })),
    el('h1', {}, el('span', { id: 'run-id', class: 'mono', text: d.workflow_id }), ' ', el('span', { id: 'run-status' }, badge(d.status))),
    facts, actions,
  ];
  const pending = d.pending_activities || [];
  if (pending.length) {
    parts.push(el('h2', { text: 'Pending activities' }), pendingTable(pending));
  }
  parts.push(el('h2', { text: 'Timeline' }), timeline(events, d));
  parts.push(el('h2', { text: 'Events' }), eventTable(events));
  main.replaceChildren(...parts);
}

function pendingTable(pending) {
  const cols = ['#', 'Activity', 'State', 'Attempt', 'Cancel', 'Last heartbeat', 'Last failure'];
  return el('table', { id: 'pending' },
    el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', { text: c })))),
    el('tbody', {}, ...pending.map((a) => el('tr', {},
      el('td', { text: a.activity_seq }), el('td', { class: 'mono', text: a.activity_type }),
      el('td', { text: a.state }), el('td', { text: a.attempt }),
      el('td', { text: a.cancel_requested ? 'requested' : '' }),
      el('td', {}, a.heartbeat_details === null || a.heartbeat_details === undefined ? ''
        : el('pre', { class: 'payload', text: JSON.stringify(a.heartbeat_details) })),
      el('td', {}, a.last_failure ? el('pre', { class: 'payload', text: JSON.stringify(a.last_failure) }) : '')))));
}

// The rows of the timeline, from the history: one per activity (scheduled -> closed), one per
// timer (started -> fired or cancelled), and one for the workflow with every other event as a
// marker (kinds this page does not know included, so new ones show up).
function buildRows(events, d, now) {
  const rows = new Map();
  const wfEnd = d.closed_ms ?? now;
  const wf = { key: 'workflow', kind: 'workflow', label: 'workflow', sub: d.workflow_type,
    start: events.length ? events[0].time_ms : d.started_ms, end: wfEnd, open: !d.closed_ms,
    outcome: d.status === 'running' ? null : d.status, markers: [] };
  rows.set('workflow', wf);
  const activity = (seq) => rows.get(`a${seq}`);
  const timerRow = (seq) => rows.get(`t${seq}`);
  const mark = (row, e, label, title, extra) => row.markers.push({ at: e.time_ms, kind: e.event, label, title, ...extra });
  for (const e of events) {
    const a = e.activity_seq !== undefined ? activity(e.activity_seq) : null;
    const t = e.timer_seq !== undefined ? timerRow(e.timer_seq) : null;
    switch (e.event) {
      case 'workflow_task_completed':
        break; // bookkeeping: the markers between the workflow's steps
      case 'activity_scheduled':
        rows.set(`a${e.activity_seq}`, { key: `a${e.activity_seq}`, kind: 'activity',
          label: `${e.local ? 'local activity' : 'activity'} #${e.activity_seq}`, sub: e.activity_type,
          activityType: e.activity_type, start: e.time_ms, end: wfEnd, open: true, outcome: null,
          markers: [], attempts: 0 });
        break;
      case 'activity_started':
        if (!a) break;
        a.attempts = Math.max(a.attempts, e.attempt);
        mark(a, e, `▶${e.attempt}`, `attempt ${e.attempt} started on ${e.worker}`);
        break;
      case 'activity_cancel_requested':
        if (a) mark(a, e, '⚑', 'cancel requested by the workflow');
        break;
      case 'activity_completed':
      case 'activity_failed':
      case 'activity_timed_out':
      case 'activity_cancelled': {
        if (!a) break;
        const outcome = e.event.replace('activity_', '');
        closeRow(a, e, outcome);
        const details = e.event === 'activity_cancelled' ? e.details : (e.error && e.error.details);
        if (details !== null && details !== undefined) {
          mark(a, e, '♥', `last heartbeat before the end: ${short(details, 200)}`,
            { kind: 'heartbeat', details: short(details, 200) });
        }
        mark(a, e, outcomeGlyph(outcome), `${outcome}${e.error ? ': ' + short(e.error, 200) : ''}`, { outcome });
        break;
      }
      case 'local_activity_marker': {
        if (!a) break;
        const r = e.result || {};
        const outcome = 'Ok' in r ? 'completed' : (r.Err && r.Err.type === 'cancelled' ? 'cancelled' : 'failed');
        closeRow(a, e, outcome);
        mark(a, e, outcomeGlyph(outcome), `${outcome}: ${short(r, 200)}`, { outcome });
        break;
      }
      case 'timer_started':
        rows.set(`t${e.timer_seq}`, { key: `t${e.timer_seq}`, kind: 'timer', label: `timer #${e.timer_seq}`,
          sub: `${dur(e.fire_at_ms - e.time_ms)} sleep`, start: e.time_ms, end: Math.max(e.fire_at_ms, e.time_ms),
          open: true, outcome: null, markers: [] });
        break;
      case 'timer_fired':
      case 'timer_cancelled':
        if (!t) break;
        closeRow(t, e, e.event === 'timer_fired' ? 'fired' : 'cancelled');
        mark(t, e, e.event === 'timer_fired' ? '◉' : '⊘', e.event.replace('_', ' '), { outcome: t.outcome });
        break;
      case 'workflow_completed':
      case 'workflow_failed':
      case 'workflow_cancelled':
        mark(wf, e, outcomeGlyph(e.event.replace('workflow_', '')), e.event.replace('_', ' '), { outcome: e.event.replace('workflow_', '') });
        break;
      default: {
        // Any other kind (a cancel request, a signal, kinds added later) is a marker, on its
        // activity's or timer's row when it names one.
        const row = a || t || wf;
        const glyph = e.event === 'workflow_started' ? '●'
          : e.event.startsWith('signal') ? '✉' : e.event.startsWith('update') ? '⇄' : '◆';
        mark(row, e, glyph, `${e.event} ${short(detailsOf(e), 200)}`,
          { link: linkedWorkflow(e) });
      }
    }
  }
  for (const p of d.pending_activities || []) {
    const a = activity(p.activity_seq);
    if (a && p.heartbeat_details !== null && p.heartbeat_details !== undefined) {
      const at = p.last_heartbeat_ms || now;
      a.markers.push({ at, kind: 'heartbeat', label: '♥', title: `last heartbeat: ${short(p.heartbeat_details, 200)}`,
        details: short(p.heartbeat_details, 200) });
    }
  }
  return [...rows.values()];
}

function rowResult(r) {
  const text = r.open ? `open for ${dur(r.end - r.start)}` : `${r.outcome} after ${dur(r.end - r.start)}`;
  if (r.kind !== 'activity') return text;
  return `${text}, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}`;
}

function closeRow(row, e, outcome) {
  row.end = e.time_ms;
  row.open = false;
  row.outcome = outcome;
}

function outcomeGlyph(outcome) {
  return { completed: '✔', fired: '◉', failed: '✖', timed_out: '◔', cancelled: '⊘' }[outcome] || '■';
}

// Another workflow an event names (a child workflow, a signal's target): a string field whose
// name ends in `workflow_id`.
function linkedWorkflow(e) {
  for (const [k, v] of Object.entries(e)) if (k.endsWith('workflow_id') && typeof v === 'string' && v) return v;
  return null;
}

function detailsOf(e) {
  const rest = {};
  for (const [k, v] of Object.entries(e)) if (!['seq', 'time_ms', 'event'].includes(k)) rest[k] = v;
  return rest;
}

function niceStep(span) {
  const steps = [10, 25, 50, 100, 250, 500, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 18e5, 36e5, 72e5, 216e5, 864e5];
  return steps.find((s) => span / s <= 8) || span / 8;
}

function timeline(events, d) {
  const now = Date.now();
  const rows = buildRows(events, d, now);
  const t0 = rows[0].start;
  let t1 = Math.max(...rows.map((r) => r.end), ...rows.flatMap((r) => r.markers.map((m) => m.at)));
  if (t1 <= t0) t1 = t0 + 1;
  const pct = (t) => `${(100 * (t - t0)) / (t1 - t0)}%`;

  const axis = el('div', { class: 'tl-track' });
  const step = niceStep(t1 - t0);
  for (let t = 0; t0 + t <= t1; t += step) {
    const tick = el('span', { class: 'tl-tick', text: `+${dur(t)}` });
    tick.style.left = pct(t0 + t);
    axis.append(tick);
  }
  const box = el('div', { class: 'timeline', id: 'timeline' }, el('div', { class: 'tl-axis' }, el('div'), axis));
  for (const r of rows) {
    const track = el('div', { class: 'tl-track' });
    const bar = el('div', { class: `tl-bar ${r.open ? 'open' : ''} ${r.outcome ? 'outcome-' + r.outcome : ''}`,
      title: `${r.label}: ${iso(r.start)} → ${r.open ? 'still open' : iso(r.end)} (${dur(r.end - r.start)})` });
    bar.style.left = pct(r.start);
    bar.style.width = `calc(${pct(r.end)} - ${pct(r.start)})`;
    track.append(bar);
    for (const m of r.markers) {
      const marker = el(m.link ? 'a' : 'span', { class: `tl-marker kind-${m.kind}${m.outcome ? ' outcome' : ''}`,
        href: m.link ? `/run?id=${encodeURIComponent(m.link)}` : null,
        'data-kind': m.kind, 'data-at': m.at, 'data-details': m.details, title: `${m.title} at +${dur(m.at - t0)}`, text: m.label });
      marker.style.left = pct(m.at);
      track.append(marker);
    }
    box.append(el('div', { class: `tl-row kind-${r.kind}`, 'data-row': r.key, 'data-activity-type': r.activityType,
      'data-outcome': r.outcome || (r.open ? 'open' : '') },
    el('div', { class: 'tl-label', title: `${r.label} ${r.sub || ''}` },
      el('span', { class: 'name', text: r.label }), ' ', el('span', { class: 'mono', text: r.sub || '' }),
      el('span', { class: `sub tl-result outcome-${r.outcome || 'open'}`, text: rowResult(r) })),
    track));
  }
  box.append(el('div', { class: 'legend' }, ...['▶n attempt n started', '♥ last heartbeat (details on hover)',
    '⚑ cancel requested', '⊘ cancelled', '✔ completed', '✖ failed', '◔ timed out', '◉ timer fired',
    '✉ signal', '⇄ update', '◆ other event'].map((t) => el('span', { text: t }))));
  return box;
}

function eventTable(events) {
  const t0 = events.length ? events[0].time_ms : 0;
  return el('table', { id: 'events' },
    el('thead', {}, el('tr', {}, ...['#', 'Time', '+', 'Event', 'Details'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...events.map((e) => el('tr', { 'data-seq': e.seq, 'data-event': e.event },
      el('td', { text: e.seq }), el('td', { class: 'mono', text: iso(e.time_ms) }),
      el('td', { text: dur(e.time_ms - t0) }), el('td', { class: 'mono', text: e.event }),
      el('td', {}, el('pre', { class: 'payload', text: JSON.stringify(detailsOf(e), null, 2) }),
        linkedWorkflow(e) ? el('span', {}, 'workflow: ', runLink(linkedWorkflow(e))) : null)))));
}

// ---- start ---------------------------------------------------------------------------------

async function start() {
  try {
    config = await getJSON('/api/config');
  } catch (e) {
    banner(`Cannot reach the duraflow server: ${e.message}`);
  }
  document.getElementById('mode').textContent = config.allow_writes ? 'cancel allowed' : 'read-only';
  if (location.pathname === '/run') runPage(new URLSearchParams(location.search).get('id'));
  else listPage();
}

start();
