// One spelling per IP address: `2001:db8:0::1` and `2001:db8::1` are one address to the kernel.
import { isIPv6 } from 'node:net';

/** IPv6 in its compressed lower-case form (CIDR blocks keep their prefix length); anything else as given. */
export function canonicalIp(address: string): string {
  const slash = address.indexOf('/');
  const ip = slash < 0 ? address : address.slice(0, slash);
  if (!isIPv6(ip)) return address;
  return `${new URL(`http://[${ip}]`).hostname.slice(1, -1)}${slash < 0 ? '' : address.slice(slash)}`;
}
