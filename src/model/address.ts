// One spelling per IP address: `2001:db8:0::1` and `2001:db8::1` are one address to the kernel.
import { BlockList, isIP, isIPv6 } from 'node:net';

/** IPv6 in its compressed lower-case form (CIDR blocks keep their prefix length); anything else as given. */
export function canonicalIp(address: string): string {
  const slash = address.indexOf('/');
  const ip = slash < 0 ? address : address.slice(0, slash);
  if (!isIPv6(ip)) return address;
  return `${new URL(`http://[${ip}]`).hostname.slice(1, -1)}${slash < 0 ? '' : address.slice(slash)}`;
}

/** `host:port` or `[v6]:port` split, or undefined when it is neither (or the port is not 1-65535). */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  return host !== undefined && Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : undefined;
}

export interface Cidr {
  readonly address: string;
  readonly prefixLen: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `10.1.0.0/16`, or a single address (a /32 or /128); undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const lengthText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > max) return undefined;
  return { address: canonicalIp(address), prefixLen: Number(lengthText), family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether `ip` lies inside `cidr` (an IPv4 address never lies in an IPv6 block). */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const version = isIP(ip);
  if (version === 0 || (version === 4) !== (cidr.family === 'ipv4')) return false;
  const block = new BlockList();
  block.addSubnet(cidr.address, cidr.prefixLen, cidr.family);
  return block.check(ip, cidr.family);
}
