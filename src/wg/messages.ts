// WireGuard's four message layouts (whitepaper §5.4), with offsets and encoders/decoders that work on
// a caller's buffer. All integers are little endian; the three bytes after the type are zero, except
// byte 1 of messages 1 and 2 between two vine hosts: the transport suites offered (a bit mask) and the
// one chosen (a suite number), bound into the handshake hash (src/wg/handshake.ts).
//
//   initiation (1, 148):  type | reserved 3 | sender 4 | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16
//   response   (2,  92):  type | reserved 3 | sender 4 | receiver 4 | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16
//   cookie     (3,  64):  type | reserved 3 | receiver 4 | nonce 24 | cookie 16+16
//   transport  (4, ≥32):  type | reserved 3 | receiver 4 | counter 8 | payload n+16
//
// Decoders of untrusted bytes return null, never throw. Handshake decoders return subarray views
// (no copies); the transport ones are allocation-free for the packet path.

import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  MSG_COOKIE_REPLY,
  MSG_INITIATION,
  MSG_RESPONSE,
  MSG_TRANSPORT,
  RESPONSE_SIZE,
  TAG_SIZE,
  TRANSPORT_HEADER_SIZE,
} from "./constants.ts";

export const INITIATION = { sender: 4, ephemeral: 8, static: 40, timestamp: 88, mac1: 116, mac2: 132 } as const;
export const RESPONSE = { sender: 4, receiver: 8, ephemeral: 12, empty: 44, mac1: 60, mac2: 76 } as const;
export const COOKIE_REPLY = { receiver: 4, nonce: 8, cookie: 32 } as const;
export const TRANSPORT = { receiver: 4, counter: 8, payload: 16 } as const;
/** The smallest transport message: a keepalive (empty payload, tag only). */
export const TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE;

function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function header(b: Uint8Array, off: number, type: number): void {
  b[off] = type;
  b[off + 1] = b[off + 2] = b[off + 3] = 0;
}

/** The largest value byte 1 of messages 1 and 2 may carry: the offer mask / suite number (AES-256-GCM = 1). */
export const SUITE_BYTE_MAX = 1;

/**
 * The message type (1–4) of buf[0, len) when its length fits that type and the reserved bytes are
 * zero (byte 1 of messages 1 and 2 may carry a suite); 0 for anything else. The first look at every
 * datagram.
 */
export function messageType(buf: Uint8Array, len: number): number {
  if (len < 4 || len > buf.length || buf[2] !== 0 || buf[3] !== 0) return 0;
  const b1 = buf[1]!;
  switch (buf[0]) {
    case MSG_INITIATION:
      return len === INITIATION_SIZE && b1 <= SUITE_BYTE_MAX ? MSG_INITIATION : 0;
    case MSG_RESPONSE:
      return len === RESPONSE_SIZE && b1 <= SUITE_BYTE_MAX ? MSG_RESPONSE : 0;
    case MSG_COOKIE_REPLY:
      return len === COOKIE_REPLY_SIZE && b1 === 0 ? MSG_COOKIE_REPLY : 0;
    case MSG_TRANSPORT:
      return len >= TRANSPORT_MIN_SIZE && b1 === 0 ? MSG_TRANSPORT : 0;
    default:
      return 0;
  }
}

export interface Initiation {
  /** Byte 1: the extra transport suites offered (bit mask; 0 from stock WireGuard). */
  suites?: number;
  sender: number;
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface Response {
  /** Byte 1: the transport suite chosen (0 = ChaCha20-Poly1305). */
  suite?: number;
  sender: number;
  receiver: number;
  ephemeral: Uint8Array;
  encryptedEmpty: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface CookieReply {
  receiver: number;
  nonce: Uint8Array;
  encryptedCookie: Uint8Array;
}

export function decodeInitiation(buf: Uint8Array): Initiation | null {
  if (messageType(buf, buf.length) !== MSG_INITIATION) return null;
  const o = INITIATION;
  return {
    suites: buf[1]!,
    sender: readU32(buf, o.sender),
    ephemeral: buf.subarray(o.ephemeral, o.static),
    encryptedStatic: buf.subarray(o.static, o.timestamp),
    encryptedTimestamp: buf.subarray(o.timestamp, o.mac1),
    mac1: buf.subarray(o.mac1, o.mac2),
    mac2: buf.subarray(o.mac2, INITIATION_SIZE),
  };
}

/** Message 1 with zero macs (writeMacs fills them once the rest is final). */
export function encodeInitiation(m: Omit<Initiation, "mac1" | "mac2">, out: Uint8Array = new Uint8Array(INITIATION_SIZE)): Uint8Array {
  const o = INITIATION;
  header(out, 0, MSG_INITIATION);
  out[1] = m.suites ?? 0;
  writeU32(out, o.sender, m.sender);
  out.set(m.ephemeral.subarray(0, 32), o.ephemeral);
  out.set(m.encryptedStatic.subarray(0, 48), o.static);
  out.set(m.encryptedTimestamp.subarray(0, 28), o.timestamp);
  out.fill(0, o.mac1, INITIATION_SIZE);
  return out;
}

export function decodeResponse(buf: Uint8Array): Response | null {
  if (messageType(buf, buf.length) !== MSG_RESPONSE) return null;
  const o = RESPONSE;
  return {
    suite: buf[1]!,
    sender: readU32(buf, o.sender),
    receiver: readU32(buf, o.receiver),
    ephemeral: buf.subarray(o.ephemeral, o.empty),
    encryptedEmpty: buf.subarray(o.empty, o.mac1),
    mac1: buf.subarray(o.mac1, o.mac2),
    mac2: buf.subarray(o.mac2, RESPONSE_SIZE),
  };
}

/** Message 2 with zero macs. */
export function encodeResponse(m: Omit<Response, "mac1" | "mac2">, out: Uint8Array = new Uint8Array(RESPONSE_SIZE)): Uint8Array {
  const o = RESPONSE;
  header(out, 0, MSG_RESPONSE);
  out[1] = m.suite ?? 0;
  writeU32(out, o.sender, m.sender);
  writeU32(out, o.receiver, m.receiver);
  out.set(m.ephemeral.subarray(0, 32), o.ephemeral);
  out.set(m.encryptedEmpty.subarray(0, 16), o.empty);
  out.fill(0, o.mac1, RESPONSE_SIZE);
  return out;
}

export function decodeCookieReply(buf: Uint8Array): CookieReply | null {
  if (messageType(buf, buf.length) !== MSG_COOKIE_REPLY) return null;
  const o = COOKIE_REPLY;
  return { receiver: readU32(buf, o.receiver), nonce: buf.subarray(o.nonce, o.cookie), encryptedCookie: buf.subarray(o.cookie, COOKIE_REPLY_SIZE) };
}

export function encodeCookieReply(m: CookieReply, out: Uint8Array = new Uint8Array(COOKIE_REPLY_SIZE)): Uint8Array {
  const o = COOKIE_REPLY;
  header(out, 0, MSG_COOKIE_REPLY);
  writeU32(out, o.receiver, m.receiver);
  out.set(m.nonce.subarray(0, 24), o.nonce);
  out.set(m.encryptedCookie.subarray(0, 32), o.cookie);
  return out;
}

/** The index the sender of a handshake message chose (offset 4 in messages 1 and 2). */
export function senderIndex(buf: Uint8Array): number {
  return buf.length >= 8 ? readU32(buf, 4) : 0;
}

// ---- transport (hot path: no allocation) ----

/** Write a transport header at buf[off, off+16). Counters are exact up to 2^53. */
export function writeTransportHeader(buf: Uint8Array, off: number, receiver: number, counter: number): void {
  header(buf, off, MSG_TRANSPORT);
  writeU32(buf, off + TRANSPORT.receiver, receiver);
  writeU32(buf, off + TRANSPORT.counter, counter >>> 0);
  writeU32(buf, off + TRANSPORT.counter + 4, Math.floor(counter / 0x1_0000_0000) >>> 0);
}

/** Receiver index of the transport message at buf[off, off+len), or -1 when it is not one. */
export function transportReceiver(buf: Uint8Array, off: number, len: number): number {
  if (len < TRANSPORT_MIN_SIZE || off < 0 || off + len > buf.length) return -1;
  if (buf[off] !== MSG_TRANSPORT || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return -1;
  return readU32(buf, off + TRANSPORT.receiver);
}

/**
 * Counter of the transport message at buf[off, ...) as a number. Counters at or above 2^53 come back
 * as Infinity so that every limit check (REJECT_AFTER_MESSAGES, the replay window) refuses them
 * instead of comparing a rounded value.
 */
export function transportCounter(buf: Uint8Array, off: number): number {
  const lo = readU32(buf, off + TRANSPORT.counter);
  const hi = readU32(buf, off + TRANSPORT.counter + 4);
  return hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + lo;
}
