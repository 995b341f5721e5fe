// What the admin API may read: narrow, read-only views of the running server's parts.
import type { PushContext } from '../model/push-context.ts';
import type { SourceSnapshot } from '../model/store.ts';
import type { PushRecord } from '../push/push-controller.ts';
import type { CertificateAuthority } from '../security/ca.ts';
import type { LeaderElectionState } from '../sources/kube/leader-election.ts';
import type { GatewayDeployerStats } from '../sources/kube/gateway-deployment.ts';
import type { StatusWriterStats } from '../sources/kube/status-writer.ts';
import type { XdsConnection } from '../xds/server/connection.ts';
import type { NackLedger } from './nack-ledger.ts';

export interface AdminViews {
  /** The snapshot proxies are being served from (undefined before the first build). */
  currentPush(): PushContext | undefined;
  lastPush(): PushRecord | undefined;
  connections(): readonly XdsConnection[];
  /** True once the first model is built and the xDS port is bound. */
  ready(): boolean;
  /** What the sources published, merged (the input preview overlays). */
  snapshot?(): SourceSnapshot;
  /** Which resources and rules each current NACK names. */
  nacks?(): NackLedger;
  /** The CA, when the secure port runs (its root and what it issued). */
  certificateAuthority?(): CertificateAuthority | undefined;
  /** Who leads the status Lease and what the status writer did; `why` says why there is none. */
  leaderElection?(): { election: LeaderElectionState | undefined; status: StatusWriterStats | undefined; why: string | undefined; gatewayDeployment?: GatewayDeployerStats | undefined };
}
