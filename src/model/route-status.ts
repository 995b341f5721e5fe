// The status the Gateway API asks of a route (RouteParentStatus per parent), as computed when
// the route was converted: shown by /debug/configz and analyze, written back by the leader.
import type { SourceRef } from './service.ts';

/** The controller name meshpilot writes into each route parent status it owns. */
export const GATEWAY_CONTROLLER_NAME = 'meshpilot.io/gateway-controller';
/** The `spec.controllerName` of an XMesh that stands for meshpilot's mesh (it gets Accepted and supportedFeatures). */
export const MESH_CONTROLLER_NAME = 'meshpilot.io/mesh-controller';

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

/** A condition of a Gateway, a listener, a GatewayClass or an XMesh. */
export interface GatewayApiCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

export interface ListenerStatus {
  readonly name: string;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly attachedRoutes: number;
  readonly conditions: readonly GatewayApiCondition[];
}

/** The status a Gateway, GatewayClass or XMesh of meshpilot's controller gets: the whole `status` it owns. */
export interface GatewayObjectStatus {
  readonly kind: 'Gateway' | 'GatewayClass' | 'XMesh';
  /** '' for a GatewayClass or an XMesh (cluster-scoped). */
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly status: {
    readonly conditions: readonly GatewayApiCondition[];
    readonly addresses?: readonly { readonly type: string; readonly value: string }[];
    readonly listeners?: readonly ListenerStatus[];
    readonly supportedFeatures?: readonly { readonly name: string }[];
  };
}
