// One catalogue of error codes. A code never changes meaning, so users can search for it.

export const ERROR_CODES = {
  MP_YAML_PARSE: 'A file is not valid YAML; nothing from it changed what is served.',
  MP_FILE_REFUSED: 'A file or directory in the config directory was not used: it links outside the directory, is over the size limit, cannot be listed, or became empty while it held objects (those stay served).',
  MP_OBJECT_INVALID: 'An object is missing a required field, has a value of the wrong type or an invalid one, a field or kind Kubernetes does not define, or is defined twice.',
  MP_RULE_INVALID: 'An Istio rule breaks the traffic API schema or its semantics and is not applied.',
  MP_RULE_CONFLICT: 'Two rules claim the same thing; the older one wins, as in Istio.',
  MP_REF_UNKNOWN: 'A rule refers to a service, port, subset, Gateway or credentialName Secret that does not exist (a Gateway server whose Secret is missing is left out of its gateways, the other servers stay); an edit that does so keeps the last good version, and a route broken by another change fails closed.',
  MP_GRPC_DEGRADED: 'Part of a rule is something proxyless gRPC does not implement; gRPC clients get the rest, as the warning says.',
  MP_UNSUPPORTED: 'A valid Istio kind or field that meshpilot does not implement; it has no effect, as the warning says.',
  MP_RULE_WARNING: 'A valid Istio rule Istio warns about (a deprecated field, a selector without labels, a partial wildcard host); it is applied as written, as in Istio.',
  MP_RULE_INEFFECTIVE: 'A valid rule that changes nothing as written (a Sidecar hiding every service, a subset selecting no pod, a VirtualService bound to a Gateway that exposes none of its hosts).',
  MP_SECRET_INVALID: 'A TLS Secret is not usable: a value is not base64 or not PEM, the key does not match the certificate, or it has none of tls.crt/tls.key, cert/key, ca.crt/cacert (an error; the last good version stays served), or its certificate is expired or not yet valid (a warning).',
  MP_SECRET_DENIED: 'A proxy asked for a Secret it may not read: its stream is not authenticated (the plaintext port, without --xds-plaintext-secrets), or the Secret is in another namespace than its verified identity (and no ReferenceGrant lets Gateways of that namespace refer to it); it is sent nothing for that name.',
  MP_XDS_NACK: 'A proxy rejected a resource it was sent.',
  MP_XDS_KEEPALIVE: 'A proxy did not answer a keepalive PING in time; its connection was closed (it reconnects).',
  MP_XDS_BAD_REQUEST: 'A proxy sent a discovery request meshpilot cannot serve.',
  MP_XDS_SESSION_ERROR: 'An xDS connection failed (an HTTP/2 protocol error, a reset); its streams ended and its proxies reconnect. Logged once per connection, counted in meshpilot_xds_session_errors.',
  MP_XDS_SLOW_PROXY: 'A proxy stopped reading its xDS stream while the bytes waiting on such proxies were over --xds-total-buffer; its stream was reset (it reconnects) and counted in meshpilot_xds_slow_streams_reset.',
  MP_XDS_TOO_MANY_PINGS: 'A peer sent PINGs more often than every 15 s with nothing sent between; it was sent GOAWAY ENHANCE_YOUR_CALM (too_many_pings) and its connection closed.',
  MP_CONFIG: 'A command-line flag or environment variable has an invalid value.',
  MP_NOT_FOUND: 'The admin API has no such proxy or object.',
  MP_MESH_CONFIG_INVALID: 'The --mesh-config file has a MeshConfig field with an invalid value.',
  MP_ANALYZE_FAILED: '`meshpilot analyze` found errors in the config directory.',
  MP_BAD_REQUEST: 'An admin API request lacks a required parameter or has a malformed one.',
  MP_UNAUTHORIZED: 'The admin API needs a bearer token (--admin-token) for this path.',
  MP_INTERNAL: 'meshpilot failed to answer an admin request; the log has the details.',
  MP_ADMIN_UNREACHABLE: 'A command could not reach the admin API at --admin.',
  MP_AGENT_UNREACHABLE: '`proxy-config secret --agent URL` could not read the agent\'s status endpoint at URL.',
  MP_NO_CERTIFICATE: '`proxy-config secret` knows no certificate for the proxy: its identity is unknown, meshpilot runs no CA, the CA issued none to the identity, or its agent holds none yet; the message says which.',
  MP_MTLS_CONFLICT: 'A DestinationRule sends plaintext (tls.mode DISABLE) to a server whose PeerAuthentication is STRICT; those requests are refused.',
  MP_SIDECAR_CONFLICT: 'Several Sidecars apply to one workload, or several without workloadSelector share a namespace; the oldest is used, as in Istio.',
  MP_CA_CSR_REFUSED: 'A certificate request was refused and nothing was signed: the CSR is malformed, too large, badly signed, asks for a CA certificate, has a key other than ECDSA P-256 or RSA 2048-4096, not exactly one URI SAN, or a validity outside 0 < TTL <= --ca-max-ttl (INVALID_ARGUMENT).',
  MP_CA_IDENTITY_MISMATCH: 'A caller asked for an identity that is not its own: the CSR\'s SPIFFE ID, or (on 15012) the xDS node\'s namespace, differs from the token\'s or client certificate\'s (PERMISSION_DENIED).',
  MP_CA_UNAUTHENTICATED: 'A call on 15012 carried no valid credentials: no token and no client certificate, a token TokenReview did not accept (expired, forged, wrong audience), a certificate from another CA, or a token without a Kubernetes API to check it (UNAUTHENTICATED).',
  MP_CA_PLUGIN_INVALID: 'The plugged-in CA (--ca-dir or the Secret cacerts) has a file that is missing, malformed, expired, not a CA, not chained to root-cert.pem, or a key that does not match ca-cert.pem; meshpilot does not start.',
  MP_CA_ROOT_UNAVAILABLE: 'The CA root could not be read or stored (the Secret meshpilot-ca-secret, or --ca-root-dir); meshpilot does not start rather than sign with a root only it knows.',
  MP_CA_PUBLISH_FAILED: 'The root certificate could not be written to a namespace\'s ConfigMap istio-ca-root-cert; retried on the next change or interval.',
  MP_LEADER_ELECTION: 'The Lease meshpilot-status-leader could not be read or written (the API server unreachable, or no get/create/update on leases in meshpilot\'s namespace); the replica does not lead until it can, and retries every retry period.',
  MP_STATUS_WRITE_FAILED: 'The leader could not write an Istio object\'s status (the API server unreachable, or no update on its */status); retried with backoff, from 1 s to 30 s.',
  MP_AGENT_CERTIFICATE: '`meshpilot agent` could not get or renew its workload certificate (the CA unreachable or refusing, the token or root file unreadable) or write its files; it retries with backoff and keeps serving the current certificate while it is valid.',
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
