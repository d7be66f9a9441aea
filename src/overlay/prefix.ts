// IPv4 addresses and prefixes as unsigned 32-bit numbers (>>> 0 keeps them unsigned).

export interface Prefix {
  addr: number; // network address, u32, host bits zero
  len: number; // 0..32
  text: string; // canonical "a.b.c.d/len"
}

/** Strict dotted quad ("10.42.0.1"): four decimal octets, no leading zeros. */
export function parseIPv4(s: string): number | null {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(s);
  if (!m) return null;
  const o = m.slice(1, 5).map(Number);
  if (o.some((x) => x > 255)) return null;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function maskOf(len: number): number {
  return len <= 0 ? 0 : len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
}

/** "a.b.c.d/n" with no host bits set → Prefix, or an error text naming what is wrong. */
export function parsePrefix(s: string): Prefix | string {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) return `"${s}" is not a prefix (expected a.b.c.d/len)`;
  const addr = parseIPv4(m[1]!);
  if (addr === null) return `"${m[1]}" is not an IPv4 address`;
  const len = Number(m[2]);
  if (len > 32) return `prefix length ${len} is over 32`;
  const net = (addr & maskOf(len)) >>> 0;
  if (net !== addr) return `"${s}" has host bits set (did you mean ${formatIPv4(net)}/${len}?)`;
  return { addr, len, text: `${formatIPv4(addr)}/${len}` };
}

export function prefixOf(addr: number, len: number): Prefix {
  const net = (addr & maskOf(len)) >>> 0;
  return { addr: net, len, text: `${formatIPv4(net)}/${len}` };
}

export function prefixContains(p: { addr: number; len: number }, ip: number): boolean {
  return ((ip & maskOf(p.len)) >>> 0) === p.addr >>> 0;
}

export function prefixesOverlap(a: { addr: number; len: number }, b: { addr: number; len: number }): boolean {
  const len = Math.min(a.len, b.len);
  return ((a.addr & maskOf(len)) >>> 0) === ((b.addr & maskOf(len)) >>> 0);
}
