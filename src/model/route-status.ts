// The status the Gateway API asks of a route (RouteParentStatus per parent), as computed when
// the route was converted: shown by /debug/configz and analyze, written back by the leader.
import type { SourceRef } from './service.ts';

/** The controller name meshpilot writes into each route parent status it owns. */
export const GATEWAY_CONTROLLER_NAME = 'meshpilot.io/gateway-controller';

export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs';
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** An object reference of the Gateway API (a parentRef, a backendRef); '' is the core group. */
export interface RouteParentRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly sectionName?: string;
}

export interface RouteParentStatus {
  readonly parentRef: RouteParentRef;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

export interface RouteStatus {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly parents: readonly RouteParentStatus[];
}
