#include "hub/web_page.h"

namespace edgesync::hub {

namespace {

// Everything the page needs is in this one string: no framework, no font or script from
// elsewhere. Text from the database is only ever set through textContent, never parsed as HTML.
constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgesync hub: live stock</title>
<style>
:root { --line: #d8dde3; --muted: #5c6773; --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1f2328; background: #f4f6f8; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.25rem;
         padding: .7rem 1.25rem; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.1rem; margin: 0; }
h2 { font-size: 1rem; margin: 0; }
.bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1rem;
       margin-bottom: .5rem; }
main { display: grid; gap: 1rem; padding: 1rem 1.25rem; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 1100px) { main { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem;
          min-width: 0; }
.scroll { max-height: calc(100vh - 12rem); min-height: 8rem; overflow: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
         vertical-align: top; }
thead th { position: sticky; top: 0; z-index: 1; background: #fff; color: var(--muted);
           font-size: .82rem; font-weight: 600; }
tbody th { font-weight: 500; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.figure { font-weight: 650; font-size: 1.05rem; }
.negative { color: var(--bad); }
.muted { color: var(--muted); font-size: .85rem; }
.ok, .bad, .warn { font-weight: 600; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.dot::before { content: "\25CF\00A0"; }
tr.chosen > * { background: #eef4ff; }
tr.first > * { border-top: 2px solid var(--line); }
button.store-link { font: inherit; font-weight: 600; color: #0b57d0; background: none; border: 0;
                    padding: 0; cursor: pointer; text-align: left; }
button.store-link:hover, button.store-link:focus-visible { text-decoration: underline; }
select, input { font: inherit; padding: .15rem .3rem; }
#problem { margin: 0; padding: .5rem 1.25rem; background: #fdecea; color: var(--bad);
           border-bottom: 1px solid #f5c2bd; }
@keyframes flash { from { background-color: var(--flash); } to { background-color: transparent; } }
td.changed { animation: flash 3s ease-out; }
td.changed.down { --flash: #ffcfc7; }
td.changed.up { --flash: #c8ecc9; }
</style>
</head>
<body>
<header>
  <h1>edgesync hub</h1>
  <span>live stock and lag, read-only</span>
  <span id="state" class="warn dot">connecting&hellip;</span>
</header>
<p id="problem" role="alert" hidden></p>
<main>
  <section aria-labelledby="stores-title">
    <div class="bar">
      <h2 id="stores-title">Stores</h2>
      <span id="stores-asof" class="muted"></span>
    </div>
    <div class="scroll">
      <table id="stores">
        <thead><tr><th>Store</th><th>Device</th><th class="num">Last seq</th>
          <th class="num">Newest event</th><th>Online</th><th class="num">Pending</th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="no-stores" class="muted" hidden>No device has sent anything yet.</p>
    </div>
  </section>
  <section aria-labelledby="stock-title">
    <div class="bar">
      <h2 id="stock-title">Stock <span id="stock-store"></span></h2>
      <label>Store <select id="store-select"></select></label>
      <label>SKU <input id="sku-filter" type="search" placeholder="filter" size="12"></label>
      <span id="stock-count" class="muted"></span>
    </div>
    <div class="scroll">
      <table id="stock">
        <thead><tr><th>SKU</th><th class="num">On hand</th><th>Changed</th>
          <th>Rests on count</th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="no-stock" class="muted" hidden>No stock for this store yet.</p>
    </div>
  </section>
</main>
<script>
'use strict';
// Set once, when the document loads: an update that arrives later without changing it came
// over the event stream, not through a reload.
window.edgesyncPage = {loadedAt: Date.now()};

const byId = (id) => document.getElementById(id);
let chosen = null;          // the store whose stock is shown
let source = null;          // the current EventSource
let retryTimer = 0;
let freshStream = false;    // no stock message yet on this stream: new rows are not highlighted
const stockRows = new Map();  // sku -> <tr>, for the chosen store

function make(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (className) e.className = className;
  return e;
}

// Letters, digits, '.' and '-' as they are, anything else as _<hex>_: an id without spaces that
// two skus cannot share. Only one store's table is on the page at a time, so the ids are unique.
function idPart(text) {
  let out = '';
  for (const ch of text) {
    out += /^[A-Za-z0-9.-]$/.test(ch) ? ch : '_' + ch.codePointAt(0).toString(16) + '_';
  }
  return out;
}
function stockCellId(store, sku) { return 'stock-' + idPart(store) + '-' + idPart(sku); }

function ago(seconds) {
  if (seconds === null || seconds === undefined) return '\u2013';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : '\u2013'; }

function setState(text, className) {
  const e = byId('state');
  e.textContent = text;
  e.className = className + ' dot';
}
function showProblem(message) {
  const e = byId('problem');
  e.hidden = !message;
  e.textContent = message ? 'The hub cannot read its database: ' + message : '';
}

function onlineCell(d) {
  const td = make('td');
  if (d.online === null) td.append(make('span', 'unknown', 'muted'));
  else td.append(make('span', d.online ? 'online' : 'offline', (d.online ? 'ok' : 'bad') + ' dot'));
  if (d.status_age_s !== null) td.title = 'status reported ' + ago(d.status_age_s);
  return td;
}

function showStores(list) {
  const ids = list.map((s) => s.store_id);
  const rows = [];
  for (const s of list) {
    s.devices.forEach((d, i) => {
      const tr = make('tr');
      tr.dataset.store = s.store_id;
      if (s.store_id === chosen) tr.classList.add('chosen');
      if (i === 0) {
        tr.classList.add('first');
        const th = make('th');
        th.scope = 'row';
        th.rowSpan = s.devices.length;
        const b = make('button', s.store_id, 'store-link');
        b.type = 'button';
        b.title = 'show this store\'s stock';
        b.addEventListener('click', () => choose(s.store_id));
        const n = s.devices.length;
        th.append(b, make('div', n + (n === 1 ? ' device' : ' devices'), 'muted'));
        tr.append(th);
      }
      const pending = d.pending === null ? '\u2013' : String(d.pending);
      tr.append(make('td', d.device_id), make('td', String(d.last_seq), 'num'),
                make('td', ago(d.newest_event_age_s), 'num'), onlineCell(d),
                make('td', pending, d.pending > 0 ? 'num warn' : 'num'));
      rows.push(tr);
    });
  }
  byId('stores').tBodies[0].replaceChildren(...rows);
  byId('no-stores').hidden = list.length > 0;
  const select = byId('store-select');
  const options = Array.from(select.options, (o) => o.value);
  if (options.length !== ids.length || ids.some((id, i) => options[i] !== id)) {
    select.replaceChildren(...ids.map((id) => {
      const o = make('option', id);
      o.value = id;
      return o;
    }));
  }
  if (chosen !== null) select.value = chosen;
  byId('stores-asof').textContent = 'as of ' + new Date().toLocaleTimeString();
  if (chosen === null && ids.length > 0) choose(ids[0]);
}

function stockRow(r) {
  const tr = make('tr');
  tr.dataset.sku = r.sku;
  const th = make('th', r.sku);
  th.scope = 'row';
  const figure = make('td', '', 'num figure');
  figure.id = stockCellId(r.store_id, r.sku);
  figure.dataset.store = r.store_id;
  figure.dataset.sku = r.sku;
  tr.append(th, figure, make('td', '', 'muted'), make('td', '', 'muted'));
  return tr;
}

function insertSorted(tr, sku) {
  const body = byId('stock').tBodies[0];
  const rows = body.rows;
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].dataset.sku < sku) lo = mid + 1; else hi = mid;
  }
  body.insertBefore(tr, rows[lo] || null);
}

function flash(cell, direction) {
  cell.classList.remove('changed', 'up', 'down');
  void cell.offsetWidth;  // restarts the animation when the same figure changes again
  cell.classList.add('changed', direction);
}

function applyStock(rows) {
  const first = freshStream;
  freshStream = false;
  for (const r of rows) {
    if (r.store_id !== chosen) continue;
    let tr = stockRows.get(r.sku);
    const isNew = !tr;
    if (isNew) {
      tr = stockRow(r);
      insertSorted(tr, r.sku);
      stockRows.set(r.sku, tr);
    }
    const cell = tr.cells[1];
    const figure = String(r.on_hand);
    const before = cell.textContent;
    if (before !== figure) {
      cell.textContent = figure;
      if (!isNew || !first) flash(cell, !isNew && r.on_hand < Number(before) ? 'down' : 'up');
    }
    cell.classList.toggle('negative', r.on_hand < 0);
    tr.cells[2].textContent = when(r.changed_at);
    tr.cells[3].textContent =
        r.counted_at ? r.counted_level + ' at ' + when(r.counted_at) : 'no count yet';
  }
  byId('no-stock').hidden = stockRows.size > 0;
  byId('stock-count').textContent = stockRows.size + (stockRows.size === 1 ? ' sku' : ' skus');
  applyFilter();
}

function applyFilter() {
  const want = byId('sku-filter').value.trim().toLowerCase();
  for (const [sku, tr] of stockRows) tr.hidden = want !== '' && !sku.toLowerCase().includes(want);
}

function choose(store) {
  if (store === chosen) return;
  chosen = store;
  stockRows.clear();
  byId('stock').tBodies[0].replaceChildren();
  byId('no-stock').hidden = true;
  byId('stock-count').textContent = '';
  byId('stock-store').textContent = store;
  byId('store-select').value = store;
  for (const tr of byId('stores').tBodies[0].rows) {
    tr.classList.toggle('chosen', tr.dataset.store === store);
  }
  connect();
}

// One stream at a time, limited to the chosen store's stock; choosing another store opens a
// new one, whose first message is that store's whole table.
function connect() {
  if (source) source.close();
  clearTimeout(retryTimer);
  const url = chosen === null ? '/api/events' : '/api/events?store=' + encodeURIComponent(chosen);
  const es = new EventSource(url);
  source = es;
  freshStream = true;
  es.addEventListener('stores', (e) => {
    if (es !== source) return;
    showProblem(null);
    showStores(JSON.parse(e.data));
  });
  es.addEventListener('stock', (e) => { if (es === source) applyStock(JSON.parse(e.data)); });
  es.addEventListener('problem', (e) => {
    if (es === source) showProblem(JSON.parse(e.data).message);
  });
  es.onopen = () => { if (es === source) setState('live', 'ok'); };
  es.onerror = () => {
    if (es !== source) return;
    if (es.readyState === EventSource.CLOSED) {
      // Refused (the hub stopping, or too many pages open): EventSource does not try again.
      setState('disconnected; trying again in 5 s', 'bad');
      retryTimer = setTimeout(connect, 5000);
    } else {
      setState('reconnecting\u2026', 'warn');
      freshStream = true;
    }
  };
}

byId('store-select').addEventListener('change', (e) => choose(e.target.value));
byId('sku-filter').addEventListener('input', applyFilter);
fetch('/api/stores')
  .then((r) => (r.ok ? r.json() : []))
  .then((list) => { showStores(list); if (chosen === null) connect(); })
  .catch(() => connect());
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string_view hub_page_html() { return kPage; }

}  // namespace edgesync::hub
