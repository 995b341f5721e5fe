// /debug/registryz and /debug/endpointz: services as the generators see them, and the
// endpoints each cluster is served.
import type { FastifyInstance } from 'fastify';
import { parseProxy } from '../../model/proxy.ts';
import { assignmentEndpoints } from '../../xds/explain/explain.ts';
import { generate } from '../../xds/generate/index.ts';
import { outboundTargetByName } from '../../xds/generate/outbound.ts';
import { ENDPOINT_TYPE } from '../../xds/type-urls.ts';
import { nullableString, servedEndpoint, stringMap } from '../schemas.ts';
import type { AdminViews } from '../views.ts';

const locality = { type: ['object', 'null'], properties: { region: { type: 'string' }, zone: { type: 'string' }, subZone: { type: 'string' } } } as const;

const registryz = {
  type: 'object',
  properties: {
    pushSequence: { type: 'integer' },
    services: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          hostname: { type: 'string' },
          name: { type: 'string' },
          namespace: { type: 'string' },
          vip: nullableString,
          resolution: nullableString,
          meshExternal: { type: 'boolean' },
          labels: stringMap,
          ports: {
            type: 'array',
            items: { type: 'object', properties: { name: { type: 'string' }, port: { type: 'integer' }, protocol: { type: 'string' }, targetPort: { type: ['integer', 'string', 'null'] } } },
          },
          source: { type: 'object', properties: { origin: { type: 'string' }, location: { type: 'string' } } },
          endpoints: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                address: { type: 'string' },
                port: { type: 'integer' },
                portName: { type: 'string' },
                ready: { type: 'boolean' },
                labels: stringMap,
                locality,
                workload: nullableString,
              },
            },
          },
        },
      },
    },
  },
} as const;

const endpointz = {
  type: 'object',
  properties: {
    pushSequence: { type: 'integer' },
    clusters: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          cluster: { type: 'string' },
          service: { type: 'string' },
          port: { type: 'integer' },
          subset: nullableString,
          subsetLabels: stringMap,
          endpoints: { type: 'array', items: servedEndpoint },
        },
      },
    },
  },
} as const;

/** Any proxy will do: load assignments are the same for every proxy. */
const ANY_PROXY = parseProxy('endpointz');

export function registerRegistryRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/registryz', {
    schema: { summary: 'Every service: hostname, ports with protocol, VIP, labels and endpoints', response: { 200: registryz } },
    handler: () => {
      const push = views.currentPush();
      if (!push) return { services: [] };
      return {
        pushSequence: push.sequence,
        services: push.services.map((service) => ({
          hostname: service.hostname,
          name: service.name,
          namespace: service.namespace,
          vip: service.vip ?? null,
          // ServiceEntry hosts only: how endpoints are found, and whether they run outside the mesh.
          resolution: service.resolution ?? null,
          meshExternal: service.meshExternal ?? false,
          labels: service.labels,
          ports: service.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, targetPort: p.targetPort ?? null })),
          source: service.source,
          endpoints: (push.endpointsByHost.get(service.hostname) ?? []).map((e) => ({
            address: e.address,
            port: e.port,
            portName: e.servicePortName,
            ready: e.ready,
            labels: e.labels,
            locality: e.locality ?? null,
            workload: e.workload ?? null,
          })),
        })),
      };
    },
  });

  app.get('/debug/endpointz', {
    schema: { summary: 'The endpoints each cluster (service port and subset) is served over EDS', response: { 200: endpointz } },
    handler: () => {
      const push = views.currentPush();
      if (!push) return { clusters: [] };
      const targets = outboundTargetByName(push);
      return {
        pushSequence: push.sequence,
        clusters: generate(ENDPOINT_TYPE, push, ANY_PROXY).map((assignment) => {
          const target = targets.get(assignment.name);
          return {
            cluster: assignment.name,
            service: target?.service.hostname ?? '',
            port: target?.port.port ?? 0,
            subset: target?.subset?.name ?? null,
            subsetLabels: target?.subset?.labels ?? {},
            endpoints: assignmentEndpoints(assignment.json),
          };
        }),
      };
    },
  });
}
