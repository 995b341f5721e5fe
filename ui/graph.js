// The service graph as SVG: callers and gateways (the entry points), services and subsets in
// three columns, edges labelled with share and match, or with the hosts a gateway lets in.
const NS = 'http://www.w3.org/2000/svg';
const NODE_W = 230;
const NODE_H = 40;
const ROW = 58;
const COLUMNS = { proxy: 20, service: 380, subset: 860 };
const TITLES = { proxy: 'Gateways and callers', service: 'Services', subset: 'Destinations (subsets)' };
/** Gateways share the callers' column, above them. */
const COLUMN_OF = { gateway: 'proxy', proxy: 'proxy', service: 'service', subset: 'subset' };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function renderGraph(container, graph) {
  const columns = { proxy: [], service: [], subset: [] };
  const entryFirst = [...graph.nodes].sort((a, b) => (a.kind === 'gateway' ? 0 : 1) - (b.kind === 'gateway' ? 0 : 1));
  for (const node of entryFirst) columns[COLUMN_OF[node.kind]]?.push(node);
  const position = new Map();
  for (const [kind, nodes] of Object.entries(columns)) nodes.forEach((n, i) => position.set(n.id, { x: COLUMNS[kind], y: 40 + i * ROW }));
  const rows = Math.max(1, ...Object.values(columns).map((c) => c.length));
  const root = svg('svg', { viewBox: `0 0 ${COLUMNS.subset + NODE_W + 20} ${60 + rows * ROW}`, role: 'img', 'aria-label': 'service graph' });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8f9bb3' }));
  defs.append(marker);
  root.append(defs);
  for (const [kind, x] of Object.entries(COLUMNS)) root.append(svg('text', { x, y: 20, class: 'column-title' }, TITLES[kind]));
  const labelsUsed = new Map();
  for (const edge of graph.edges) {
    const from = position.get(edge.from);
    const to = position.get(edge.to);
    if (!from || !to) continue;
    const x1 = from.x + NODE_W;
    const y1 = from.y + NODE_H / 2;
    const x2 = to.x;
    const y2 = to.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const width = edge.percent === null ? 1.2 : 1 + (edge.percent / 100) * 4;
    const path = svg('path', { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: `edge ${edge.kind}`, 'stroke-width': width, 'marker-end': 'url(#arrow)' });
    const rule = edge.rule ? ` — ${edge.rule.kind} ${edge.rule.namespace}/${edge.rule.name}${edge.rule.httpRoute !== undefined ? ` http[${edge.rule.httpRoute}]` : ''}` : '';
    const what = edge.kind === 'enters' ? `lets in ${edge.match}` : `${edge.percent === null ? 'calls' : `${edge.percent}%`}${edge.match ? ` when ${edge.match}` : ''}`;
    path.append(svg('title', {}, `${what}${rule}`));
    root.append(path);
    if (edge.kind === 'routes') {
      // Labels sit near the destination so parallel edges from one service stay readable.
      const key = edge.to;
      const n = labelsUsed.get(key) ?? 0;
      labelsUsed.set(key, n + 1);
      root.append(svg('text', { x: x2 - 14, y: y2 - 8 - n * 13, class: 'edge-label', 'text-anchor': 'end' }, truncate(`${edge.percent}% · ${edge.match}`, 28)));
    } else if (edge.kind === 'enters') {
      // The hosts a gateway lets in for a service sit just before that service; the title has them all.
      const n = labelsUsed.get(edge.to) ?? 0;
      labelsUsed.set(edge.to, n + 1);
      root.append(svg('text', { x: x2 - 8, y: y2 - 8 - n * 13, class: 'edge-label entry', 'text-anchor': 'end' }, truncate(edge.match ?? '', 20)));
    }
  }
  for (const node of graph.nodes) {
    const p = position.get(node.id);
    const g = svg('g', { class: `node ${node.kind}`, transform: `translate(${p.x},${p.y})`, 'data-node': node.id });
    g.append(svg('rect', { width: NODE_W, height: NODE_H, rx: 6 }));
    g.append(svg('text', { x: 10, y: 17 }, truncate(node.label, 34)));
    g.append(svg('text', { x: 10, y: 32, class: 'detail' }, truncate(node.detail, 40)));
    g.append(svg('title', {}, `${node.label}\n${node.detail}`));
    root.append(g);
  }
  container.replaceChildren(root);
}
