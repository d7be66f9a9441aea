// Signed membership claims: "I, identity K, am a member of network N and own prefix P", signed
// with K's Ed25519 key. A receiver checks the signature, the network and the prefix against its own
// allowlist; a session alone already proves the X25519 key, the claim binds identity to prefix.
//
// CLAIM (143 bytes): 0x01 | version 1 | ed25519 public key 32 | BLAKE2s-256(network_id) 32 |
//                    prefix addr u32 | prefix len u8 | issued_at ms u64 | signature 64
// The signature covers "vine claim v1" ‖ bytes [1, 79) of the message.

import { ed25519 } from "@noble/curves/ed25519.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { CLAIM_SIZE, CTRL } from "./messages.ts";

const DOMAIN = new TextEncoder().encode("vine claim v1");
const SIGNED_END = 79;

export type ClaimRejection = "malformed" | "bad_signature" | "unknown_identity" | "wrong_network" | "prefix_mismatch" | "stale";

export function networkHash(networkId: string): Uint8Array {
  return blake2s(new TextEncoder().encode(networkId), { dkLen: 32 });
}

function signedBytes(msg: Uint8Array): Uint8Array {
  const b = new Uint8Array(DOMAIN.length + SIGNED_END - 1);
  b.set(DOMAIN, 0);
  b.set(msg.subarray(1, SIGNED_END), DOMAIN.length);
  return b;
}

export function signClaim(seed: Uint8Array, publicKey: Uint8Array, networkId: string, prefix: { addr: number; len: number }, issuedAtMs: number): Uint8Array {
  const m = new Uint8Array(CLAIM_SIZE);
  const dv = new DataView(m.buffer);
  m[0] = CTRL.CLAIM;
  m[1] = 1;
  m.set(publicKey, 2);
  m.set(networkHash(networkId), 34);
  dv.setUint32(66, prefix.addr >>> 0);
  m[70] = prefix.len;
  dv.setUint32(71, Math.floor(issuedAtMs / 2 ** 32) >>> 0);
  dv.setUint32(75, issuedAtMs >>> 0);
  m.set(ed25519.sign(signedBytes(m), seed), SIGNED_END);
  return m;
}

export function verifyClaim(
  bytes: Uint8Array,
  opts: { networkId: string; lookup: (ed25519Pub: Uint8Array) => { prefix: { addr: number; len: number } } | null; nowMs: number; maxAgeMs?: number },
): { ok: true; publicKey: Uint8Array; prefix: { addr: number; len: number }; issuedAt: number } | { ok: false; reason: ClaimRejection } {
  if (bytes.length !== CLAIM_SIZE || bytes[0] !== CTRL.CLAIM || bytes[1] !== 1) return { ok: false, reason: "malformed" };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const publicKey = bytes.slice(2, 34);
  let good = false;
  try {
    good = ed25519.verify(bytes.subarray(SIGNED_END, SIGNED_END + 64), signedBytes(bytes), publicKey);
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: "bad_signature" };
  const known = opts.lookup(publicKey);
  if (!known) return { ok: false, reason: "unknown_identity" };
  const nh = networkHash(opts.networkId);
  for (let i = 0; i < 32; i++) if (nh[i] !== bytes[34 + i]) return { ok: false, reason: "wrong_network" };
  const prefix = { addr: dv.getUint32(66), len: bytes[70]! };
  if (prefix.addr !== known.prefix.addr >>> 0 || prefix.len !== known.prefix.len) return { ok: false, reason: "prefix_mismatch" };
  const issuedAt = dv.getUint32(71) * 2 ** 32 + dv.getUint32(75);
  const maxAge = opts.maxAgeMs ?? 24 * 3600_000;
  if (Math.abs(opts.nowMs - issuedAt) > maxAge) return { ok: false, reason: "stale" };
  return { ok: true, publicKey, prefix, issuedAt };
}
