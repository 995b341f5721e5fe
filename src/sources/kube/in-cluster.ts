// Whether meshpilot runs in a pod, told without loading the Kubernetes client (which is large,
// and only loaded when the Kubernetes source is used).
import { existsSync } from 'node:fs';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** True inside a pod with a mounted service account, where the in-cluster config applies. */
export function inCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return !!env['KUBERNETES_SERVICE_HOST'] && !!env['KUBERNETES_SERVICE_PORT'] && existsSync(SERVICE_ACCOUNT_TOKEN);
}
