// One spelling per IP address: `2001:db8:0::1` and `2001:db8::1` are one address to the kernel.
import { isIPv6 } from 'node:net';

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
