// The web UI in a real headless Chromium with an ingress gateway connected (fixtures/gateway):
// the proxy list calls it a gateway, the graph draws it as the entry point with an edge to each
// service its routes reach, and the explain form walks an HTTPS request through its SNI chain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchUiBrowser, skipWithoutChromium, type UiBrowser } from './support/chromium.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { SotwFollower } from './support/xds-follower.ts';

const FIXTURE = new URL('../fixtures/gateway', import.meta.url).pathname;
const GATEWAY = 'router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local';

describe('the web UI shows an ingress gateway', { skip: skipWithoutChromium() }, () => {
  let meshpilot: TestMeshpilot;
  let gateway: SotwFollower;
  let browser: UiBrowser;
  let page: Page;
  let consoleErrors: string[];
  const screenshot = (name: string): Promise<void> => browser.screenshot(name);

  before(async () => {
    meshpilot = await startMeshpilot(FIXTURE);
    gateway = new SotwFollower(meshpilot.xdsPort, GATEWAY);
    await eventually(async () => {
      const sync = await meshpilot.proxySync(GATEWAY);
      return sync && Object.values(sync).every((t) => t.status === 'SYNCED') ? true : undefined;
    }, 10_000, 'the gateway synced on every type');
    browser = await launchUiBrowser();
    ({ page, consoleErrors } = browser);
  });

  after(async () => {
    await browser.close();
    gateway.close();
    await meshpilot.close();
  });

  it('lists the gateway as a gateway, in sync', async () => {
    await page.goto(`${meshpilot.adminUrl}/ui/`);
    const row = page.locator(`#proxy-table tr[data-proxy="${GATEWAY}"]`);
    await row.waitFor();
    assert.equal(await row.locator('td.kind').textContent(), 'gateway');
    assert.deepEqual(await row.locator('.badge').allTextContents(), ['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
  });

  it('draws the gateway as the entry point, with an edge to each service its routes reach', async () => {
    await page.click('a[data-tab="graph"]');
    const node = page.locator(`#graph-view [data-node="proxy:${GATEWAY}"]`);
    await node.waitFor();
    assert.equal(await node.getAttribute('class'), 'node gateway');
    assert.match((await node.textContent()) ?? '', /istio-ingressgateway-5d9c8b7f6-k2x4p.*gateway: default\/bookinfo-gateway/s);
    const entries = await page.locator('#graph-view path.edge.enters title').allTextContents();
    assert.deepEqual(entries.sort(), [
      'lets in bookinfo.example.com, secure.bookinfo.example.com — VirtualService default/bookinfo',
      'lets in reviews.example.com — VirtualService default/reviews',
    ]);
    const labels = await page.locator('#graph-view .edge-label.entry').allTextContents();
    assert.ok(labels.includes('reviews.example.com') && labels.includes('bookinfo.example.co…'), labels.join(' | '));
    await screenshot('gateway-graph');
  });

  it('explains an HTTPS request through the SNI chain and the Gateway server that terminates it', async () => {
    await page.click('a[data-tab="explain"]');
    await page.selectOption('#explain-proxy', GATEWAY);
    await page.selectOption('#explain-scheme', 'https');
    await page.fill('#explain-authority', 'secure.bookinfo.example.com');
    await page.fill('#explain-path', '/productpage');
    await page.click('#explain-form button');
    const summary = page.locator('#explain-summary');
    await summary.waitFor();
    assert.match((await summary.textContent()) ?? '', /VirtualService default\/bookinfo http\[0\].*productpage.*through Gateway default\/bookinfo-gateway servers\[2\]/);
    const steps = (await page.textContent('#explain-result .steps')) ?? '';
    assert.match(steps, /filter chain#0 SNI secure\.bookinfo\.example\.com · TLS terminated/);
    assert.match(steps, /gatewayservers\[2\] HTTPS 443 · hosts default\/secure\.bookinfo\.example\.com · TLS SIMPLE with bookinfo-credential Gateway default\/bookinfo-gateway/);
    await screenshot('gateway-explain');
  });

  it('logged no console error', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
