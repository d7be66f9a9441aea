// vine control messages: carried inside WireGuard transport messages, told apart from IP packets by
// their first byte (0x01–0x3f; IPv4/IPv6 start with 0x4_/0x6_). Integers are big-endian. Decoders
// return null for anything malformed and never throw.
//
// The relay envelopes (RELAY 0x07, RELAY_DELIVER 0x09) are handled on the packet path in
// src/dataplane/engine.ts; they are described here for completeness.

export const CTRL = {
  CLAIM: 0x01,
  REGISTER: 0x02,
  LOOKUP: 0x03,
  ENDPOINTS: 0x04,
  PROBE: 0x05,
  PROBE_REPLY: 0x06,
  RELAY: 0x07,
  RELAY_REFUSED: 0x08,
  RELAY_DELIVER: 0x09,
} as const;

export interface Endpoint {
  ip: number;
  port: number;
}

export const CLAIM_SIZE = 1 + 1 + 32 + 32 + 4 + 1 + 8 + 64; // 143
export const MAX_ENDPOINTS = 8;

export type ControlMessage =
  | { type: "claim"; bytes: Uint8Array }
  | { type: "register"; endpoints: Endpoint[] }
  | { type: "lookup"; requestId: number; target: Uint8Array }
  | { type: "endpoints"; requestId: number; subject: Uint8Array; punch: boolean; endpoints: Endpoint[] }
  | { type: "probe"; probeId: number; sentAt: number }
  | { type: "probe_reply"; probeId: number; sentAt: number }
  | { type: "relay_refused"; peer: Uint8Array; reason: number };

const NAMES: Record<number, string> = {
  [CTRL.CLAIM]: "claim",
  [CTRL.REGISTER]: "register",
  [CTRL.LOOKUP]: "lookup",
  [CTRL.ENDPOINTS]: "endpoints",
  [CTRL.PROBE]: "probe",
  [CTRL.PROBE_REPLY]: "probe_reply",
  [CTRL.RELAY]: "relay",
  [CTRL.RELAY_REFUSED]: "relay_refused",
  [CTRL.RELAY_DELIVER]: "relay_deliver",
};

export function isControl(firstByte: number): boolean {
  return firstByte >= 0x01 && firstByte <= 0x3f;
}

export function controlTypeName(t: number): string {
  return NAMES[t] ?? `unknown_${t}`;
}

export const RELAY_REFUSED_REASONS: Record<number, string> = {
  1: "not_admitted",
  2: "destination_unknown",
  3: "relay_service_off",
  4: "destination_unreachable",
};

// ------------------------------------------------------------------ decode

export function decodeControl(b: Uint8Array): ControlMessage | null {
  if (b.length < 1) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (b[0]) {
    case CTRL.CLAIM:
      return b.length === CLAIM_SIZE && b[1] === 1 ? { type: "claim", bytes: b.slice() } : null;
    case CTRL.REGISTER: {
      const eps = readEndpoints(b, dv, 1);
      return eps && 2 + eps.length * 6 === b.length ? { type: "register", endpoints: eps } : null;
    }
    case CTRL.LOOKUP:
      return b.length === 37 ? { type: "lookup", requestId: dv.getUint32(1), target: b.slice(5, 37) } : null;
    case CTRL.ENDPOINTS: {
      if (b.length < 39 || (b[37]! & 0xfe) !== 0) return null;
      const eps = readEndpoints(b, dv, 38);
      if (!eps || 39 + eps.length * 6 !== b.length) return null;
      return { type: "endpoints", requestId: dv.getUint32(1), subject: b.slice(5, 37), punch: (b[37]! & 1) === 1, endpoints: eps };
    }
    case CTRL.PROBE:
    case CTRL.PROBE_REPLY: {
      if (b.length !== 13) return null;
      const sentAt = dv.getUint32(5) * 2 ** 32 + dv.getUint32(9);
      return { type: b[0] === CTRL.PROBE ? "probe" : "probe_reply", probeId: dv.getUint32(1), sentAt };
    }
    case CTRL.RELAY_REFUSED:
      return b.length === 34 && b[33]! >= 1 && b[33]! <= 4 ? { type: "relay_refused", peer: b.slice(1, 33), reason: b[33]! } : null;
    default:
      return null;
  }
}

function readEndpoints(b: Uint8Array, dv: DataView, off: number): Endpoint[] | null {
  if (off >= b.length) return null;
  const n = b[off]!;
  if (n > MAX_ENDPOINTS || off + 1 + n * 6 > b.length) return null;
  const out: Endpoint[] = [];
  for (let i = 0; i < n; i++) {
    const o = off + 1 + i * 6;
    const port = dv.getUint16(o + 4);
    if (port === 0) return null;
    out.push({ ip: dv.getUint32(o), port });
  }
  return out;
}

// ------------------------------------------------------------------ encode

function writeEndpoints(b: Uint8Array, dv: DataView, off: number, eps: Endpoint[]): void {
  const n = Math.min(eps.length, MAX_ENDPOINTS);
  b[off] = n;
  for (let i = 0; i < n; i++) {
    dv.setUint32(off + 1 + i * 6, eps[i]!.ip >>> 0);
    dv.setUint16(off + 5 + i * 6, eps[i]!.port);
  }
}

export function encodeClaim(claimBytes: Uint8Array): Uint8Array {
  return claimBytes; // signClaim already produces the full message (type byte included)
}

export function encodeRegister(eps: Endpoint[]): Uint8Array {
  const n = Math.min(eps.length, MAX_ENDPOINTS);
  const b = new Uint8Array(2 + n * 6);
  b[0] = CTRL.REGISTER;
  writeEndpoints(b, new DataView(b.buffer), 1, eps);
  return b;
}

export function encodeLookup(requestId: number, target: Uint8Array): Uint8Array {
  const b = new Uint8Array(37);
  b[0] = CTRL.LOOKUP;
  new DataView(b.buffer).setUint32(1, requestId >>> 0);
  b.set(target.subarray(0, 32), 5);
  return b;
}

export function encodeEndpoints(requestId: number, subject: Uint8Array, punch: boolean, eps: Endpoint[]): Uint8Array {
  const n = Math.min(eps.length, MAX_ENDPOINTS);
  const b = new Uint8Array(39 + n * 6);
  const dv = new DataView(b.buffer);
  b[0] = CTRL.ENDPOINTS;
  dv.setUint32(1, requestId >>> 0);
  b.set(subject.subarray(0, 32), 5);
  b[37] = punch ? 1 : 0;
  writeEndpoints(b, dv, 38, eps);
  return b;
}

function encodeProbeLike(type: number, probeId: number, sentAt: number): Uint8Array {
  const b = new Uint8Array(13);
  const dv = new DataView(b.buffer);
  b[0] = type;
  dv.setUint32(1, probeId >>> 0);
  dv.setUint32(5, Math.floor(sentAt / 2 ** 32) >>> 0);
  dv.setUint32(9, sentAt >>> 0);
  return b;
}

export function encodeProbe(probeId: number, sentAt: number): Uint8Array {
  return encodeProbeLike(CTRL.PROBE, probeId, sentAt);
}

export function encodeProbeReply(probeId: number, sentAt: number): Uint8Array {
  return encodeProbeLike(CTRL.PROBE_REPLY, probeId, sentAt);
}

export function encodeRelayRefused(peer: Uint8Array, reason: number): Uint8Array {
  const b = new Uint8Array(34);
  b[0] = CTRL.RELAY_REFUSED;
  b.set(peer.subarray(0, 32), 1);
  b[33] = reason;
  return b;
}
