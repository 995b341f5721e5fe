// The names Istio gives the pieces of workload identity, shared by the CA, the agent, the
// bootstrap and the generators, so an istio-agent or a stock Istio bootstrap fits meshpilot.

/** The SDS secret holding the workload's certificate and key. */
export const WORKLOAD_SECRET = 'default';
/** The SDS secret holding the trust bundle (the mesh's root certificates). */
export const ROOT_SECRET = 'ROOTCA';
/** The bootstrap cluster Envoy reaches the agent's SDS server through. */
export const SDS_CLUSTER = 'sds-grpc';
/** Where the agent's SDS socket lives in a pod, relative to Envoy's working directory (as Istio). */
export const SDS_SOCKET_PATH = './var/run/secrets/workload-spiffe-uds/socket';
/** The gRPC xDS bootstrap's certificate provider instance the agent's files are watched as. */
export const GRPC_CERT_PROVIDER = 'default';
/** The files the agent writes for proxyless gRPC (and Istio's file-mounted certificates). */
export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';
/** The secure xDS and CA port; 15010 stays plaintext. */
export const SECURE_XDS_PORT = 15012;
/** The audience a workload's token must carry for the CA and the secure xDS port. */
export const CA_TOKEN_AUDIENCE = 'istio-ca';
/** The ConfigMap holding the root certificate in every namespace of the mesh. */
export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
/** Kubernetes Secrets in meshpilot's namespace: a plugged-in CA, and the self-signed root. */
export const PLUGGED_CA_SECRET = 'cacerts';
export const SELF_SIGNED_CA_SECRET = 'meshpilot-ca-secret';
/** The endpoint label that says a workload has an identity and accepts mTLS (auto mTLS). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

/** `spiffe://cluster.local/ns/default/sa/productpage` */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The parts of a workload SPIFFE ID, or undefined when `uri` is not one. */
export function parseSpiffeId(uri: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  return m?.[1] && m[2] && m[3] ? { trustDomain: m[1], namespace: m[2], serviceAccount: m[3] } : undefined;
}
