// meshpilot's web UI: plain DOM over the admin API; every value is set as text, never as HTML.
import { renderGraph } from './graph.js';

const REFRESH_MS = 2000;
const TYPES = ['cds', 'lds', 'eds', 'rds'];
let token = sessionStorage.getItem('meshpilot-token') ?? '';
let proxies = [];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  const box = document.getElementById('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers ?? {});
  if (token) headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    document.getElementById('token-form').hidden = false;
    throw new Error('the admin API needs a token (--admin-token)');
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `${path} answered ${response.status}`);
  return body;
}

function age(since) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function ruleChip(rule) {
  if (!rule) return null;
  return el('span', { class: 'rule', title: 'the object that produced this' }, `${rule.kind} ${rule.namespace}/${rule.name}${rule.httpRoute !== undefined ? ` http[${rule.httpRoute}]` : ''}`);
}

function badge(status) {
  return el('span', { class: `badge ${status.replace(' ', '-')}` }, status);
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

const KIND_TEXT = { sidecar: 'Envoy sidecar', router: 'gateway', 'proxyless-grpc': 'proxyless gRPC', unknown: 'Envoy' };

function fillProxySelect(select) {
  const current = select.value;
  const ids = proxies.map((p) => p.proxy).filter(Boolean);
  const same = ids.length === select.options.length && ids.every((id, i) => select.options[i]?.value === id);
  if (!same) select.replaceChildren(...ids.map((id) => el('option', { value: id }, id)));
  if (ids.includes(current)) select.value = current;
}

function until(time) {
  const s = Math.floor((Date.parse(time) - Date.now()) / 1000);
  if (s <= 0) return 'expired';
  if (s < 3600) return `in ${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `in ${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `in ${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// Identity, certificate and mTLS cells, from /debug/adsz's per-connection security view.
function securityCells(security) {
  if (!security) return [el('td', { class: 'hint' }, 'unknown'), el('td', { class: 'hint' }, 'unknown'), el('td', {})];
  const { identity, certificate, unknownBecause, mtls } = security;
  const expiry = certificate
    ? el('td', { class: 'cert', title: `serial ${certificate.serial}` }, el('span', { class: certificate.expired ? 'expired' : '' }, certificate.notAfter), el('div', { class: 'hint' }, until(certificate.notAfter)))
    : el('td', { class: 'cert hint', title: unknownBecause ?? '' }, 'unknown');
  const ports = mtls.ports.map((p) =>
    el('div', { class: 'mtls-port', 'data-port': p.port }, `${p.port} `, el('span', { class: `mtls ${p.mode}` }, p.mode), p.accepts === p.mode ? '' : el('span', { class: 'hint' }, ` (accepts ${p.accepts})`)),
  );
  return [
    el('td', { class: identity ? 'mono identity' : 'identity hint' }, identity ? identity.spiffeId : 'unknown'),
    expiry,
    el('td', {}, ports.length > 0 ? ports : el('span', { class: 'hint' }, `no inbound port · ${mtls.mode}`)),
  ];
}

async function refreshProxies() {
  const [{ proxies: list }, push, { connections }] = await Promise.all([api('/debug/syncz'), api('/debug/push_status'), api('/debug/adsz')]);
  proxies = list;
  const security = new Map(connections.map((c) => [c.connectionId, c.security]));
  const tbody = document.querySelector('#proxy-table tbody');
  replaceRows(
    tbody,
    list.length === 0
      ? [el('tr', {}, el('td', { colspan: 10, class: 'hint' }, 'No proxy is connected.'))]
      : list.map((p) =>
          el(
            'tr',
            { 'data-proxy': p.proxy ?? '' },
            el('td', { class: 'mono' }, p.proxy ?? `connection ${p.connectionId}`),
            el('td', { class: 'kind' }, KIND_TEXT[p.kind] ?? 'Envoy'),
            ...TYPES.map((t) => el('td', {}, badge(p.types[t].status))),
            el('td', {}, age(p.connectedAt)),
            ...securityCells(security.get(p.connectionId)),
          ),
        ),
  );
  const nacks = list.flatMap((p) => TYPES.filter((t) => p.types[t].status === 'ERROR').map((t) => ({ proxy: p.proxy, type: t, nack: p.types[t].nack })));
  document.getElementById('nacks').replaceChildren(
    ...nacks.map(({ proxy, type, nack }) =>
      el(
        'div',
        { class: 'nack' },
        el('strong', {}, `${proxy} rejected ${type.toUpperCase()} version ${nack.version}`),
        el('div', { class: 'mono' }, nack.message),
        el('ul', {}, (nack.rejected?.resources ?? []).map((r) => el('li', {}, el('span', { class: 'mono' }, r.name), ' ', r.rules.map(ruleChip)))),
      ),
    ),
  );
  const counts = push.proxies;
  document.getElementById('push-summary').textContent =
    `push ${push.pushSequence ?? '-'} · ${counts.total} proxies: ${counts.synced} synced, ${counts.stale} stale, ${counts.error} rejecting · ${push.counts.services} services`;
  fillProxySelect(document.getElementById('route-proxy'));
  fillProxySelect(document.getElementById('explain-proxy'));
}

async function refreshServices() {
  const { services } = await api('/debug/registryz');
  replaceRows(
    document.querySelector('#service-table tbody'),
    services.map((s) =>
      el(
        'tr',
        {},
        el('td', {}, el('strong', {}, `${s.name}.${s.namespace}`), el('div', { class: 'mono hint' }, s.hostname)),
        el('td', {}, s.ports.map((p) => el('div', {}, `${p.port}/${p.protocol}${p.name ? ` (${p.name})` : ''}`))),
        el('td', { class: 'mono' }, s.vip ?? 'headless'),
        el(
          'td',
          {},
          s.endpoints.length === 0 ? el('span', { class: 'hint' }, 'none') : null,
          s.endpoints.map((e) =>
            el('div', { class: 'mono' }, `${e.address}:${e.port}`, ' ', e.ready ? '' : badge('NOT READY'), ' ', el('span', { class: 'hint' }, Object.entries(e.labels).filter(([k]) => k !== 'pod-template-hash').map(([k, v]) => `${k}=${v}`).join(' '))),
          ),
        ),
      ),
    ),
  );
}

async function refreshGraph() {
  renderGraph(document.getElementById('graph-view'), await api('/debug/graphz'));
}

function describeMatch(match) {
  const path = match.prefix !== undefined ? `${match.prefix}*` : match.path ?? (match.safe_regex ? `~${match.safe_regex.regex}` : '/*');
  const headers = (match.headers ?? []).map((h) => {
    const sm = h.string_match ?? {};
    const value = h.exact_match ?? h.prefix_match ?? sm.exact ?? sm.prefix ?? h.safe_regex_match?.regex ?? sm.safe_regex?.regex ?? '*';
    return `${h.name}=${value}`;
  });
  return headers.length > 0 ? `${path} [${headers.join(', ')}]` : path;
}

function destination(route) {
  const action = route.route;
  if (!action) return [route.redirect ? 'redirect' : route.direct_response ? 'direct response' : '-'];
  if (action.cluster) return [action.cluster];
  return (action.weighted_clusters?.clusters ?? []).map((c) => `${c.name} (${c.weight})`);
}

function ruleOf(route) {
  const istio = route.metadata?.filter_metadata?.istio;
  const match = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(istio?.config ?? '');
  if (!match) return null;
  const kinds = { 'virtual-service': 'VirtualService', 'destination-rule': 'DestinationRule' };
  return { kind: kinds[match[2]] ?? match[2], namespace: match[1], name: match[3], httpRoute: istio.http_route };
}

async function refreshRoutes() {
  const proxy = document.getElementById('route-proxy').value;
  const tbody = document.querySelector('#route-table tbody');
  if (!proxy) {
    replaceRows(tbody, [el('tr', {}, el('td', { colspan: 6, class: 'hint' }, 'No proxy is connected.'))]);
    return;
  }
  const dump = await api(`/debug/config_dump?proxyID=${encodeURIComponent(proxy)}`);
  const routes = dump.configs.find((c) => c['@type'].endsWith('RoutesConfigDump'))?.dynamic_route_configs ?? [];
  const rows = routes.flatMap(({ route_config: rc }) =>
    (rc.virtual_hosts ?? []).flatMap((vh) =>
      (vh.routes ?? []).map((r, i) =>
        el('tr', {}, el('td', { class: 'mono' }, rc.name), el('td', { class: 'mono' }, vh.name), el('td', {}, i), el('td', { class: 'mono' }, describeMatch(r.match ?? {})), el('td', { class: 'mono' }, destination(r).map((line) => el('div', {}, line))), el('td', {}, ruleChip(ruleOf(r)) ?? '-')),
      ),
    ),
  );
  replaceRows(tbody, rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: 6, class: 'hint' }, 'This proxy was sent no routes yet.'))]);
}

function renderExplanation(answer) {
  const steps = [];
  const step = (name, ...content) => steps.push(el('li', {}, el('span', { class: 'step' }, name), el('div', {}, ...content)));
  const r = answer.request;
  const headers = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join(', ');
  step('request', el('span', { class: 'mono' }, `${r.method} ${r.scheme === 'https' ? 'https://' : ''}${r.authority}${r.path}`), headers ? el('span', { class: 'hint' }, `  (${headers})`) : null);
  if (answer.listener) step('listener', el('span', { class: 'mono' }, answer.listener.name), ` (${answer.listener.kind})`);
  const chain = answer.listener?.filterChain;
  if (chain) step('filter chain', `#${chain.index} `, chain.serverNames.length > 0 ? el('span', { class: 'mono' }, `SNI ${chain.serverNames.join(', ')}`) : 'any SNI', chain.terminatesTls ? ' · TLS terminated' : chain.serverNames.length > 0 ? ' · TLS passed through' : ' · plaintext');
  const g = answer.gateway;
  if (g) step('gateway', `servers[${g.server}] ${g.protocol} ${g.port} · hosts `, el('span', { class: 'mono' }, g.hosts.join(' ')), g.tlsMode ? ` · TLS ${g.tlsMode}${g.credentialName ? ` with ${g.credentialName}` : ''}` : g.httpsRedirect ? ' · httpsRedirect' : '', ' ', ruleChip(g.rule));
  if (answer.routeConfig) step('route config', el('span', { class: 'mono' }, answer.routeConfig.name), answer.routeConfig.sent ? '' : ' — not sent to the proxy');
  if (answer.virtualHost) step('virtual host', el('span', { class: 'mono' }, answer.virtualHost.name), ` via domain "${answer.virtualHost.domain}" (${answer.virtualHost.match}) `, ruleChip(answer.virtualHost.service));
  for (const s of answer.skipped) step('skipped', el('span', { class: 'skipped' }, `#${s.index} ${s.name}: ${s.reason} `), ruleChip(s.rule));
  if (answer.route) step('route', el('span', { class: 'mono' }, `#${answer.route.index} ${answer.route.name} `), ruleChip(answer.route.rule));
  for (const c of answer.clusters) {
    step(
      'cluster',
      el('strong', {}, `${c.percent}% `),
      el('span', { class: 'mono' }, c.name),
      ' ',
      c.rules.map(ruleChip),
      el('ul', { class: 'endpoints mono' }, c.endpoints.length === 0 ? el('li', {}, 'no endpoints: requests get 503') : c.endpoints.map((e) => el('li', {}, `${e.address}:${e.port}  ${e.healthStatus}  ${e.locality.split('/').filter(Boolean).join('/')}`))),
    );
  }
  if (answer.policy) {
    const p = answer.policy;
    step('policy', `timeout ${p.timeout ?? 'none'} · retries ${p.retries ? JSON.stringify(p.retries) : 'none'} · fault ${p.fault ? JSON.stringify(p.fault) : 'none'}`);
  }
  return [el('ol', { class: 'steps' }, steps), el('div', { class: `verdict${answer.outcome === 'routed' || answer.outcome === 'tcp' ? '' : ' miss'}`, id: 'explain-summary' }, answer.summary)];
}

async function explain(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const query = new URLSearchParams({ proxyID: form.get('proxyID'), authority: form.get('authority'), path: form.get('path') || '/', method: form.get('method') || 'GET', scheme: form.get('scheme') || 'http' });
  for (const line of String(form.get('headers') ?? '').split('\n')) if (line.trim()) query.append('header', line.trim());
  const result = document.getElementById('explain-result');
  try {
    result.replaceChildren(...renderExplanation(await api(`/debug/explain?${query}`)));
    showError('');
  } catch (error) {
    result.replaceChildren();
    showError(error.message);
  }
}

const REFRESHERS = { proxies: refreshProxies, services: refreshServices, graph: refreshGraph, routes: refreshRoutes, explain: async () => {} };

function currentTab() {
  const tab = location.hash.slice(1);
  return tab in REFRESHERS ? tab : 'proxies';
}

async function refresh() {
  const tab = currentTab();
  try {
    if (tab !== 'proxies') await refreshProxies();
    await REFRESHERS[tab]();
    showError('');
  } catch (error) {
    showError(error.message);
  }
}

function showTab() {
  const tab = currentTab();
  for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== tab;
  for (const link of document.querySelectorAll('[data-tab]')) link.classList.toggle('active', link.dataset.tab === tab);
  void refresh();
}

document.getElementById('explain-form').addEventListener('submit', (event) => void explain(event));
document.getElementById('route-proxy').addEventListener('change', () => void refresh());
document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = document.getElementById('token').value;
  sessionStorage.setItem('meshpilot-token', token);
  document.getElementById('token-form').hidden = true;
  showTab();
});
window.addEventListener('hashchange', showTab);

async function start() {
  const session = await (await fetch('/ui/session')).json();
  if (session.tokenRequired && !token) {
    document.getElementById('token-form').hidden = false;
    document.getElementById('token').focus();
  } else showTab();
  setInterval(() => {
    if (currentTab() !== 'explain' && (token || !session.tokenRequired)) void refresh();
  }, REFRESH_MS);
}

void start();
