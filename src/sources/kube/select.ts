// Which sources a `meshpilot serve` command line asks for. Pure, so every combination is tested.
import { MeshpilotError } from '../../errors.ts';

export type SourceKind = 'file' | 'kube';

export const SOURCE_KINDS: readonly SourceKind[] = ['file', 'kube'];

export interface SourceFlags {
  /** `--source`, when given. */
  readonly source?: SourceKind;
  readonly kubeconfig?: string;
  /** Whether `--config-dir` (or its env var) was given rather than defaulted. */
  readonly configDirGiven: boolean;
  /** Running in a pod with a service account. */
  readonly inCluster: boolean;
}

/**
 * `--source file` reads the directory; `--source kube` watches the cluster, and also the
 * directory when `--config-dir` is given. Without `--source`: a `--kubeconfig`, or running in a
 * pod without `--config-dir`, means kube; anything else means the directory.
 */
export function selectSources(flags: SourceFlags): SourceKind[] {
  if (flags.source === 'file') {
    if (flags.kubeconfig !== undefined) {
      throw new MeshpilotError('MP_CONFIG', '--kubeconfig has no effect with --source file: drop --source file to watch the cluster, or drop --kubeconfig');
    }
    return ['file'];
  }
  const kube = flags.source === 'kube' || flags.kubeconfig !== undefined || (flags.inCluster && !flags.configDirGiven);
  if (!kube) return ['file'];
  return flags.configDirGiven ? ['file', 'kube'] : ['kube'];
}

/** `--namespaces a,b` into a list; empty means all. */
export function parseNamespaces(value: string): string[] {
  return value
    .split(',')
    .map((namespace) => namespace.trim())
    .filter((namespace) => namespace !== '');
}
