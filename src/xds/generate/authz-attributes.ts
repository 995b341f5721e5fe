// Each attribute of Istio's AuthorizationPolicy (a source or operation field, or a `when` key) as
// one Envoy RBAC Permission or Principal per value, as Istio's authz model builds them; undefined
// marks a value the target (Envoy HTTP, Envoy TCP, proxyless gRPC) cannot evaluate.
import { headerOfKey } from '../../model/authorization.ts';
import { parseCidr } from '../../model/address.ts';
import type { CidrRange, Permission, Principal, StringMatcher } from '../envoy-types.generated.ts';

/** What the RBAC filter runs in: an Envoy HTTP connection manager, an Envoy TCP chain, or a gRPC server (gRFC A41). */
export type RbacFlavour = 'http' | 'tcp' | 'grpc';

export type AttributeSide = 'permission' | 'principal';

/** Why a flavour cannot evaluate a value. */
export class Unsupported {
  constructor(readonly reason: string) {}
}

/** An attribute and, for one value, its matcher on its side of the policy, or why the flavour cannot evaluate it. */
export type Attribute =
  | { readonly side: 'permission'; readonly build: (value: string, flavour: RbacFlavour) => Permission | Unsupported }
  | { readonly side: 'principal'; readonly build: (value: string, flavour: RbacFlavour) => Principal | Unsupported };

const HTTP_ONLY = 'is an HTTP attribute, which a TCP connection does not have';

function quoteRegex(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Istio's wildcard values: `*` any (non-empty) value, `x*` a prefix, `*x` a suffix, else exact; `prefix` is prepended to the value. */
export function wildcardMatcher(value: string, prefix = ''): StringMatcher {
  if (value === '*') return { safe_regex: { regex: '.+' } };
  if (value.startsWith('*')) return prefix === '' ? { suffix: value.slice(1) } : { safe_regex: { regex: `${quoteRegex(prefix)}.*${quoteRegex(value.slice(1))}` } };
  if (value.endsWith('*')) return { prefix: `${prefix}${value.slice(0, -1)}` };
  return { exact: `${prefix}${value}` };
}

/** A header matcher: `*` is "present", the rest as wildcardMatcher. */
function headerMatcher(name: string, value: string, ignoreCase = false): Permission & Principal {
  if (value === '*') return { header: { name, present_match: true } };
  return { header: { name, string_match: { ...wildcardMatcher(value), ...(ignoreCase ? ({ ignore_case: true } satisfies StringMatcher) : {}) } } };
}

function cidrRange(value: string): CidrRange {
  const cidr = parseCidr(value);
  // Validation refuses anything else; an unparsable block matches nothing.
  return cidr ? { address_prefix: cidr.address, prefix_len: cidr.prefixLen } : { address_prefix: '0.0.0.0', prefix_len: 32 };
}

/** `cluster.local/ns/default/sa/x` is the certificate's URI SAN `spiffe://cluster.local/ns/default/sa/x`. */
function principalName(value: string): Principal {
  return { authenticated: { principal_name: wildcardMatcher(value, 'spiffe://') } };
}

/** A namespace is the `/ns/NAME/` part of the caller's SPIFFE ID. */
function namespaceName(value: string): Principal {
  const name = value === '*' ? '.*' : value.split('*').map(quoteRegex).join('.*');
  return { authenticated: { principal_name: { safe_regex: { regex: `.*/ns/${name}/.*` } } } };
}

function unsupported(reason: string): Unsupported {
  return new Unsupported(reason);
}

const httpOnly = <M extends Permission | Principal>(flavour: RbacFlavour, build: () => M): M | Unsupported => (flavour === 'tcp' ? unsupported(HTTP_ONLY) : build());

const port = (value: string): Permission => ({ destination_port: Number(value) });

export const SOURCE_ATTRIBUTES: Readonly<Record<string, Attribute>> = {
  principals: { side: 'principal', build: (value) => principalName(value) },
  requestPrincipals: { side: 'principal', build: () => unsupported('request principals need RequestAuthentication (JWT), which meshpilot does not implement') },
  namespaces: { side: 'principal', build: (value) => namespaceName(value) },
  serviceAccounts: { side: 'principal', build: () => unsupported('serviceAccounts is not implemented by meshpilot') },
  trustDomains: { side: 'principal', build: () => unsupported('trustDomains is not implemented by meshpilot') },
  remoteIpBlocks: { side: 'principal', build: (value): Principal => ({ remote_ip: cidrRange(value) }) },
  ipBlocks: { side: 'principal', build: (value): Principal => ({ direct_remote_ip: cidrRange(value) }) },
};

export const OPERATION_ATTRIBUTES: Readonly<Record<string, Attribute>> = {
  hosts: { side: 'permission', build: (value, flavour) => httpOnly(flavour, () => headerMatcher(':authority', value, true)) },
  methods: { side: 'permission', build: (value, flavour) => httpOnly(flavour, () => headerMatcher(':method', value)) },
  paths: {
    side: 'permission',
    build: (value, flavour) =>
      value.includes('{') || value.includes('}')
        ? unsupported('path templates are not implemented by meshpilot')
        : httpOnly(flavour, (): Permission => ({ url_path: { path: wildcardMatcher(value) } })),
  },
  ports: { side: 'permission', build: (value) => port(value) },
};

/** The attribute a `when` key names. */
export function conditionAttribute(key: string): Attribute {
  const header = headerOfKey(key);
  if (header !== undefined) {
    return {
      side: 'principal',
      build: (value, flavour) =>
        flavour === 'grpc' && header.toLowerCase().startsWith('grpc-')
          ? unsupported(`gRPC does not let RBAC match its own grpc- headers (${header})`)
          : httpOnly(flavour, () => headerMatcher(header, value)),
    };
  }
  switch (key) {
    case 'source.ip':
      return SOURCE_ATTRIBUTES['ipBlocks'] as Attribute;
    case 'remote.ip':
      return SOURCE_ATTRIBUTES['remoteIpBlocks'] as Attribute;
    case 'source.namespace':
      return SOURCE_ATTRIBUTES['namespaces'] as Attribute;
    case 'source.principal':
      return SOURCE_ATTRIBUTES['principals'] as Attribute;
    case 'destination.ip':
      return { side: 'permission', build: (value): Permission => ({ destination_ip: cidrRange(value) }) };
    case 'destination.port':
      return { side: 'permission', build: (value) => port(value) };
    case 'connection.sni':
      return {
        side: 'permission',
        build: (value, flavour): Permission | Unsupported => (flavour === 'grpc' ? unsupported('gRPC servers do not match the SNI (requested_server_name)') : { requested_server_name: wildcardMatcher(value) }),
      };
    default:
      return {
        side: key.startsWith('request.auth.') ? 'principal' : 'permission',
        build: () => unsupported(key.startsWith('request.auth.') ? `${key} needs RequestAuthentication (JWT), which meshpilot does not implement` : `${key} is not implemented by meshpilot`),
      };
  }
}
