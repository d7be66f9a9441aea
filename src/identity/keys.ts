// A host's identity: one Ed25519 key pair (signing) whose Montgomery form is its X25519 key
// (WireGuard key agreement), so one secret serves both.
//
// peer_id     = "vine1" + base32(public key ‖ first 2 bytes of SHA-256(public key)), lowercase,
//               RFC 4648 alphabet, no padding: the full key, so one config line authenticates a peer;
//               the checksum catches typos.
// fingerprint = first 8 bytes of SHA-256(public key) as four groups of four hex digits, for humans
//               comparing identities out of band.

import { sha256 } from "@noble/hashes/sha2.js";
import { randomBytes } from "node:crypto";
import { ed25519PublicKey, x25519FromEd25519Public, x25519SecretFromSeed } from "../crypto/ed25519.ts";

export interface Identity {
  seed: Uint8Array; // 32-byte Ed25519 secret seed
  publicKey: Uint8Array; // Ed25519 public key
  peerId: string;
  fingerprint: string;
  x25519Private: Uint8Array;
  x25519Public: Uint8Array;
}

export const PEER_ID_PREFIX = "vine1";
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function unbase32(s: string): Uint8Array | null {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

export function encodePeerId(pub: Uint8Array): string {
  const body = new Uint8Array(34);
  body.set(pub, 0);
  body.set(sha256(pub).subarray(0, 2), 32);
  return PEER_ID_PREFIX + base32(body);
}

/** The Ed25519 public key inside a peer_id, or null when prefix, length, alphabet or checksum is wrong. */
export function decodePeerId(s: string): Uint8Array | null {
  if (typeof s !== "string" || !s.startsWith(PEER_ID_PREFIX) || s.length !== PEER_ID_PREFIX.length + 55) return null;
  const body = unbase32(s.slice(PEER_ID_PREFIX.length));
  if (!body || body.length !== 34) return null;
  const pub = body.subarray(0, 32);
  const sum = sha256(pub);
  if (sum[0] !== body[32] || sum[1] !== body[33]) return null;
  // One spelling per key: the last character carries 3 spare bits, which must be zero.
  if (encodePeerId(pub) !== s) return null;
  return new Uint8Array(pub);
}

export function fingerprintOf(pub: Uint8Array): string {
  const h = Buffer.from(sha256(pub).subarray(0, 8)).toString("hex");
  return `${h.slice(0, 4)}-${h.slice(4, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}`;
}

export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const publicKey = ed25519PublicKey(seed);
  return {
    seed: new Uint8Array(seed),
    publicKey,
    peerId: encodePeerId(publicKey),
    fingerprint: fingerprintOf(publicKey),
    x25519Private: x25519SecretFromSeed(seed),
    x25519Public: x25519FromEd25519Public(publicKey),
  };
}

export function generateIdentity(): Identity {
  return identityFromSeed(new Uint8Array(randomBytes(32)));
}

/** A short, readable form of a peer id for default names and tables. */
export function shortPeerId(id: string): string {
  return id.startsWith(PEER_ID_PREFIX) ? id.slice(0, PEER_ID_PREFIX.length + 8) : id.slice(0, 12);
}
