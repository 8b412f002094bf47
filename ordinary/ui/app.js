/* app.js - the browser side of sova-peer's web UI (no framework, no build).
 *
 * It talks only to its own origin: the local HTTP API (docs/API.md) for
 * commands, one EventSource for live updates. Every string that came from
 * the network (file names above all) is untrusted: it is put in the page
 * with textContent only, through visible() and inside a <bdi>, never as
 * HTML. The CSP forbids inline script and style, so nothing here uses
 * them either. */
'use strict';

(function () {
  /* ==== small helpers ====================================================== */

  const $ = (sel) => document.querySelector(sel);

  /* The CSRF token the server wrote into the page, sent with every POST. */
  const CSRF = (document.querySelector('meta[name="sova-csrf"]') || {}).content || '';

  const HEX64 = /^[0-9a-fA-F]{64}$/;

  /* Control characters (C0, DEL, C1) and invisible or bidi formatting
   * characters: shown as a marker such as ⟨U+202E⟩ instead of acting. */
  const HIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

  function visible(s) {
    return String(s === undefined || s === null ? '' : s).replace(HIDDEN_CHARS, (c) =>
      '\u27e8U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + '\u27e9');
  }

  /* An element; props: text, class, dataset, or attributes. children are
   * nodes or strings (strings become text nodes, never markup). */
  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (/^on/i.test(k)) throw new Error('no event handler attributes');
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    append(e, children);
    return e;
  }

  function append(parent, children) {
    for (const c of [].concat(children === undefined ? [] : children).flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      parent.append(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return parent;
  }

  /* A network string, readable and isolated from the text around it. */
  function bdi(s) {
    return el('bdi', { text: visible(s) });
  }

  /* A finite number or the fallback. */
  function num(v, fallback) {
    return typeof v === 'number' && Number.isFinite(v) ? v : (fallback === undefined ? 0 : fallback);
  }

  /* Sizes in binary units (1 KiB = 1024 bytes), as the CLI prints them. */
  function humanSize(n) {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : String(Math.round(n))) + '\u00a0' + units[i];
  }

  function humanRate(bps) {
    return humanSize(bps) + '/s';
  }

  /* Limits are in kB/s (1000 bytes), as the daemon takes them. */
  function kbps(v) {
    return num(v) === 0 ? 'unlimited' : num(v) + ' kB/s';
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor(s / 3600) % 24 + ' h';
  }

  function shortId(id) {
    const s = String(id || '');
    return s.length > 16 ? s.slice(0, 16) + '\u2026' : s;
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  /* A <dl> of [term, value] pairs; a value is a string, a node or a list. */
  function fillFacts(dl, pairs) {
    const items = [];
    for (const [term, value] of pairs) {
      if (value === undefined || value === null) continue;
      items.push(el('dt', { text: term }), append(el('dd'), value));
    }
    dl.replaceChildren(...items);
  }

  /* ==== the notice area (#toast) ================================================= */

  let toastTimer = 0;

  /* Say something in #toast (a polite live region). parts: strings and
   * nodes; strings from the network should come as bdi() nodes. */
  function say(parts, isError) {
    const toast = $('#toast');
    toast.replaceChildren(append(el('p', { class: isError ? 'msg error' : 'msg' }), parts));
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.replaceChildren(), isError ? 20000 : 8000);
  }

  /* An error in words: the API's `error` text, or what went wrong here. */
  function fail(err) {
    if (err instanceof LoggedOut) return;
    say(visible(err && err.message ? err.message : String(err)), true);
  }

  /* ==== the API ==================================================================== */

  class LoggedOut extends Error {}

  function toLogin() {
    location.href = '/login';
  }

  /* GET /api/v1/cmd without a body, POST with one. Resolves to the reply
   * object ("ok": true); rejects with the reply's `error` text. */
  async function api(cmd, body) {
    const opts = { method: 'GET', credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.method = 'POST';
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-Sova-CSRF'] = CSRF;
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch('/api/v1/' + cmd, opts);
    } catch (e) {
      throw new Error('cannot reach the peer (is sova-peer run still running?)');
    }
    if (res.status === 401) {
      toLogin();
      throw new LoggedOut('logged out');
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok || !data || data.ok !== true) {
      const why = data && typeof data.error === 'string' ? data.error : 'the peer answered HTTP ' + res.status;
      throw new Error(why);
    }
    return data;
  }

  /* Run a request with a button or form disabled meanwhile. */
  async function busy(control, fn) {
    if (control) control.disabled = true;
    try {
      return await fn();
    } catch (e) {
      fail(e);
      return null;
    } finally {
      if (control) control.disabled = false;
    }
  }

  /* ==== what the page knows ========================================================= */

  const state = {
    page: '',
    status: null,            // the last status object (GET or the `status` event)
    downloads: new Map(),    // key -> download object (key: id, or sha256 of a legacy one)
    rows: new Map(),         // key -> { tr, cells }
    speed: new Map(),        // key -> { bytes, t, rate }: a rate when the object has none
    foldersJson: '',         // the folders last drawn, to redraw only on change
    eventSeq: 0,             // download events seen so far
    touched: new Map(),      // key -> eventSeq of its last event
    statusSeq: 0,            // status events seen so far
    statusJson: '',          // the status last drawn
  };

  /* ==== routing: #/search, #/downloads, ... ============================================ */

  const PAGES = {
    search: { title: 'Search', show: () => {} },
    downloads: { title: 'Downloads', show: () => loadDownloads() },
    shares: { title: 'Shares', show: () => loadShares() },
    status: { title: 'Status', show: () => loadStatus() },
    credit: { title: 'Credit', show: () => { loadStatus(); loadPeers(); } },
    settings: { title: 'Settings', show: () => loadLimits() },
  };

  function route(moveFocus) {
    const hash = location.hash;
    if (hash !== '' && hash !== '#' && !hash.startsWith('#/')) return; // e.g. #main: not a page
    const m = /^#\/([a-z]+)/.exec(hash);
    const page = m && Object.prototype.hasOwnProperty.call(PAGES, m[1]) ? m[1] : 'search';
    state.page = page;
    for (const section of document.querySelectorAll('section.page'))
      section.hidden = section.dataset.page !== page;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('href') === '#/' + page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = PAGES[page].title + ' \u2014 Sova';
    if (moveFocus) {
      const h = document.querySelector('section[data-page="' + page + '"] h1');
      if (h) h.focus();
    }
    PAGES[page].show();
  }

  /* ==== search ========================================================================= */

  /* The cheapest way to a hit's sources we can expect (docs/NAT.md, the
   * connection ladder): direct to a reachable source; else reversal if we
   * are reachable ourselves; else a hole punch if our NAT keeps ports (it
   * works when the source's does too), else relay through the supernode. */
  function bestPath(hit) {
    const peers = Array.isArray(hit.peers) ? hit.peers : [];
    const reachable = (r) => r === 'public' || r === 'mapped';
    if (peers.some((p) => p && reachable(p.reachability))) return 'direct';
    if (peers.length === 0 && num(hit.sources) === 0) return 'none';
    const me = state.status && state.status.reachability;
    if (reachable(me)) return 'reversal';
    const nat = state.status && state.status.reach ? String(state.status.reach.nat || '') : '';
    return /^(keeps ports|no NAT)/.test(nat) ? 'holepunch or relay' : 'relay';
  }

  function hitRow(hit, index) {
    const id = typeof hit.id === 'string' && HEX64.test(hit.id) ? hit.id.toLowerCase() : '';
    const peers = Array.isArray(hit.peers) ? hit.peers : [];
    const reach = peers.filter((p) => p && (p.reachability === 'public' || p.reachability === 'mapped')).length;
    const nameId = 'hit-' + index;
    const tr = el('tr', { dataset: id ? { id } : {} });
    tr.append(
      el('td', { class: 'name', id: nameId, 'data-label': 'Name' }, [
        bdi(hit.name),
        el('span', { class: 'sub mono', text: 'ID ' + shortId(id || visible(hit.id)) }),
      ]),
      el('td', { class: 'size num', 'data-label': 'Size' }, humanSize(num(hit.size, -1))),
      el('td', { class: 'sources num', 'data-label': 'Sources' }, [
        String(num(hit.sources)),
        peers.length ? el('span', { class: 'sub', text: reach + ' reachable' }) : null,
      ]),
      el('td', { class: 'path', 'data-label': 'Best path' }, bestPath(hit)),
      el('td', { class: 'actions' }, id ? el('button', { type: 'button', dataset: { action: 'get' }, 'aria-describedby': nameId, text: 'Download' }) : null));
    return tr;
  }

  function showHits(hits) {
    const table = $('#search-results');
    table.tBodies[0].replaceChildren(...hits.map(hitRow));
    table.hidden = hits.length === 0;
    $('#search-empty').hidden = hits.length !== 0;
    $('#search-info').textContent = hits.length ? plural(hits.length, 'match', 'matches') : '';
  }

  async function onSearch(ev) {
    ev.preventDefault();
    const words = $('#search-q').value.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return say('Type a word or more to search for.', true);
    if (words.length > 8) return say('At most 8 words: a file matches only when its name has every word.', true);
    const button = ev.target.querySelector('button[type="submit"]');
    $('#search-info').textContent = 'Searching\u2026';
    $('#search-empty').hidden = true;
    $('#search-results').setAttribute('aria-busy', 'true');
    const reply = await busy(button, () => api('search', { words, max: 200, timeout_ms: 5000 }));
    $('#search-results').removeAttribute('aria-busy');
    if (!reply) {
      $('#search-info').textContent = 'The search could not run.';
      return;
    }
    showHits(Array.isArray(reply.hits) ? reply.hits : []);
  }

  /* A hit's Download button: get {id}, in the background (the API always is). */
  async function onHitClick(ev) {
    const button = ev.target.closest('button[data-action="get"]');
    if (!button) return;
    const id = button.closest('tr').dataset.id;
    const reply = await busy(button, () => api('get', { id }));
    if (!reply) return;
    const d = reply.accepted || { id };
    if (d.id) upsertDownload(d);
    const name = bdi(d.name || id);
    if (d.state === 'complete') say(['Already downloaded: ', name, d.path ? [' is at ', bdi(d.path)] : ''].flat());
    else if (d.state === 'queued')
      say(['Queued: ', name, d.queue_position ? ' (queue position ' + d.queue_position + ')' : '', '. See Downloads.']);
    else say(['Downloading ', name, '. See Downloads.']);
  }

  /* ==== downloads ========================================================================= */

  const ACTIVE = ['running', 'queued', 'paused', 'active'];

  function keyOf(d) {
    if (d && typeof d.id === 'string' && d.id) return d.id.toLowerCase();
    if (d && typeof d.sha256 === 'string' && d.sha256) return 'sha256:' + d.sha256.toLowerCase();
    return '';
  }

  /* A download changed (event, reply, or the list): remember and draw it.
   * A full object (it has `chunks`) replaces the old one; a short one
   * (accepted from the store: id, name, state, path) is merged in. */
  function upsertDownload(d) {
    const key = keyOf(d);
    if (!key) return;
    const old = state.downloads.get(key);
    const full = d.legacy || 'chunks' in d || !old;
    const now = full ? d : Object.assign({}, old, d);
    noteSpeed(key, now);
    state.downloads.set(key, now);
    drawDownload(key);
  }

  function dropDownload(key) {
    state.downloads.delete(key);
    state.speed.delete(key);
    const r = state.rows.get(key);
    if (r) {
      const hadFocus = r.tr.contains(document.activeElement);
      r.tr.remove();
      state.rows.delete(key);
      if (hadFocus) $('#h-downloads').focus();
    }
    showDownloadsEmpty();
  }

  /* The rate: rate_bps when the daemon gives it, else from the change of
   * bytes_have between two reports (smoothed). */
  function noteSpeed(key, d) {
    if (typeof d.rate_bps === 'number') return;
    const now = Date.now();
    const bytes = num(d.bytes_have);
    const prev = state.speed.get(key);
    let rate = 0;
    if (prev && now > prev.t && bytes >= prev.bytes) {
      const instant = ((bytes - prev.bytes) * 1000) / (now - prev.t);
      rate = prev.rate ? 0.7 * prev.rate + 0.3 * instant : instant;
    }
    state.speed.set(key, { bytes, t: now, rate });
  }

  function rateOf(key, d) {
    if (typeof d.rate_bps === 'number') return d.rate_bps;
    const s = state.speed.get(key);
    return s ? s.rate : 0;
  }

  /* Percent done; null when the size is not known yet. */
  function percentOf(d) {
    if (d.state === 'complete') return 100;
    const size = d.size;
    if (typeof size !== 'number') return null;
    if (size <= 0) return 100;
    return Math.min(100, Math.floor((num(d.bytes_have) * 100) / size));
  }

  /* Why it is slow, waiting or stopped, in words (as `sova-peer downloads`
   * says it). Each line is a list of strings and nodes. */
  function whyLines(d) {
    const lines = [];
    const src = d.sources || {};
    switch (d.state) {
      case 'queued':
        lines.push(['waiting in the queue' + (d.queue_position ? ': position ' + d.queue_position : '') +
          ' (the most downloads allowed at once are running)']);
        break;
      case 'paused':
        lines.push(['paused: Resume continues it; its verified chunks are kept']);
        break;
      case 'active':
        lines.push(['not started in this run']);
        break;
      case 'running':
        if (d.size === null) lines.push(['checking a manifest against the file ID']);
        if (num(src.known) === 0) lines.push(['looking for sources']);
        else lines.push([num(src.connected) + ' of ' + plural(num(src.known), 'source', 'sources') + ' connected' +
          (num(src.banned) ? ', ' + num(src.banned) + ' banned' : '')]);
        break;
      case 'complete':
        if (d.path) lines.push(['saved as ', bdi(d.path)]);
        break;
      default:
        break;
    }
    if (d.legacy) lines.push(['made by an older Sova (listed by its SHA-256)']);
    if (d.waiting) lines.push(['waiting: ', bdi(d.waiting)]);
    if (num(d.limit_kbps) > 0)
      lines.push(['limited to ' + num(d.limit_kbps) + ' kB/s' + (d.throttled ? ', waiting for it now' : '')]);
    else if (d.throttled) lines.push(['held to the download limit (see Settings)']);
    if (d.error) lines.push([d.state === 'failed' ? 'failed: ' : 'last attempt failed: ', bdi(d.error)]);
    const bad = Array.isArray(d.bad_sources) ? d.bad_sources : [];
    for (const b of bad.slice(0, 3)) {
      lines.push(['source ' + shortId(visible(b.peer)) + (b.banned ? ' banned: ' : ' failed (' +
        plural(num(b.failures), 'bad chunk', 'bad chunks') + '): '), bdi(b.reason)]);
    }
    if (bad.length > 3) lines.push([(bad.length - 3) + ' more bad sources']);
    return lines;
  }

  /* The buttons that fit the state. */
  function actionsFor(d) {
    if (!d.id) return [];
    switch (d.state) {
      case 'running':
      case 'queued':
        return [['pause', 'Pause'], ['cancel', 'Cancel']];
      case 'paused':
        return [['resume', 'Resume'], ['cancel', 'Cancel']];
      case 'active':
        return [['cancel', 'Cancel']];
      case 'failed':
        return [['resume', 'Retry'], ['remove', 'Remove']];
      case 'complete':
        return [['remove', 'Remove']];
      default:
        return [];
    }
  }

  function makeRow(key) {
    const cell = (cls, label) => el('td', { class: cls, 'data-label': label });
    const cells = {
      name: cell('name', 'Name'),
      state: cell('state', 'State'),
      progress: cell('progress-cell', 'Progress'),
      rate: cell('rate num', 'Rate'),
      eta: cell('eta num', 'Time left'),
      path: cell('path-used', 'Path'),
      why: cell('why', 'Details'),
      priority: cell('priority-cell', 'Priority'),
      actions: cell('actions', 'Actions'),
    };
    cells.bar = el('progress', { max: '100', 'aria-label': 'Progress' });
    cells.percent = el('span', { class: 'percent' });
    cells.progress.append(cells.bar, ' ', cells.percent);
    const tr = el('tr', {}, Object.values(cells).filter((c) => c.tagName === 'TD'));
    const r = { tr, cells, actionsKey: null, priorityKey: null };
    state.rows.set(key, r);
    $('#downloads').tBodies[0].append(tr);
    return r;
  }

  /* Draw one download into its row, making the row if it is new. The
   * buttons are rebuilt only when the state changes (a running download
   * reports twice a second; focus stays where it is). */
  function drawDownload(key) {
    const d = state.downloads.get(key);
    if (!d) return;
    const r = state.rows.get(key) || makeRow(key);
    const c = r.cells;
    if (d.id) r.tr.dataset.id = d.id;
    else if (d.sha256) r.tr.dataset.sha256 = d.sha256;
    c.name.replaceChildren(bdi(d.name));
    c.name.id = 'dl-name-' + key.replace(/[^0-9a-z]/g, '');
    c.state.textContent = visible(d.state); // the API's word, exactly
    c.state.className = 'state state-' + String(d.state || '').replace(/[^a-z]/g, '');

    const pct = percentOf(d);
    if (pct === null) {
      c.bar.removeAttribute('value');
      c.percent.textContent = '? %';
    } else {
      c.bar.value = pct;
      c.percent.textContent = pct + ' %';
    }
    const running = d.state === 'running';
    const rate = running ? rateOf(key, d) : 0;
    c.rate.textContent = running ? humanRate(rate) : '';
    if (running && rate > 0 && typeof d.size === 'number')
      c.eta.textContent = duration((d.size - num(d.bytes_have)) / rate);
    else c.eta.textContent = running ? 'not known' : d.state === 'queued' ? 'queued' : '';
    c.path.textContent = d.via ? visible(d.via) : running ? 'not connected yet' : '';
    // the address the last source was reached at, and its kind (LAN, mapped, public)
    c.path.title = d.route ? visible(d.route) : '';
    c.why.replaceChildren(...whyLines(d).map((parts) => append(el('span', { class: 'sub' }), parts)));

    drawActions(key, r, d);
    drawPriority(key, r, d);
    showDownloadsEmpty();
  }

  function drawActions(key, r, d) {
    const acts = actionsFor(d);
    const sig = acts.map((a) => a[0]).join(',');
    if (sig === r.actionsKey) return;
    const hadFocus = r.cells.actions.contains(document.activeElement);
    r.actionsKey = sig;
    r.cells.actions.replaceChildren(...acts.map(([action, label]) =>
      el('button', {
        type: 'button',
        class: action === 'cancel' || action === 'remove' ? 'danger' : null,
        dataset: { action },
        'aria-describedby': r.cells.name.id,
        text: label,
      })));
    if (hadFocus) {
      const first = r.cells.actions.querySelector('button');
      (first || $('#h-downloads')).focus();
    }
  }

  /* The priority select, for the downloads still to finish. */
  function drawPriority(key, r, d) {
    const show = Boolean(d.id) && ACTIVE.includes(d.state);
    const prio = ['low', 'normal', 'high'].includes(d.priority) ? d.priority : 'normal';
    if (!show) {
      if (r.priorityKey !== 'none') r.cells.priority.replaceChildren();
      r.priorityKey = 'none';
      return;
    }
    if (r.priorityKey !== 'select') {
      const selId = 'prio-' + key.replace(/[^0-9a-z]/g, '');
      const select = el('select', { id: selId, dataset: { action: 'priority' } },
        ['low', 'normal', 'high'].map((p) => el('option', { value: p, text: p })));
      r.cells.priority.replaceChildren(el('label', { for: selId, class: 'sr-only', text: 'Priority' }), select);
      r.priorityKey = 'select';
    }
    const select = r.cells.priority.querySelector('select');
    if (document.activeElement !== select && !select.disabled) select.value = prio;
  }

  function showDownloadsEmpty() {
    const empty = state.downloads.size === 0;
    $('#downloads-empty').hidden = !empty;
    $('#downloads').hidden = empty;
  }

  /* The whole list (page shown, stream (re)opened): rows not in it go. */
  async function loadDownloads() {
    const since = state.eventSeq;
    const newer = (key) => (state.touched.get(key) || 0) > since; // an event came during the request
    let reply;
    try {
      reply = await api('downloads');
    } catch (e) {
      return fail(e);
    }
    const list = Array.isArray(reply.downloads) ? reply.downloads : [];
    const listed = list.map(keyOf).filter(Boolean);
    const listedSet = new Set(listed);
    for (const key of [...state.downloads.keys()]) if (!listedSet.has(key) && !newer(key)) dropDownload(key);
    for (const d of list) if (keyOf(d) && !newer(keyOf(d))) upsertDownload(d);
    /* in the daemon's order (running first), then those only events told
     * of; moving only what is out of place */
    const body = $('#downloads').tBodies[0];
    const order = [...new Set([...listed, ...state.downloads.keys()])]
      .filter((k) => state.downloads.has(k) && state.rows.has(k))
      .map((k) => state.rows.get(k).tr);
    order.forEach((tr, i) => {
      if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
    });
    showDownloadsEmpty();
  }

  function downloadOfRow(tr) {
    for (const [key, r] of state.rows) if (r.tr === tr) return state.downloads.get(key);
    return null;
  }

  /* Pause, resume (or retry), cancel, remove: the buttons of a row. */
  async function onDownloadClick(ev) {
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    const d = downloadOfRow(button.closest('tr'));
    if (!d || !d.id) return;
    const action = button.dataset.action;
    const name = visible(d.name || d.id);
    if (action === 'pause') {
      const reply = await busy(button, () => api('pause', { id: d.id }));
      if (reply && reply.download) {
        upsertDownload(reply.download);
        say(['Paused ', bdi(d.name)]);
      }
    } else if (action === 'resume') {
      await resumeOrRetry(button, d);
    } else if (action === 'cancel') {
      if (!confirm('Cancel the download of \u201c' + name + '\u201d? What it has downloaded so far is deleted.')) return;
      const reply = await busy(button, () => api('cancel', { id: d.id }));
      if (reply) {
        dropDownload(keyOf(d));
        say(['Cancelled ', bdi(d.name), ': its partial data is deleted']);
      }
    } else if (action === 'remove') {
      await removeDownload(button, d, name);
    }
  }

  /* A paused one resumes; a failed one is asked for again (get), which
   * is what `resume` itself says to do. */
  async function resumeOrRetry(button, d) {
    if (d.state === 'failed') {
      const reply = await busy(button, () => api('get', { id: d.id }));
      if (reply && reply.accepted) {
        upsertDownload(reply.accepted);
        say(['Trying again: ', bdi(d.name)]);
      }
      return;
    }
    const reply = await busy(button, () => api('resume', { id: d.id }));
    if (reply && reply.download) {
      upsertDownload(reply.download);
      say(['Resumed ', bdi(d.name)]);
    }
  }

  /* Remove from the list; for a complete one, asked once more whether the
   * file goes too. */
  async function removeDownload(button, d, name) {
    if (!confirm('Remove \u201c' + name + '\u201d from the list of downloads?')) return;
    let deleteData = false;
    if (d.state === 'complete')
      deleteData = confirm('Also delete the downloaded file' + (d.path ? ' ' + visible(d.path) : '') +
        ' from the disk?\n\nOK deletes the file. Cancel keeps it.');
    const reply = await busy(button, () => api('remove', { id: d.id, delete_data: deleteData }));
    if (!reply) return;
    dropDownload(keyOf(d));
    const gone = reply.download && reply.download.deleted;
    say(['Removed ', bdi(d.name), ' from the list', gone ? ['; deleted ', bdi(gone)] : ''].flat());
  }

  async function onPriorityChange(ev) {
    const select = ev.target.closest('select[data-action="priority"]');
    if (!select) return;
    const d = downloadOfRow(select.closest('tr'));
    if (!d || !d.id) return;
    const reply = await busy(select, () => api('priority', { id: d.id, priority: select.value }));
    if (reply && reply.download) {
      upsertDownload(reply.download);
      say(['Priority of ', bdi(d.name), ': ' + select.value]);
    } else {
      select.value = d.priority || 'normal';
    }
  }

  /* ==== share folders ==================================================================== */

  async function loadShares() {
    try {
      drawFolders((await api('shares')).folders);
    } catch (e) {
      fail(e);
    }
  }

  function folderDetail(f) {
    const origin = f.origin === 'config' ? 'set in the configuration' : 'added here';
    if (f.state === 'missing') return 'missing: its files are not shared until it is back (' + origin + ')';
    if (f.state === 'scanning') return 'scanning\u2026 (' + origin + ')';
    let s = 'shared: ' + plural(num(f.files), 'file', 'files') + ', ' + humanSize(num(f.bytes));
    if (num(f.ignored) > 0) s += ', ' + num(f.ignored) + ' ignored (.sovaignore)';
    return s + ' (' + origin + ')';
  }

  /* The folders (from shares, share_add/remove, or the status event):
   * redrawn only when they changed; a focused button keeps its focus. */
  function drawFolders(folders) {
    folders = Array.isArray(folders) ? folders : [];
    const json = JSON.stringify(folders);
    if (json === state.foldersJson) return;
    state.foldersJson = json;
    const list = $('#folders');
    const focused = list.contains(document.activeElement) ? document.activeElement.closest('li').dataset.path : null;
    list.replaceChildren(...folders.map((f, i) => {
      const pathId = 'folder-' + i;
      return el('li', { dataset: { path: String(f.path || '') } }, [
        el('span', { class: 'path', id: pathId }, bdi(f.path)),
        el('span', { class: 'detail', text: folderDetail(f) }),
        f.error ? el('span', { class: 'error' }, ['Error: ', bdi(f.error)]) : null,
        f.origin === 'added'
          ? el('button', { type: 'button', class: 'danger', dataset: { action: 'share-remove' }, 'aria-describedby': pathId, text: 'Stop sharing' })
          : null,
      ]);
    }));
    $('#folders-empty').hidden = folders.length !== 0;
    if (focused !== null) {
      for (const li of list.children) if (li.dataset.path === focused && li.querySelector('button')) li.querySelector('button').focus();
    }
  }

  async function onShareAdd(ev) {
    ev.preventDefault();
    const input = $('#share-path');
    const path = input.value.trim();
    if (!path.startsWith('/')) return say('Give the folder as an absolute path, starting with /.', true);
    const reply = await busy(ev.target.querySelector('button'), () => api('share_add', { path }));
    if (!reply) return;
    drawFolders(reply.folders);
    input.value = '';
    say(['Sharing ', bdi(path), ': its files are being scanned']);
  }

  async function onShareRemove(ev) {
    const button = ev.target.closest('button[data-action="share-remove"]');
    if (!button) return;
    const path = button.closest('li').dataset.path;
    if (!confirm('Stop sharing ' + visible(path) + '? Its files stay on the disk.')) return;
    const reply = await busy(button, () => api('share_remove', { path }));
    if (!reply) return;
    drawFolders(reply.folders);
    say(['Stopped sharing ', bdi(path)]);
  }

  /* ==== status, why relayed, credit ============================================================ */

  async function loadStatus() {
    const seq = state.statusSeq;
    try {
      const s = await api('status');
      if (seq === state.statusSeq) setStatus(s); // else an event brought a newer one
    } catch (e) {
      fail(e);
    }
  }

  /* A new status (GET or event): every page that shows part of it. */
  function setStatus(s) {
    if (!s || typeof s !== 'object') return;
    const json = JSON.stringify(s);
    if (json === state.statusJson) return; // unchanged: nothing redrawn under a screen reader
    state.statusJson = json;
    state.status = s;
    drawStatus(s);
    drawWhyRelayed(s);
    drawCredit(s);
    drawLimitsInfo(s.limits);
    if (state.page === 'shares' && s.shares && Array.isArray(s.shares.folders)) drawFolders(s.shares.folders);
  }

  function supernodeWords(sn) {
    if (sn.attached) return ['attached to ', bdi(shortId(sn.id)), ' at ', bdi(sn.endpoint)];
    if (sn.refused) return ['not attached: ', bdi(sn.refused)];
    return ['not attached yet (trying ', bdi(sn.endpoint), ')'];
  }

  function drawStatus(s) {
    const sn = s.supernode || {};
    const reach = s.reach || {};
    const mapping = reach.mapping || {};
    const shares = s.shares || {};
    const up = s.uploads || {};
    const relay = s.relay || {};
    const folders = Array.isArray(shares.folders) ? shares.folders : [];
    const missing = folders.filter((f) => f && f.state === 'missing').length;
    const dialback = Array.isArray(reach.dialback) ? reach.dialback : [];
    let sharesWords;
    if (folders.length === 0) sharesWords = 'no share folder: nothing is shared';
    else if (missing === folders.length) sharesWords = 'nothing is shared: ' + (folders.length === 1 ? 'the share folder is' : 'every share folder is') + ' missing';
    else sharesWords = plural(num(shares.files), 'file', 'files') + ', ' + humanSize(num(shares.bytes)) +
      (shares.scanning ? ' (scanning)' : '') + '; ' + num(s.published) + ' published' + (missing ? '; a folder is missing' : '');
    fillFacts($('#status-list'), [
      ['Peer ID', el('span', { class: 'mono' }, bdi(s.id))],
      ['Listening on', bdi(s.listen)],
      ['Supernode', supernodeWords(sn)],
      ['Backup supernode', sn.backup ? bdi(sn.backup) : 'none yet'],
      ['Seen by the supernode as', s.observed ? bdi(s.observed) : '\u2014'],
      ['Reachability', [bdi(s.reachability || 'unknown'), s.reachability_reason ? [': ', bdi(s.reachability_reason)] : ''].flat()],
      ['Public address', reach.address ? bdi(reach.address) : null],
      ['Port mapping', mapping.words ? bdi(mapping.words) : bdi(mapping.state || 'off')],
      ['IPv6 pinhole', reach.pinhole && reach.pinhole.words ? bdi(reach.pinhole.words) : null],
      ['Dial-back', dialback.length ? dialback.map((p) => [bdi(p.addr), ' ', bdi(p.outcome), '; ']).flat().slice(0, -1) : 'not done yet'],
      ['NAT', reach.nat ? bdi(reach.nat) : null],
      ['Shares', sharesWords],
      ['Uploads', num(up.connected) + ' peers connected to us, ' + num(up.active) + ' uploading, ' +
        num(up.waiting) + ' waiting; ' + humanSize(num(up.bytes_sent)) + ' sent'],
      ['Downloads', num(s.downloads_running) + ' running; ' + humanSize(num(s.downloads_bytes_in)) + ' received'],
      ['Relay circuits', num(relay.circuits) + ' open now; ' + num(relay.opened) + ' opened by us, ' + num(relay.accepted) + ' accepted'],
      ['Limits in force', s.limits && s.limits.in_force ? 'upload ' + kbps(s.limits.in_force.upload_kbps) + ', download ' + kbps(s.limits.in_force.download_kbps) : null],
      ['HTTP API', s.api ? ['http://', bdi(s.api), '/api/v1/ (key: sova-peer api-key)'] : 'off'],
      ['Up for', duration(num(s.uptime_s))],
    ]);
  }

  /* "Why am I relayed?" in plain words, from the reachability and its
   * reason (docs/NAT.md), and the way each download of this run took. */
  function drawWhyRelayed(s) {
    const p = $('#why-relayed');
    const reason = s.reachability_reason ? [' (', bdi(s.reachability_reason), ')'] : [];
    let words;
    if (s.reachability === 'public' || s.reachability === 'mapped') {
      words = ['This peer is reachable: other peers can connect to it directly', ...reason,
        '. A source that cannot be reached connects here instead (reversal); a download goes through ' +
        'the supernode (relay) only when that fails too.'];
    } else if (s.reachability === 'unreachable') {
      words = ['Other peers cannot connect to this peer', ...reason,
        '. A source that other peers can reach is still connected to directly. When a source cannot be ' +
        'reached either, both sides dial each other at once through their routers (a hole punch), which works ' +
        'when both routers keep ports; otherwise its data goes through the supernode (relay). ' +
        'A port mapping on your router (UPnP or NAT-PMP), or a port forwarded by hand, would make this peer reachable.'];
    } else {
      words = ['Not known yet: the supernode has not yet checked whether other peers can connect to this peer (dial-back).'];
    }
    const transfers = Array.isArray(s.transfers) ? s.transfers : [];
    if (transfers.length) {
      words.push(' Downloads of this run: ');
      transfers.forEach((t, i) => {
        words.push(i ? '; ' : '', bdi(t.name), ' ' + String(t.state || '') + ' via ', bdi(t.route || t.via));
      });
      words.push('.');
    }
    p.replaceChildren(...words.map((w) => (typeof w === 'string' ? document.createTextNode(w) : w)));
  }

  function drawCredit(s) {
    const cr = s.credit || {};
    const rc = cr.receipts || {};
    const rej = rc.rejected || {};
    if (!cr.known) {
      $('#credit-summary').textContent = 'Not known yet: the supernode has not answered.';
    } else {
      $('#credit-summary').textContent = 'Your credit: ' + humanSize(num(cr.credit)) + ' (uploaded ' +
        humanSize(num(cr.uploaded)) + ', downloaded ' + humanSize(num(cr.downloaded)) + ', online ' + duration(num(cr.uptime_s)) + ').';
    }
    const refused = Object.keys(rej).map((k) => num(rej[k]) + ' ' + k.replace(/_/g, ' ')).join(', ');
    fillFacts($('#credit-list'), [
      ['Receipts signed', num(rc.signed) + ' (for what others sent us)'],
      ['Receipts received', num(rc.received) + ' (for what we sent), ' + num(rc.accepted) + ' accepted'],
      ['Handed to the supernode', num(rc.submitted) + '; ' + num(rc.queued) + ' waiting, ' + num(rc.dropped) + ' dropped'],
      ['Receipts refused', refused || 'none'],
    ]);
  }

  async function loadPeers() {
    let reply;
    try {
      reply = await api('peers');
    } catch (e) {
      return fail(e);
    }
    const peers = Array.isArray(reply.peers) ? reply.peers : [];
    $('#peers').tBodies[0].replaceChildren(...peers.map(peerRow));
    $('#peers').hidden = peers.length === 0;
    $('#peers-empty').hidden = peers.length !== 0;
  }

  function peerRow(p) {
    let path;
    if (p.relay) path = ['relay via ', bdi(shortId(p.relay.supernode)), ' at ', bdi(p.relay.address)];
    else path = [p.address ? bdi(p.address) : '\u2014', ' ', bdi(p.path)];
    return el('tr', {}, [
      el('td', { class: 'mono', 'data-label': 'Peer' }, [bdi(shortId(p.id)),
        p.download ? el('span', { class: 'sub' }, ['for ', bdi(p.download.name)]) : null]),
      el('td', { 'data-label': 'Direction' }, [bdi(p.direction), ' (', bdi(p.connection), ')']),
      el('td', { 'data-label': 'State' }, bdi(p.state)),
      el('td', { 'data-label': 'Path' }, path),
      el('td', { class: 'num', 'data-label': 'Rate' }, humanRate(num(p.rate_bps))),
      el('td', { class: 'num', 'data-label': 'Bytes' }, humanSize(num(p.bytes))),
      el('td', { class: 'num', 'data-label': 'Credit' }, humanSize(num(p.credit))),
    ]);
  }

  /* ==== settings: bandwidth limits ==================================================================== */

  const LIMIT_FIELDS = [
    ['upload-kbps', 'upload_kbps'],
    ['download-kbps', 'download_kbps'],
    ['alt-upload-kbps', 'alt_upload_kbps'],
    ['alt-download-kbps', 'alt_download_kbps'],
  ];

  async function loadLimits() {
    try {
      fillLimits((await api('limits')).limits);
    } catch (e) {
      fail(e);
    }
  }

  function fillLimits(l) {
    if (!l) return;
    for (const [inputId, field] of LIMIT_FIELDS) $('#' + inputId).value = String(num(l[field]));
    $('#turtle').value = ['on', 'off', 'auto'].includes(l.turtle) ? l.turtle : 'off';
    drawLimitsInfo(l);
  }

  /* What is in force now, and the schedule of the alternative limits. */
  function drawLimitsInfo(l) {
    if (!l) return;
    const f = l.in_force || {};
    fillFacts($('#limits-info'), [
      ['In force now', 'upload ' + kbps(f.upload_kbps) + ', download ' + kbps(f.download_kbps)],
      ['Alternative limits', (l.turtle_active ? 'in force' : 'not in force') + ' (turtle ' + visible(l.turtle) + ')'],
      ['Schedule', typeof l.schedule === 'string' ? bdi(l.schedule) : 'none'],
    ]);
  }

  async function onLimitsSave(ev) {
    ev.preventDefault();
    const body = {};
    for (const [inputId, field] of LIMIT_FIELDS) {
      const v = $('#' + inputId).value.trim();
      if (!/^\d+$/.test(v) || Number(v) > 100000000)
        return say('Each limit is a whole number of kB/s from 0 (unlimited) to 100000000.', true);
      body[field] = Number(v);
    }
    body.turtle = $('#turtle').value;
    const reply = await busy(ev.target.querySelector('button[type="submit"]'), () => api('limits', body));
    if (!reply) return;
    fillLimits(reply.limits);
    say('Limits saved. They last until the peer restarts or reloads its configuration.');
  }

  /* ==== live updates: one event stream ======================================================== */

  let events = null;
  let retryMs = 2000;

  function parseEvent(ev) {
    try {
      return JSON.parse(ev.data);
    } catch (e) {
      return null;
    }
  }

  function setConn(text) {
    const p = $('#conn');
    p.textContent = text || '';
    p.hidden = !text;
  }

  /* An event about a download: a list requested before it is older. */
  function touch(d) {
    const key = keyOf(d);
    if (key) state.touched.set(key, ++state.eventSeq);
  }

  function openEvents() {
    events = new EventSource('/api/v1/events');
    events.addEventListener('open', () => {
      retryMs = 2000;
      setConn('');
      loadDownloads(); // what happened while the stream was closed
      loadStatus();
    });
    for (const type of ['progress', 'complete', 'failed', 'paused']) {
      events.addEventListener(type, (ev) => {
        const data = parseEvent(ev);
        if (!data || !data.download) return;
        touch(data.download);
        upsertDownload(data.download);
        if (type === 'complete') say(['Download complete: ', bdi(data.download.name)]);
        else if (type === 'failed') say(['Download failed: ', bdi(data.download.name), data.download.error ? [': ', bdi(data.download.error)] : ''].flat(), true);
      });
    }
    for (const type of ['cancelled', 'removed']) {
      events.addEventListener(type, (ev) => {
        const data = parseEvent(ev);
        if (!data || !data.download) return;
        touch(data.download);
        dropDownload(keyOf(data.download));
      });
    }
    events.addEventListener('status', (ev) => {
      const data = parseEvent(ev);
      state.statusSeq++;
      /* the status object itself; also taken wrapped as {"status": {...}} */
      setStatus(data && !data.supernode && data.status && typeof data.status === 'object' ? data.status : data);
    });
    events.addEventListener('error', onEventsError);
  }

  /* The browser retries by itself while CONNECTING; a CLOSED stream (a
   * refusal: logged out, too many streams) is reopened here after a check
   * of the session (a 401 goes to the login page). */
  function onEventsError() {
    if (!events || events.readyState !== EventSource.CLOSED) {
      setConn('Live updates interrupted; reconnecting\u2026');
      return;
    }
    events.close();
    events = null;
    setConn('Live updates lost; trying again in ' + Math.round(retryMs / 1000) + ' s\u2026');
    api('status').then(setStatus, fail);
    setTimeout(openEvents, retryMs);
    retryMs = Math.min(retryMs * 2, 60000);
  }

  /* ==== log out ================================================================================== */

  async function onLogout(ev) {
    const button = ev.currentTarget;
    button.disabled = true;
    try {
      const res = await fetch('/logout', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-Sova-CSRF': CSRF },
      });
      if (res.ok || res.status === 401 || res.redirected) return toLogin();
      let why = 'the peer answered HTTP ' + res.status;
      try {
        const data = await res.json();
        if (data && typeof data.error === 'string') why = data.error;
      } catch (e) { /* not JSON: the status says it */ }
      say(visible('Could not log out: ' + why), true);
    } catch (e) {
      say('Could not log out: cannot reach the peer.', true);
    } finally {
      button.disabled = false;
    }
  }

  /* ==== start ===================================================================================== */

  function start() {
    $('#search-form').addEventListener('submit', onSearch);
    $('#search-results').addEventListener('click', onHitClick);
    $('#downloads').addEventListener('click', onDownloadClick);
    $('#downloads').addEventListener('change', onPriorityChange);
    $('#share-add-form').addEventListener('submit', onShareAdd);
    $('#folders').addEventListener('click', onShareRemove);
    $('#limits-form').addEventListener('submit', onLimitsSave);
    $('#peers-refresh').addEventListener('click', (ev) => busy(ev.currentTarget, loadPeers));
    $('#logout').addEventListener('click', onLogout);
    $('.skip').addEventListener('click', (ev) => {
      ev.preventDefault();
      $('#main').focus();
    });
    window.addEventListener('hashchange', () => route(true));
    showDownloadsEmpty();
    route(false);
    if (state.page !== 'status' && state.page !== 'credit') loadStatus(); // reachability, for search paths
    openEvents();
  }

  start();
})();
