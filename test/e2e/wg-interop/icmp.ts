// Hand-built IPv4 ICMP echo packets for the protocol interop test (no TUN: the test peer puts these
// bytes straight into WireGuard transport messages).

export function checksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ipv4(s: string): Uint8Array {
  return Uint8Array.from(s.split(".").map(Number));
}

function ipString(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** An IPv4 packet carrying an ICMP echo request (type 8) or reply (type 0), checksums filled in. */
export function icmpEcho(kind: "request" | "reply", src: string, dst: string, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const total = 20 + 8 + payload.length;
  const p = new Uint8Array(total);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, total);
  dv.setUint16(4, (id ^ seq) & 0xffff);
  dv.setUint16(6, 0x4000); // don't fragment
  p[8] = 64;
  p[9] = 1; // ICMP
  p.set(ipv4(src), 12);
  p.set(ipv4(dst), 16);
  dv.setUint16(10, checksum(p, 0, 20));
  p[20] = kind === "request" ? 8 : 0;
  dv.setUint16(24, id);
  dv.setUint16(26, seq);
  p.set(payload, 28);
  dv.setUint16(22, checksum(p, 20, 8 + payload.length));
  return p;
}

export interface ParsedEcho {
  kind: "request" | "reply";
  src: string;
  dst: string;
  id: number;
  seq: number;
  payload: Uint8Array;
}

/** Parse an IPv4 ICMP echo from a decrypted transport payload (which may carry padding); null if it is not one or a checksum is wrong. */
export function parseIcmpEcho(b: Uint8Array): ParsedEcho | null {
  if (b.length < 28 || b[0] !== 0x45 || b[9] !== 1) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const total = dv.getUint16(2);
  if (total < 28 || total > b.length) return null;
  if (checksum(b, 0, 20) !== 0 || checksum(b, 20, total - 20) !== 0) return null;
  const type = b[20];
  if ((type !== 0 && type !== 8) || b[21] !== 0) return null;
  return {
    kind: type === 8 ? "request" : "reply",
    src: ipString(b, 12),
    dst: ipString(b, 16),
    id: dv.getUint16(24),
    seq: dv.getUint16(26),
    payload: b.slice(28, total),
  };
}
