// /debug/registryz: every service with its ports and endpoints, as the generators see them.
import type { FastifyInstance } from 'fastify';
import type { AdminViews } from '../views.ts';

export function registerRegistryRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/registryz', () => {
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
  });
}
