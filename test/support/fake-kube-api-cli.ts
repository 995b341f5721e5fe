// Runs the fake Kubernetes API on its own, loaded with a fixtures directory, and writes a
// kubeconfig for it: `npm run fake-kube`, then `npm start -- --kubeconfig FILE` in another shell.
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds, ROUTE_RULE_CRD } from './fake-kube-api.ts';
import { objectsFromDirectory } from './fake-kube-api-meshpilot.ts';

const program = new Command('fake-kube')
  .description('an in-process Kubernetes API server (list/watch, discovery, Istio CRDs) serving a fixtures directory')
  .addOption(new Option('--host <address>', 'address to bind').default('127.0.0.1'))
  .addOption(new Option('--port <port>', 'port to bind (0: any free port)').default('16443'))
  .addOption(new Option('--fixtures <dir>', 'directory of Kubernetes and Istio YAML to load').default('fixtures/bookinfo'))
  .addOption(new Option('--kubeconfig-out <file>', 'where to write the kubeconfig').default(join(tmpdir(), 'meshpilot-fake-kube.kubeconfig')))
  .addOption(new Option('--istio-versions <list>', 'networking.istio.io versions the Istio CRDs serve').default('v1,v1beta1,v1alpha3'))
  .addOption(new Option('--without-istio', 'serve no Istio CRDs (a cluster without Istio)'))
  .action(async (flags: { host: string; port: string; fixtures: string; kubeconfigOut: string; istioVersions: string; withoutIstio?: boolean }) => {
    const api = await FakeKubeApi.start({ host: flags.host, port: Number(flags.port), bookmarkIntervalMs: 60_000 });
    if (!flags.withoutIstio) {
      const versions = flags.istioVersions.split(',').map((v) => v.trim()).filter(Boolean);
      for (const crd of istioCrds(versions)) api.installCrd(crd);
      api.installCrd(ROUTE_RULE_CRD);
      for (const crd of ISTIO_SECURITY_CRDS) api.installCrd(crd);
    }
    const objects = await objectsFromDirectory(resolve(flags.fixtures));
    let loaded = 0;
    for (const object of objects) {
      try {
        api.apply(object);
        loaded++;
      } catch (error) {
        console.error(`skipped: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const kubeconfig = resolve(flags.kubeconfigOut);
    await api.writeKubeconfig(kubeconfig);
    console.log(`fake Kubernetes API serving ${loaded} objects from ${flags.fixtures} at ${api.url}`);
    console.log(`kubeconfig: ${kubeconfig}`);
    console.log(`next: npm start -- --kubeconfig ${kubeconfig}`);
    const stop = (): void => {
      void api.close().then(() => process.exit(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

await program.parseAsync(process.argv);
