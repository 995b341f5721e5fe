// One catalogue of error codes. A code never changes meaning, so users can search for it.

export const ERROR_CODES = {
  MP_YAML_PARSE: 'A file is not valid YAML; nothing from it changed what is served.',
  MP_FILE_REFUSED: 'A file or directory in the config directory was not used: it links outside the directory, is over the size limit, cannot be listed, or became empty while it held objects (those stay served).',
  MP_OBJECT_INVALID: 'An object is missing a required field, has a value of the wrong type or an invalid one, a field or kind Kubernetes does not define, or is defined twice.',
  MP_RULE_INVALID: 'An Istio rule breaks the traffic API schema or its semantics and is not applied.',
  MP_RULE_CONFLICT: 'Two rules claim the same thing; the older one wins, as in Istio.',
  MP_REF_UNKNOWN: 'A rule refers to a service, port or subset that does not exist; an edit that does so keeps the last good version, and a route broken by another change fails closed.',
  MP_GRPC_DEGRADED: 'Part of a rule is something proxyless gRPC does not implement; gRPC clients get the rest, as the warning says.',
  MP_UNSUPPORTED: 'A valid Istio kind or field that meshpilot does not implement; it has no effect, as the warning says.',
  MP_RULE_WARNING: 'A valid Istio rule Istio warns about (a deprecated field, a selector without labels, a partial wildcard host); it is applied as written, as in Istio.',
  MP_RULE_INEFFECTIVE: 'A valid rule that changes nothing as written (a Sidecar hiding every service, a subset selecting no pod, a VirtualService bound only to gateways).',
  MP_XDS_NACK: 'A proxy rejected a resource it was sent.',
  MP_XDS_KEEPALIVE: 'A proxy did not answer a keepalive PING in time; its connection was closed (it reconnects).',
  MP_XDS_BAD_REQUEST: 'A proxy sent a discovery request meshpilot cannot serve.',
  MP_XDS_SESSION_ERROR: 'An xDS connection failed (an HTTP/2 protocol error, a reset); its streams ended and its proxies reconnect. Logged once per connection, counted in meshpilot_xds_session_errors.',
  MP_XDS_TOO_MANY_PINGS: 'A peer sent PINGs more often than every 15 s with nothing sent between; it was sent GOAWAY ENHANCE_YOUR_CALM (too_many_pings) and its connection closed.',
  MP_CONFIG: 'A command-line flag or environment variable has an invalid value.',
  MP_NOT_FOUND: 'The admin API has no such proxy or object.',
  MP_MESH_CONFIG_INVALID: 'The --mesh-config file has a MeshConfig field with an invalid value.',
  MP_ANALYZE_FAILED: '`meshpilot analyze` found errors in the config directory.',
  MP_BAD_REQUEST: 'An admin API request lacks a required parameter or has a malformed one.',
  MP_UNAUTHORIZED: 'The admin API needs a bearer token (--admin-token) for this path.',
  MP_INTERNAL: 'meshpilot failed to answer an admin request; the log has the details.',
  MP_ADMIN_UNREACHABLE: 'A command could not reach the admin API at --admin.',
  MP_SIDECAR_CONFLICT: 'Several Sidecars apply to one workload, or several without workloadSelector share a namespace; the oldest is used, as in Istio.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MeshpilotError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(`${code}: ${message}`, options);
    this.name = 'MeshpilotError';
    this.code = code;
  }
}
