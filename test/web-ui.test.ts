// The web UI in a real headless Chromium (Debian's chromium, driven by playwright-core): it loads
// with no console errors and nothing from the network, shows the connected proxies and their
// sync state, services, the service graph, a proxy's route table, and answers the explain form.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import type { Backend } from './support/backends.ts';
import { launchUiBrowser, skipWithoutChromium, type UiBrowser } from './support/chromium.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { eventually } from './support/mesh-dir.ts';
import type { TestMeshpilot } from './support/meshpilot.ts';
import { PRODUCTPAGE, startReviewsMesh, type ReviewsMesh } from './support/reviews-mesh.ts';

const LISTENER = 'reviews.default.svc.cluster.local:9080';
const RATINGS = 'sidecar~127.0.0.41~ratings-v1-0.default~default.svc.cluster.local';

describe('the web UI in headless Chromium', { skip: skipWithoutChromium() }, () => {
  let mesh: ReviewsMesh;
  let backends: Backend[];
  let meshpilot: TestMeshpilot;
  let client: GrpcXdsCaller;
  let ads: RawAdsClient;
  let browser: UiBrowser;
  let page: Page;
  let consoleErrors: string[];
  const screenshot = (name: string): Promise<void> => browser.screenshot(name);
  const foreignRequests: string[] = [];

  before(async () => {
    mesh = await startReviewsMesh({ v1: 80, v3: 20 }, { adminToken: 'ui-token' });
    ({ backends, meshpilot, client } = mesh);
    // A second proxy that rejects its routes, so the page has an ERROR to show.
    ads = new RawAdsClient(meshpilot.xdsPort, RATINGS, { GENERATOR: 'grpc' });
    ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER] });
    const rds = await ads.next((r) => r.type_url === ROUTE_TYPE);
    ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER], nonce: rds.nonce, error: `route config ${LISTENER} rejected by test` });
    ads.send({ typeUrl: LISTENER_TYPE, names: [LISTENER] });

    browser = await launchUiBrowser();
    ({ page, consoleErrors } = browser);
    page.on('request', (request) => {
      if (!request.url().startsWith(meshpilot.adminUrl) && !request.url().startsWith('data:')) foreignRequests.push(request.url());
    });
  });

  after(async () => {
    await browser.close();
    ads.close();
    await mesh.close();
  });

  it('asks for the admin token, then lists the connected proxies with their sync state and the NACK', async () => {
    await page.goto(`${meshpilot.adminUrl}/ui/`);
    await page.waitForSelector('#token-form:not([hidden])');
    await page.fill('#token', 'ui-token');
    await page.click('#token-form button');
    const row = page.locator(`#proxy-table tr[data-proxy="${PRODUCTPAGE}"]`);
    await row.waitFor();
    await eventually(async () => ((await row.locator('.badge').allTextContents()).every((s) => s === 'SYNCED') ? true : undefined), 5000, 'all four SYNCED');
    assert.deepEqual(await row.locator('.badge').allTextContents(), ['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
    assert.equal(await row.locator('td.cert').textContent(), 'unknown', 'this meshpilot runs no CA');
    assert.match((await row.locator('td.cert').getAttribute('title')) ?? '', /runs no CA \(the secure port is off\)/);
    const ratings = page.locator(`#proxy-table tr[data-proxy="${RATINGS}"]`);
    await ratings.waitFor();
    await eventually(async () => ((await ratings.locator('.badge').allTextContents())[3] === 'ERROR' ? true : undefined), 5000, 'ratings RDS ERROR');
    assert.deepEqual((await ratings.locator('.badge').allTextContents()).slice(0, 1), ['NOT SENT']);
    const nack = page.locator('.nack');
    await nack.waitFor();
    assert.match((await nack.textContent()) ?? '', /rejected RDS.*VirtualService default\/reviews http\[0\]/s);
    assert.match((await page.textContent('#push-summary')) ?? '', /2 proxies: 1 synced, 0 stale, 1 rejecting/);
    await screenshot('proxies');
  });

  it('shows services with their endpoints, and the service graph with the 80/20 split and the jason route', async () => {
    await page.click('a[data-tab="services"]');
    await page.locator('#service-table tbody tr').first().waitFor();
    const text = (await page.textContent('#service-table')) ?? '';
    assert.match(text, /reviews\.default/);
    for (const b of backends) assert.ok(text.includes(`${b.host}:${b.port}`), `endpoint ${b.host} shown`);
    await screenshot('services');

    await page.click('a[data-tab="graph"]');
    await page.locator('#graph-view svg .node').first().waitFor();
    const labels = await page.locator('#graph-view .edge-label').allTextContents();
    assert.ok(labels.includes('100% · end-user = jason'), labels.join(' | '));
    assert.ok(labels.includes('80% · default') && labels.includes('20% · default'), labels.join(' | '));
    assert.equal(await page.locator(`#graph-view [data-node="proxy:${PRODUCTPAGE}"]`).count(), 1);
    await screenshot('graph');
  });

  it("shows a proxy's route table with each route's rule", async () => {
    await page.click('a[data-tab="routes"]');
    await page.selectOption('#route-proxy', PRODUCTPAGE);
    await page.locator('#route-table tbody tr td.mono').first().waitFor();
    const rows = await page.locator('#route-table tbody tr').allTextContents();
    assert.equal(rows.length, 2);
    assert.match(rows[0] ?? '', /end-user=jason.*outbound\|9080\|v2\|reviews.*VirtualService default\/reviews http\[0\]/);
    assert.match(rows[1] ?? '', /outbound\|9080\|v1\|reviews.*\(80\).*outbound\|9080\|v3\|reviews.*\(20\).*http\[1\]/);
    await screenshot('routes');
  });

  it('answers the explain form with the route, the rule and the endpoint a real call reaches', async () => {
    const reached = await client.whoami({ 'end-user': 'jason' });
    await page.click('a[data-tab="explain"]');
    await page.selectOption('#explain-proxy', PRODUCTPAGE);
    await page.fill('#explain-authority', LISTENER);
    await page.fill('#explain-path', '/meshpilot.test.Echo/Whoami');
    await page.fill('#explain-method', 'POST');
    await page.fill('#explain-headers', 'end-user: jason');
    await page.click('#explain-form button');
    const summary = page.locator('#explain-summary');
    await summary.waitFor();
    assert.match((await summary.textContent()) ?? '', /VirtualService default\/reviews http\[0\].*outbound\|9080\|v2\|reviews/);
    assert.match((await page.textContent('#explain-result .endpoints')) ?? '', new RegExp(reached.address.replaceAll('.', '\\.')));
    await screenshot('explain');
  });

  it('serves the API documentation at /docs from meshpilot itself', async () => {
    await page.goto(`${meshpilot.adminUrl}/docs`);
    await page.getByText('/debug/explain', { exact: true }).first().waitFor();
    assert.ok((await page.getByText('/debug/preview', { exact: true }).count()) > 0);
    await screenshot('docs');
  });

  it('logged no console error and fetched nothing outside meshpilot', () => {
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreignRequests, []);
  });
});
