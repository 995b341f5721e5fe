// A cluster's DNS (what CoreDNS answers for Services) on a FakeKubeApi: `<service>.<namespace>.svc.
// cluster.local` is the Service's cluster IP, or its ready endpoints' addresses when headless. It
// listens on UDP on the pods' bridge; pods find it through the resolv.conf `resolvConf` writes
// for them (PodNetwork.addPod's `resolvConf`).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { FakeKubeApi } from './fake-kube-api.ts';

export const CLUSTER_DOMAIN = 'cluster.local';
/** `<service>.<namespace>.svc.cluster.local`. */
const SERVICE_NAME = new RegExp(`^([a-z0-9-]+)\\.([a-z0-9-]+)\\.svc\\.${CLUSTER_DOMAIN.replace('.', '\\.')}$`);
const TYPE_A = 1;
const CLASS_IN = 1;
const TTL_SECONDS = 5;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {});
const list = (value: unknown): Fields[] => (Array.isArray(value) ? value.map(fields) : []);
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

interface Question {
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
  /** Where the question ends in the query. */
  readonly end: number;
}

/** The one question of a query (a name of labels, no compression in questions), or undefined if malformed. */
export function parseQuestion(query: Buffer): Question | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = query[offset];
    if (length === undefined || length > 63) return undefined;
    offset++;
    if (length === 0) break;
    if (offset + length > query.length) return undefined;
    labels.push(query.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > query.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(offset), qclass: query.readUInt16BE(offset + 2), end: offset + 4 };
}

/** The answer to `query`: its question echoed, with A records for `addresses`, or the error code. */
export function answer(query: Buffer, question: Question | undefined, result: { addresses: readonly string[] } | { rcode: number }): Buffer {
  const questionBytes = question ? query.subarray(12, question.end) : Buffer.alloc(0);
  const records = 'addresses' in result && question?.type === TYPE_A ? result.addresses : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.length >= 2 ? query.readUInt16BE(0) : 0, 0);
  const recursionDesired = query.length >= 3 ? (query[2] ?? 0) & 0x01 : 0;
  // QR, opcode 0, AA (this server is the zone's authority), RD as asked; RA; the code.
  header[2] = 0x80 | 0x04 | recursionDesired;
  header[3] = 0x80 | ('rcode' in result ? result.rcode : 0);
  header.writeUInt16BE(question ? 1 : 0, 4);
  header.writeUInt16BE(records.length, 6);
  const answers = records.map((address) => {
    const record = Buffer.alloc(16);
    // A pointer to the question's name at offset 12.
    record.writeUInt16BE(0xc00c, 0);
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(TTL_SECONDS, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => (record[12 + i] = Number(octet)));
    return record;
  });
  return Buffer.concat([header, questionBytes, ...answers]);
}

export class ClusterDns {
  private constructor(
    readonly api: FakeKubeApi,
    readonly address: string,
    readonly socket: Socket,
  ) {}

  get port(): number {
    return this.socket.address().port;
  }

  /** Listens on `address`, port 53 (what a resolv.conf can name) unless `port` says otherwise. */
  static async start(api: FakeKubeApi, address: string, port = 53): Promise<ClusterDns> {
    const socket = createSocket('udp4');
    const dns = new ClusterDns(api, address, socket);
    socket.on('message', (query: Buffer, from: RemoteInfo) => {
      socket.send(dns.#respond(query), from.port, from.address);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return dns;
  }

  /** The addresses of a cluster name, or undefined for a name the cluster does not have. */
  lookup(name: string): readonly string[] | undefined {
    const match = SERVICE_NAME.exec(name);
    if (!match) return undefined;
    const [, serviceName = '', namespace = ''] = match;
    const service = this.api.get('Service', namespace, serviceName);
    if (!service) return undefined;
    const clusterIp = text(fields(service['spec'])['clusterIP']);
    if (clusterIp !== '' && clusterIp !== 'None') return [clusterIp];
    const addresses = this.api
      .list('EndpointSlice', namespace)
      .filter((slice) => fields(fields(slice['metadata'])['labels'])['kubernetes.io/service-name'] === serviceName)
      .flatMap((slice) => list(slice['endpoints']).filter((e) => fields(e['conditions'])['ready'] !== false))
      .flatMap((endpoint) => (Array.isArray(endpoint['addresses']) ? endpoint['addresses'].map(text) : []));
    return [...new Set(addresses)];
  }

  #respond(query: Buffer): Buffer {
    const question = parseQuestion(query);
    if (!question || question.qclass !== CLASS_IN) return answer(query, question, { rcode: RCODE_FORMERR });
    const addresses = this.lookup(question.name);
    // A name that exists answers every type, with records only for A (an AAAA query gets none: IPv4 only here).
    return answer(query, question, addresses ? { addresses } : { rcode: RCODE_NXDOMAIN });
  }

  /** What a pod of `namespace` resolves with: this server, Kubernetes' search path and ndots. */
  resolvConf(namespace: string): string {
    const search = [`${namespace}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN];
    return `nameserver ${this.address}\nsearch ${search.join(' ')}\noptions ndots:5\n`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => { resolve(); }));
  }
}
