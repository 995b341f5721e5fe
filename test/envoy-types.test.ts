// The generators' Envoy message types: current with proto/ and type-urls.ts, and as strict at
// compile time as the converter is at run time (tsc fails if an @ts-expect-error below is accepted).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ENVOY_TYPES_FILE, renderEnvoyTypes } from '../scripts/gen-envoy-types.ts';
import type { Cluster, HttpFilter } from '../src/xds/envoy-types.generated.ts';
import { typed } from '../src/xds/generate/common.ts';
import { encodeProtoJson } from '../src/xds/proto-json.ts';
import { messageType } from '../src/xds/protos.ts';
import { CLUSTER_TYPE, HTTP_CONNECTION_MANAGER_TYPE, messageNameOf, ROUTER_TYPE } from '../src/xds/type-urls.ts';

const encodeCluster = (json: unknown): Uint8Array => encodeProtoJson(messageType(messageNameOf(CLUSTER_TYPE)), json);

describe('Envoy message types for the generators', () => {
  it('the committed file is what proto/ and type-urls.ts give today (else: npm run protos:types)', () => {
    assert.equal(readFileSync(ENVOY_TYPES_FILE, 'utf8'), renderEnvoyTypes(), `${ENVOY_TYPES_FILE} is stale: run npm run protos:types`);
  });

  it('a cluster written to the types encodes', () => {
    const cluster: Cluster = {
      name: 'outbound|9080||reviews.default.svc.cluster.local',
      type: 'EDS',
      connect_timeout: '0.250s',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
      circuit_breakers: { thresholds: [{ max_connections: 4_294_967_295, track_remaining: true }] },
      ring_hash_lb_config: { minimum_ring_size: '1024' },
      metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.default.svc.cluster.local' }] } } },
    };
    assert.ok(encodeCluster(cluster).length > 0);
  });

  it('a misspelled field, enum value or packed field is refused by the compiler and by the converter alike', () => {
    const misspelledField: Cluster = {
      name: 'reviews',
      // @ts-expect-error: Cluster has no conect_timeout
      conect_timeout: '1s',
    };
    assert.throws(() => encodeCluster(misspelledField), /conect_timeout: unknown field of envoy\.config\.cluster\.v3\.Cluster/);

    // @ts-expect-error: LbPolicy has no ROUND_ROBBIN
    const misspelledEnum: Cluster = { name: 'reviews', lb_policy: 'ROUND_ROBBIN' };
    assert.throws(() => encodeCluster(misspelledEnum), /lb_policy: "ROUND_ROBBIN" is not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy/);

    const router: HttpFilter = {
      name: 'envoy.filters.http.router',
      // @ts-expect-error: Router has no supress_envoy_headers
      typed_config: typed(ROUTER_TYPE, { supress_envoy_headers: true }),
    };
    const hcm = typed(HTTP_CONNECTION_MANAGER_TYPE, { stat_prefix: 'x', http_filters: [router] });
    assert.throws(() => encodeProtoJson(messageType('google.protobuf.Any'), hcm), /http_filters\[0\]\.typed_config\.supress_envoy_headers: unknown field/);
  });
});
