// JSON schemas shared by the admin routes: they document the API (OpenAPI at /docs) and fix
// each response's shape (fields not listed are not sent).
export const anyObject = { type: 'object', additionalProperties: true } as const;
export const anyValue = {} as const;
export const nullableString = { type: ['string', 'null'] } as const;
export const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const errorResponse = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', description: 'stable code from the catalogue, e.g. MP_NOT_FOUND' }, message: { type: 'string' } },
    },
  },
} as const;

export const ruleRef = {
  type: 'object',
  required: ['kind', 'namespace', 'name'],
  properties: {
    kind: { type: 'string' },
    namespace: { type: 'string' },
    name: { type: 'string' },
    httpRoute: { type: 'integer', description: 'index in spec.http' },
  },
} as const;

export const issue = {
  type: 'object',
  properties: { code: { type: 'string' }, severity: { type: 'string' }, path: { type: 'string' }, message: { type: 'string' } },
} as const;

export const rejectedResource = {
  type: 'object',
  properties: { name: { type: 'string' }, rules: { type: 'array', items: ruleRef } },
} as const;

export const nackAttribution = {
  type: 'object',
  properties: {
    proxy: { type: 'string' },
    connectionId: { type: 'string' },
    type: { type: 'string' },
    version: { type: 'string' },
    nonce: { type: 'string' },
    at: { type: 'string' },
    message: { type: 'string' },
    named: { type: 'boolean', description: 'true when the NACK text named the resources' },
    resources: { type: 'array', items: rejectedResource },
  },
} as const;

export const proxyQuery = {
  type: 'object',
  required: ['proxyID'],
  properties: { proxyID: { type: 'string', minLength: 1, description: 'node id of a connected proxy (see /debug/syncz)' } },
} as const;

/** Error responses every debug route may give. */
export const errorResponses = { 400: errorResponse, 401: errorResponse, 404: errorResponse, 413: errorResponse } as const;

/** An endpoint as a load assignment serves it. */
export const servedEndpoint = {
  type: 'object',
  properties: { address: { type: 'string' }, port: { type: 'integer' }, locality: { type: 'string' }, healthStatus: { type: 'string' }, weight: { type: 'integer' } },
} as const;

/** A certificate meshpilot's CA issued, as its record keeps it. */
export const issuedCertificate = {
  type: 'object',
  properties: { serial: { type: 'string' }, identity: { type: 'string', description: 'the SPIFFE ID (or the DNS names of a serving certificate)' }, keyType: { type: 'string' }, notBefore: { type: 'string' }, notAfter: { type: 'string' } },
} as const;
