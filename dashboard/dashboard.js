// zkroute's dashboard: GET /stats every second, drawn with DOM calls only (names and metadata
// come from ZooKeeper: they are set as text, never parsed as HTML).
'use strict';

(() => {
  const TOKEN_KEY = 'zkroute-admin-token';
  const tokenRequired = document.documentElement.dataset.token === 'required';
  const $ = (id) => document.getElementById(id);
  let timer;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== undefined && child !== null) node.append(child);
    return node;
  }

  const fixed = (n, digits) => (n === null || n === undefined ? '–' : n.toFixed(digits));
  const ms = (n) => (n === null || n === undefined ? '–' : n < 10 ? `${n.toFixed(2)} ms` : `${n.toFixed(0)} ms`);
  const share = (n) => (n === null || n === undefined ? '–' : `${(n * 100).toFixed(n > 0 && n < 0.01 ? 2 : 1)}%`);
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

  function sparkline(requests, errors) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 120 24');
    svg.setAttribute('preserveAspectRatio', 'none');
    const max = Math.max(1, ...requests);
    const line = (values, cls) => {
      const path = document.createElementNS(NS, 'polyline');
      const step = values.length > 1 ? 120 / (values.length - 1) : 0;
      path.setAttribute('points', values.map((v, i) => `${(i * step).toFixed(1)},${(23 - (v / max) * 22).toFixed(1)}`).join(' '));
      path.setAttribute('class', cls);
      svg.append(path);
    };
    line(requests, 'requests');
    if (errors.some((v) => v > 0)) line(errors, 'errors');
    const title = document.createElementNS(NS, 'title');
    title.textContent = `requests per second over the last ${requests.length} s (peak ${max}); errors in red`;
    svg.append(title);
    return svg;
  }

  function stateCell(instance) {
    const cell = el('td', { class: `state state-${instance.state}` }, instance.state);
    if (instance.state !== 'healthy') {
      const until = instance.ejectedUntil ? ` until ${clock(instance.ejectedUntil)}` : '';
      cell.append(el('span', { class: 'reason' }, `${instance.ejectionReason ?? ''}${until}`));
    }
    return cell;
  }

  const num = (text) => el('td', { class: 'num' }, text);

  function serviceSection(service) {
    const head = el('h2', {}, el('span', { class: 'name' }, service.name),
      el('span', { class: 'figures' },
        service.watched ? `${service.healthyCount}/${service.instanceCount} healthy${service.panic ? ' (panic: using all)' : ''} · ` : 'not watched yet · ',
        el('span', { class: 'rps' }, `${fixed(service.rps, 1)} req/s`),
        ` · errors ${share(service.errorShare)} · p50 ${ms(service.p50Ms)} · p99 ${ms(service.p99Ms)}`));
    const section = el('section', { class: 'service', 'data-service': service.name }, head);
    if (!service.watched) return section;
    if (service.instances.length === 0) {
      section.append(el('p', { class: 'empty' }, 'no instances in ZooKeeper'));
      return section;
    }
    const header = el('tr', {}, ...['instance', 'zone', 'state'].map((t) => el('th', {}, t)),
      ...['req/s', 'errors', 'p50', 'p99', 'in flight', 'tcp', 'thrift'].map((t) => el('th', { class: 'num' }, t)), el('th', {}, 'last minutes'));
    const rows = service.instances.map((i) => el('tr', { 'data-instance': i.address, 'data-state': i.state },
      el('td', { class: 'address', title: i.id }, i.address),
      el('td', {}, i.zone ?? ''),
      stateCell(i),
      el('td', { class: 'num rps' }, fixed(i.rps, 1)),
      num(share(i.errorShare)),
      num(ms(i.p50Ms)),
      num(ms(i.p99Ms)),
      num(String(i.inFlight)),
      num(String(i.tcpConnections)),
      num(String(i.thriftConnections)),
      el('td', {}, sparkline(i.spark.requests, i.spark.errors))));
    section.append(el('div', { class: 'scroll' }, el('table', {}, el('thead', {}, header), el('tbody', {}, ...rows))));
    return section;
  }

  function eventText(event) {
    const who = [event.service, event.instances && event.instances.join(', ')].filter(Boolean).join(' ');
    const more = event.count && event.instances && event.count > event.instances.length ? ` (+${event.count - event.instances.length} more)` : '';
    const why = !event.reason ? '' : event.kind === 'ejected' ? `: ${event.reason}` : ` (${event.reason})`;
    const until = event.until ? ` until ${clock(event.until)}` : '';
    return `${event.kind.replace('zookeeper_', 'ZooKeeper ')} ${who}${more}${why}${until}`;
  }

  function render(stats) {
    const session = $('session');
    session.textContent = stats.zookeeper.state + (stats.zookeeper.expiries ? ` (${stats.zookeeper.expiries} expiries)` : '');
    session.className = `session-${stats.zookeeper.state}`;
    $('stale').textContent = stats.staleSeconds > 0 ? `stale ${stats.staleSeconds} s` : 'fresh';
    $('source').textContent = stats.source === 'state-file' ? 'state file' : 'ZooKeeper';
    $('workers').textContent = String(stats.workers);
    $('updated').textContent = clock(stats.at);
    const services = stats.services.map(serviceSection);
    $('services').replaceChildren(...(services.length ? services : [el('p', { class: 'empty' }, `no services under ${stats.basePath}`)]));
    $('events').replaceChildren(...stats.events.map((e) => el('li', { class: `kind-${e.kind}` }, el('time', { datetime: e.at }, clock(e.at)), eventText(e))));
    document.body.dataset.loaded = 'true';
  }

  function showError(text) {
    const error = $('error');
    error.textContent = text;
    error.hidden = text === '';
  }

  function askToken(message) {
    clearTimeout(timer);
    showError(message);
    $('auth').hidden = false;
    $('token').focus();
  }

  async function refresh() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (tokenRequired && !token) return askToken('');
    try {
      const response = await fetch('/stats', { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        return askToken('That token was refused.');
      }
      if (!response.ok) throw new Error(`/stats answered ${response.status}`);
      render(await response.json());
      showError('');
    } catch (err) {
      showError(`Cannot reach zkroute: ${err.message}`);
    }
    timer = setTimeout(refresh, 1000);
  }

  $('auth').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('auth').hidden = true;
    $('token').value = '';
    showError('');
    void refresh();
  });

  void refresh();
})();
