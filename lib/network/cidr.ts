/**
 * IPv4 addresses and subnets as unsigned 32-bit numbers: parsing with Docker's strictness
 * (a subnet's host bits must be zero), containment, overlap, iteration bounds.
 * @module
 */
import { ValidationError } from '../errors.js';

/** An IPv4 subnet: `base` has no host bits set. */
export interface Subnet {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** `'172.18.0.1'` -> 0xac120001; undefined when not a dotted-quad IPv4 address. */
export function parseIpv4(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The netmask of a prefix length, as an unsigned number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Number of addresses in the subnet (2^(32-prefix)). */
export function sizeOf(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

/** The last address (the broadcast address for prefixes shorter than /31). */
export function lastOf(s: Subnet): number {
  return s.base + sizeOf(s) - 1;
}

export function formatSubnet(s: Subnet): string {
  return `${formatIpv4(s.base)}/${s.prefix}`;
}

/**
 * Parses `'a.b.c.d/n'`. Host bits must be zero, as Docker requires ("it should be
 * 172.18.0.0/16"): a subnet written with an address in it is usually a typo for a gateway.
 * @throws ValidationError naming `option`.
 */
export function parseSubnet(text: unknown, option: string): Subnet {
  if (typeof text !== 'string') throw new ValidationError(option, `must be a subnet in CIDR notation such as "172.18.0.0/16", got ${JSON.stringify(text)}`);
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const addr = m ? parseIpv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 32)) {
    throw new ValidationError(option, `invalid CIDR "${text}": expected an IPv4 subnet such as "172.18.0.0/16"`);
  }
  const base = (addr & maskOf(prefix)) >>> 0;
  if (base !== addr) {
    throw new ValidationError(option, `invalid subnet "${text}": host bits are set, it should be "${formatIpv4(base)}/${prefix}"`);
  }
  return { base, prefix };
}

/** Parses an IPv4 address. @throws ValidationError naming `option`. */
export function parseAddress(text: unknown, option: string): number {
  const n = parseIpv4(text);
  if (n === undefined) throw new ValidationError(option, `must be an IPv4 address such as "172.18.0.2", got ${JSON.stringify(text)}`);
  return n;
}

export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.base && ip <= lastOf(s);
}

/** `inner` lies entirely within `outer`. */
export function within(inner: Subnet, outer: Subnet): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.base);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base <= lastOf(b) && b.base <= lastOf(a);
}

/** The range usable by hosts: without the network and broadcast addresses when there are any. */
export function hostRange(s: Subnet): { first: number; last: number } {
  if (s.prefix >= 31) return { first: s.base, last: lastOf(s) };
  return { first: s.base + 1, last: lastOf(s) - 1 };
}
