// vine control messages: the payloads inside a decrypted WireGuard transport message whose first byte
// is below 0x40 (IP packets start with nibble 4 or 6). Layouts are documented byte by byte in
// book/src/control-messages.md. Integers are big-endian.
//
// Decoders take untrusted bytes and never throw: anything malformed is `null` and the caller counts a
// named drop. Encoders take trusted arguments and throw RangeError on misuse (a programming error).

/** An IPv4 UDP endpoint: `ip` is the address as an unsigned 32-bit integer. */
export interface Endpoint {
  ip: number;
  port: number;
}

/** Control message types (the first payload byte). */
export const CTRL = {
  CLAIM: 0x01,
  REGISTER: 0x02,
  LOOKUP: 0x03,
  ENDPOINTS: 0x04,
  PROBE: 0x05,
  PROBE_REPLY: 0x06,
  /** Sender → relay; the key names the destination. */
  RELAY: 0x07,
  RELAY_REFUSED: 0x08,
  /** Relay → destination; the key names the original source. */
  RELAY_DELIVER: 0x09,
} as const;

export type ControlType = (typeof CTRL)[keyof typeof CTRL];

/** Most endpoints a REGISTER or ENDPOINTS message carries. */
export const MAX_ENDPOINTS = 8;
/** Bytes of one endpoint on the wire: ip u32, port u16. */
export const ENDPOINT_LEN = 6;
export const PEER_KEY_LEN = 32;

/** ENDPOINTS flags. Other bits are reserved and must be zero. */
export const ENDPOINTS_FLAG_PUNCH_NOW = 0x01;

/** RELAY_REFUSED reasons. */
export const RELAY_REFUSED_REASON = {
  NOT_ADMITTED: 1,
  DESTINATION_UNKNOWN: 2,
  SERVICE_OFF: 3,
  DESTINATION_UNREACHABLE: 4,
} as const;

/** The name logs use for a RELAY_REFUSED reason ("reason_<n>" for one this version does not know). */
export function relayRefusedReasonName(reason: number): string {
  switch (reason) {
    case RELAY_REFUSED_REASON.NOT_ADMITTED:
      return "not_admitted";
    case RELAY_REFUSED_REASON.DESTINATION_UNKNOWN:
      return "destination_not_admitted";
    case RELAY_REFUSED_REASON.SERVICE_OFF:
      return "relay_service_off";
    case RELAY_REFUSED_REASON.DESTINATION_UNREACHABLE:
      return "destination_has_no_session";
    default:
      return `reason_${reason}`;
  }
}

// ---- CLAIM body layout (everything after the type byte). Signed by claims.ts.
export const CLAIM_VERSION = 1;
export const CLAIM_OFF_VERSION = 0;
export const CLAIM_OFF_PUBLIC_KEY = 1;
export const CLAIM_OFF_NETWORK_HASH = 33;
export const CLAIM_OFF_PREFIX_ADDR = 65;
export const CLAIM_OFF_PREFIX_LEN = 69;
export const CLAIM_OFF_ISSUED_AT = 70;
export const CLAIM_OFF_SIGNATURE = 78;
/** Signed part of the body: version through issued_at. */
export const CLAIM_SIGNED_LEN = 78;
export const CLAIM_BODY_LEN = 142;

// ---- Fixed message lengths, type byte included.
export const CLAIM_LEN = 1 + CLAIM_BODY_LEN; // 143
export const LOOKUP_LEN = 1 + 4 + PEER_KEY_LEN; // 37
export const PROBE_LEN = 1 + 4 + 8; // 13
export const PROBE_REPLY_LEN = PROBE_LEN;
export const RELAY_HEADER_LEN = 1 + PEER_KEY_LEN; // 33
export const RELAY_REFUSED_LEN = 1 + PEER_KEY_LEN + 1; // 34
/** Smallest and largest end-to-end WireGuard message a relay envelope carries. */
export const RELAY_INNER_MIN = 32;
export const RELAY_INNER_MAX = 65535;

export interface ClaimFields {
  version: number;
  publicKey: Uint8Array;
  networkHash: Uint8Array;
  prefix: { addr: number; len: number };
  issuedAt: number;
  signature: Uint8Array;
}

export type ControlMessage =
  | ({ type: "claim"; /** The 142-byte body, for verifyClaim. */ bytes: Uint8Array } & ClaimFields)
  | { type: "register"; endpoints: Endpoint[] }
  | { type: "lookup"; requestId: number; target: Uint8Array }
  | { type: "endpoints"; requestId: number; subject: Uint8Array; punchNow: boolean; endpoints: Endpoint[] }
  | { type: "probe"; probeId: number; sentAt: number }
  | { type: "probe_reply"; probeId: number; sentAt: number }
  | { type: "relay"; peer: Uint8Array; inner: Uint8Array }
  | { type: "relay_deliver"; peer: Uint8Array; inner: Uint8Array }
  | { type: "relay_refused"; peer: Uint8Array; reason: number };

const NAMES: Record<number, ControlMessage["type"]> = {
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

/** True when a transport payload starting with `firstByte` is a control message (0x01–0x3f). */
export function isControl(firstByte: number): boolean {
  return firstByte >= 0x01 && firstByte <= 0x3f;
}

/** Name of a control type for logs and counters, e.g. "probe_reply"; unknown types read "unknown_0x2a". */
export function controlTypeName(t: number): string {
  return NAMES[t] ?? `unknown_0x${(t & 0xff).toString(16).padStart(2, "0")}`;
}

// ------------------------------------------------------------------------------------------ decode

/**
 * Decode one control message occupying all of `buf[off, off+len)` (default: the whole buffer).
 * Returns null for anything malformed: unknown type, wrong length, bad counts, reserved bits set,
 * invalid endpoints. Never throws. Returned byte fields are copies.
 */
export function decodeControl(buf: Uint8Array, off = 0, len = buf.length - off): ControlMessage | null {
  if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 1 || off + len > buf.length) return null;
  const end = off + len;
  const body = off + 1;
  switch (buf[off]) {
    case CTRL.CLAIM: {
      if (len !== CLAIM_LEN) return null;
      const fields = decodeClaimBody(buf, body);
      if (!fields) return null;
      return { type: "claim", bytes: buf.slice(body, end), ...fields };
    }
    case CTRL.REGISTER: {
      if (len < 2) return null;
      const count = buf[body]!;
      if (count > MAX_ENDPOINTS || len !== 2 + count * ENDPOINT_LEN) return null;
      const endpoints = readEndpoints(buf, body + 1, count);
      return endpoints ? { type: "register", endpoints } : null;
    }
    case CTRL.LOOKUP: {
      if (len !== LOOKUP_LEN) return null;
      return { type: "lookup", requestId: u32(buf, body), target: buf.slice(body + 4, body + 36) };
    }
    case CTRL.ENDPOINTS: {
      const fixed = 1 + 4 + PEER_KEY_LEN + 2;
      if (len < fixed) return null;
      const flags = buf[body + 36]!;
      const count = buf[body + 37]!;
      if ((flags & ~ENDPOINTS_FLAG_PUNCH_NOW) !== 0) return null;
      if (count > MAX_ENDPOINTS || len !== fixed + count * ENDPOINT_LEN) return null;
      const endpoints = readEndpoints(buf, body + 38, count);
      if (!endpoints) return null;
      return {
        type: "endpoints",
        requestId: u32(buf, body),
        subject: buf.slice(body + 4, body + 36),
        punchNow: (flags & ENDPOINTS_FLAG_PUNCH_NOW) !== 0,
        endpoints,
      };
    }
    case CTRL.PROBE:
    case CTRL.PROBE_REPLY: {
      if (len !== PROBE_LEN) return null;
      const sentAt = u64(buf, body + 4);
      if (sentAt === null) return null;
      return { type: buf[off] === CTRL.PROBE ? "probe" : "probe_reply", probeId: u32(buf, body), sentAt };
    }
    case CTRL.RELAY:
    case CTRL.RELAY_DELIVER: {
      const innerLen = len - RELAY_HEADER_LEN;
      if (innerLen < RELAY_INNER_MIN || innerLen > RELAY_INNER_MAX) return null;
      if (!isWireGuardMessageStart(buf, off + RELAY_HEADER_LEN)) return null;
      return {
        type: buf[off] === CTRL.RELAY ? "relay" : "relay_deliver",
        peer: buf.slice(body, body + PEER_KEY_LEN),
        inner: buf.slice(off + RELAY_HEADER_LEN, end),
      };
    }
    case CTRL.RELAY_REFUSED: {
      if (len !== RELAY_REFUSED_LEN) return null;
      const reason = buf[body + PEER_KEY_LEN]!;
      if (reason < 1 || reason > 4) return null;
      return { type: "relay_refused", peer: buf.slice(body, body + PEER_KEY_LEN), reason };
    }
    default:
      return null;
  }
}

/** Parse a 142-byte CLAIM body at `buf[off..]`; null when short, of another version, or the prefix is not canonical. */
export function decodeClaimBody(buf: Uint8Array, off = 0): ClaimFields | null {
  if (off < 0 || buf.length - off < CLAIM_BODY_LEN) return null;
  const version = buf[off + CLAIM_OFF_VERSION]!;
  if (version !== CLAIM_VERSION) return null;
  const addr = u32(buf, off + CLAIM_OFF_PREFIX_ADDR);
  const plen = buf[off + CLAIM_OFF_PREFIX_LEN]!;
  if (plen > 32 || (addr & ~prefixMask(plen)) >>> 0 !== 0) return null;
  const issuedAt = u64(buf, off + CLAIM_OFF_ISSUED_AT);
  if (issuedAt === null) return null;
  return {
    version,
    publicKey: buf.slice(off + CLAIM_OFF_PUBLIC_KEY, off + CLAIM_OFF_PUBLIC_KEY + 32),
    networkHash: buf.slice(off + CLAIM_OFF_NETWORK_HASH, off + CLAIM_OFF_NETWORK_HASH + 32),
    prefix: { addr, len: plen },
    issuedAt,
    signature: buf.slice(off + CLAIM_OFF_SIGNATURE, off + CLAIM_BODY_LEN),
  };
}

/** WireGuard messages start with type 1–4 followed by three zero bytes. */
function isWireGuardMessageStart(buf: Uint8Array, off: number): boolean {
  const t = buf[off]!;
  return t >= 1 && t <= 4 && buf[off + 1] === 0 && buf[off + 2] === 0 && buf[off + 3] === 0;
}

function readEndpoints(buf: Uint8Array, off: number, count: number): Endpoint[] | null {
  const out: Endpoint[] = [];
  for (let i = 0; i < count; i++) {
    const p = off + i * ENDPOINT_LEN;
    const ep = { ip: u32(buf, p), port: (buf[p + 4]! << 8) | buf[p + 5]! };
    if (!isValidEndpoint(ep)) return null;
    out.push(ep);
  }
  return out;
}

/** A usable unicast destination: address not 0.0.0.0, port not 0. `ip` may be given signed (Int32 views). */
export function isValidEndpoint(ep: Endpoint): boolean {
  return (
    Number.isInteger(ep.ip) &&
    ep.ip >= -0x8000_0000 &&
    ep.ip <= 0xffff_ffff &&
    ep.ip >>> 0 !== 0 &&
    Number.isInteger(ep.port) &&
    ep.port > 0 &&
    ep.port <= 0xffff
  );
}

export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function u32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** u64 as a number; null above 2^53-1 so that echoed values survive a round trip exactly. */
function u64(buf: Uint8Array, off: number): number | null {
  const hi = u32(buf, off);
  if (hi > 0x1fffff) return null;
  return hi * 0x1_0000_0000 + u32(buf, off + 4);
}

// ------------------------------------------------------------------------------------------ encode
// Each `encodeXInto(out, off, ...)` writes the whole message (type byte included) at out[off..] and
// returns its length, so the daemon can encode straight into a packet buffer. `encodeX(...)` returns
// a fresh Uint8Array.

export function encodeClaimInto(out: Uint8Array, off: number, body: Uint8Array): number {
  if (body.length !== CLAIM_BODY_LEN) throw new RangeError(`claim body must be ${CLAIM_BODY_LEN} bytes, got ${body.length}`);
  room(out, off, CLAIM_LEN);
  out[off] = CTRL.CLAIM;
  out.set(body, off + 1);
  return CLAIM_LEN;
}

/** REGISTER with the sender's local candidates (see usableEndpoints for what is kept). */
export function encodeRegisterInto(out: Uint8Array, off: number, candidates: readonly Endpoint[]): number {
  const endpoints = usableEndpoints(candidates);
  const len = 2 + endpoints.length * ENDPOINT_LEN;
  room(out, off, len);
  out[off] = CTRL.REGISTER;
  out[off + 1] = endpoints.length;
  writeEndpoints(out, off + 2, endpoints);
  return len;
}

export function encodeLookupInto(out: Uint8Array, off: number, requestId: number, target: Uint8Array): number {
  checkU32(requestId, "requestId");
  checkKey(target);
  room(out, off, LOOKUP_LEN);
  out[off] = CTRL.LOOKUP;
  putU32(out, off + 1, requestId);
  out.set(target, off + 5);
  return LOOKUP_LEN;
}

/** ENDPOINTS: `candidates` reflexive first (see usableEndpoints); an empty list answers "unknown". */
export function encodeEndpointsInto(
  out: Uint8Array,
  off: number,
  requestId: number,
  subject: Uint8Array,
  punchNow: boolean,
  candidates: readonly Endpoint[],
): number {
  checkU32(requestId, "requestId");
  checkKey(subject);
  const endpoints = usableEndpoints(candidates);
  const len = 1 + 4 + PEER_KEY_LEN + 2 + endpoints.length * ENDPOINT_LEN;
  room(out, off, len);
  out[off] = CTRL.ENDPOINTS;
  putU32(out, off + 1, requestId);
  out.set(subject, off + 5);
  out[off + 37] = punchNow ? ENDPOINTS_FLAG_PUNCH_NOW : 0;
  out[off + 38] = endpoints.length;
  writeEndpoints(out, off + 39, endpoints);
  return len;
}

export function encodeProbeInto(out: Uint8Array, off: number, probeId: number, sentAtMs: number): number {
  return writeProbe(out, off, CTRL.PROBE, probeId, sentAtMs);
}

export function encodeProbeReplyInto(out: Uint8Array, off: number, probeId: number, sentAtMs: number): number {
  return writeProbe(out, off, CTRL.PROBE_REPLY, probeId, sentAtMs);
}

/**
 * RELAY or RELAY_DELIVER envelope around an end-to-end WireGuard message. `type` is CTRL.RELAY
 * (key = destination) or CTRL.RELAY_DELIVER (key = original source).
 */
export function encodeRelayInto(
  out: Uint8Array,
  off: number,
  type: typeof CTRL.RELAY | typeof CTRL.RELAY_DELIVER,
  peerKey: Uint8Array,
  inner: Uint8Array,
): number {
  if (type !== CTRL.RELAY && type !== CTRL.RELAY_DELIVER) throw new RangeError(`not a relay type: ${type}`);
  checkKey(peerKey);
  if (inner.length < RELAY_INNER_MIN || inner.length > RELAY_INNER_MAX) {
    throw new RangeError(`relayed message must be ${RELAY_INNER_MIN}..${RELAY_INNER_MAX} bytes, got ${inner.length}`);
  }
  const len = RELAY_HEADER_LEN + inner.length;
  room(out, off, len);
  out[off] = type;
  out.set(peerKey, off + 1);
  out.set(inner, off + RELAY_HEADER_LEN);
  return len;
}

export function encodeRelayRefusedInto(out: Uint8Array, off: number, peerKey: Uint8Array, reason: number): number {
  checkKey(peerKey);
  if (!Number.isInteger(reason) || reason < 1 || reason > 4) throw new RangeError(`relay refusal reason must be 1..4, got ${reason}`);
  room(out, off, RELAY_REFUSED_LEN);
  out[off] = CTRL.RELAY_REFUSED;
  out.set(peerKey, off + 1);
  out[off + 33] = reason;
  return RELAY_REFUSED_LEN;
}

/** CLAIM message around a body from signClaim(). */
export function encodeClaim(body: Uint8Array): Uint8Array {
  return fresh(CLAIM_LEN, (b) => encodeClaimInto(b, 0, body));
}
export function encodeRegister(endpoints: readonly Endpoint[]): Uint8Array {
  return fresh(2 + usableEndpoints(endpoints).length * ENDPOINT_LEN, (b) => encodeRegisterInto(b, 0, endpoints));
}
export function encodeLookup(requestId: number, target: Uint8Array): Uint8Array {
  return fresh(LOOKUP_LEN, (b) => encodeLookupInto(b, 0, requestId, target));
}
export function encodeEndpoints(requestId: number, subject: Uint8Array, punchNow: boolean, endpoints: readonly Endpoint[]): Uint8Array {
  return fresh(39 + usableEndpoints(endpoints).length * ENDPOINT_LEN, (b) => encodeEndpointsInto(b, 0, requestId, subject, punchNow, endpoints));
}
export function encodeProbe(probeId: number, sentAtMs: number): Uint8Array {
  return fresh(PROBE_LEN, (b) => encodeProbeInto(b, 0, probeId, sentAtMs));
}
export function encodeProbeReply(probeId: number, sentAtMs: number): Uint8Array {
  return fresh(PROBE_LEN, (b) => encodeProbeReplyInto(b, 0, probeId, sentAtMs));
}
export function encodeRelay(type: typeof CTRL.RELAY | typeof CTRL.RELAY_DELIVER, peerKey: Uint8Array, inner: Uint8Array): Uint8Array {
  return fresh(RELAY_HEADER_LEN + inner.length, (b) => encodeRelayInto(b, 0, type, peerKey, inner));
}
export function encodeRelayRefused(peerKey: Uint8Array, reason: number): Uint8Array {
  return fresh(RELAY_REFUSED_LEN, (b) => encodeRelayRefusedInto(b, 0, peerKey, reason));
}

function fresh(len: number, write: (b: Uint8Array) => number): Uint8Array {
  const b = new Uint8Array(len);
  const n = write(b);
  return n === len ? b : b.subarray(0, n);
}

function writeProbe(out: Uint8Array, off: number, type: number, probeId: number, sentAtMs: number): number {
  checkU32(probeId, "probeId");
  if (!Number.isSafeInteger(sentAtMs) || sentAtMs < 0) throw new RangeError(`sentAtMs must be a non-negative safe integer, got ${sentAtMs}`);
  room(out, off, PROBE_LEN);
  out[off] = type;
  putU32(out, off + 1, probeId);
  putU64(out, off + 5, sentAtMs);
  return PROBE_LEN;
}

function writeEndpoints(out: Uint8Array, off: number, endpoints: readonly Endpoint[]): void {
  for (let i = 0; i < endpoints.length; i++) {
    const p = off + i * ENDPOINT_LEN;
    putU32(out, p, endpoints[i]!.ip);
    out[p + 4] = endpoints[i]!.port >>> 8;
    out[p + 5] = endpoints[i]!.port & 0xff;
  }
}

export function putU32(out: Uint8Array, off: number, v: number): void {
  out[off] = v >>> 24;
  out[off + 1] = (v >>> 16) & 0xff;
  out[off + 2] = (v >>> 8) & 0xff;
  out[off + 3] = v & 0xff;
}

export function putU64(out: Uint8Array, off: number, v: number): void {
  putU32(out, off, Math.floor(v / 0x1_0000_0000));
  putU32(out, off + 4, v >>> 0);
}

function room(out: Uint8Array, off: number, len: number): void {
  if (!Number.isInteger(off) || off < 0 || off + len > out.length) {
    throw new RangeError(`buffer too small: need ${len} bytes at offset ${off}, have ${out.length}`);
  }
}
function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} must be a u32, got ${v}`);
}
function checkKey(k: Uint8Array): void {
  if (k.length !== PEER_KEY_LEN) throw new RangeError(`peer key must be ${PEER_KEY_LEN} bytes, got ${k.length}`);
}
/**
 * The endpoints a message carries: invalid ones (0.0.0.0, port 0) skipped, at most MAX_ENDPOINTS kept
 * in order. Lenient on purpose: callers pass registry answers and interface lists as they are.
 */
export function usableEndpoints(eps: readonly Endpoint[]): Endpoint[] {
  const out: Endpoint[] = [];
  for (const ep of eps) {
    if (out.length === MAX_ENDPOINTS) break;
    if (isValidEndpoint(ep)) out.push({ ip: ep.ip >>> 0, port: ep.port });
  }
  return out;
}
