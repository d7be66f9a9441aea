// Signed membership claims: "I, Ed25519 identity K, am a member of network N and own prefix P",
// signed by K. A session already proves the peer's X25519 key; the claim binds the identity to the
// overlay prefix it owns, and is checked against the receiver's own allowlist.
//
// Claim body (142 bytes, the CLAIM message minus its type byte; layout in messages.ts):
//   version 1 | ed25519 public key 32 | BLAKE2s-256(network_id) 32 | prefix addr u32 | prefix len u8 |
//   issued_at ms u64 | Ed25519 signature 64 over "vine claim v1" ‖ the 78 bytes before it.

import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.ts";
import { blake2s } from "@noble/hashes/blake2.js";
import {
  CLAIM_BODY_LEN,
  CLAIM_LEN,
  CLAIM_OFF_ISSUED_AT,
  CLAIM_OFF_NETWORK_HASH,
  CLAIM_OFF_PREFIX_ADDR,
  CLAIM_OFF_PREFIX_LEN,
  CLAIM_OFF_PUBLIC_KEY,
  CLAIM_OFF_SIGNATURE,
  CLAIM_OFF_VERSION,
  CLAIM_SIGNED_LEN,
  CLAIM_VERSION,
  CTRL,
  decodeClaimBody,
  prefixMask,
  putU32,
  putU64,
} from "./messages.ts";

const DOMAIN = new TextEncoder().encode("vine claim v1");

/** Claims further than this from the receiver's clock (either way) are "stale". */
export const DEFAULT_CLAIM_MAX_AGE_MS = 24 * 3600_000;

export interface Prefix {
  addr: number;
  len: number;
}

export type ClaimRejection = "malformed" | "bad_signature" | "unknown_identity" | "wrong_network" | "prefix_mismatch" | "stale";

export type ClaimVerdict =
  | { ok: true; publicKey: Uint8Array; prefix: Prefix; issuedAt: number }
  | { ok: false; reason: ClaimRejection };

export interface VerifyClaimOptions {
  /** This host's network_id; the claim must carry its BLAKE2s-256. */
  networkId: string;
  /** The allowlist: the prefix configured for an Ed25519 identity, or null when it is not admitted. */
  lookup: (ed25519Pub: Uint8Array) => { prefix: Prefix } | null;
  nowMs: number;
  /** Default DEFAULT_CLAIM_MAX_AGE_MS (24 h): wide, because hosts' clocks differ; a replay only re-asserts the same binding. */
  maxAgeMs?: number;
}

/** BLAKE2s-256 of the UTF-8 network_id, as carried in claims. */
export function networkHash(networkId: string): Uint8Array {
  return blake2s(new TextEncoder().encode(networkId), { dkLen: 32 });
}

/**
 * Sign a claim body (142 bytes; wrap it with encodeClaim for the wire). `seed` is the 32-byte Ed25519
 * secret key and `publicKey` its public key. Throws on misuse (wrong sizes, a key that is not the
 * seed's, a non-canonical prefix): these are programming errors, not input from the network.
 */
export function signClaim(seed: Uint8Array, publicKey: Uint8Array, networkId: string, prefix: Prefix, issuedAtMs: number): Uint8Array {
  if (seed.length !== 32 || publicKey.length !== 32) throw new RangeError("seed and public key must be 32 bytes");
  const derived = ed25519PublicKey(seed);
  if (!equalBytes(derived, publicKey)) throw new RangeError("public key does not belong to the seed");
  const addr = prefix.addr >>> 0;
  if (!Number.isInteger(prefix.len) || prefix.len < 0 || prefix.len > 32 || (addr & ~prefixMask(prefix.len)) >>> 0 !== 0) {
    throw new RangeError(`not a canonical IPv4 prefix: ${addr}/${prefix.len}`);
  }
  if (!Number.isSafeInteger(issuedAtMs) || issuedAtMs < 0) throw new RangeError(`issuedAtMs must be a non-negative integer, got ${issuedAtMs}`);
  const body = new Uint8Array(CLAIM_BODY_LEN);
  body[CLAIM_OFF_VERSION] = CLAIM_VERSION;
  body.set(publicKey, CLAIM_OFF_PUBLIC_KEY);
  body.set(networkHash(networkId), CLAIM_OFF_NETWORK_HASH);
  putU32(body, CLAIM_OFF_PREFIX_ADDR, addr);
  body[CLAIM_OFF_PREFIX_LEN] = prefix.len;
  putU64(body, CLAIM_OFF_ISSUED_AT, issuedAtMs);
  body.set(ed25519Sign(signedMessage(body), seed), CLAIM_OFF_SIGNATURE);
  return body;
}

/**
 * Check a claim body (or a whole CLAIM message, type byte included). Never throws. Checks, in order:
 * layout (malformed), identity admitted (unknown_identity — before any curve work, so strangers cost
 * little), signature (bad_signature), network (wrong_network), prefix equals the configured one
 * (prefix_mismatch), age (stale).
 */
export function verifyClaim(bytes: Uint8Array, opts: VerifyClaimOptions): ClaimVerdict {
  const body = bytes.length === CLAIM_LEN && bytes[0] === CTRL.CLAIM ? bytes.subarray(1) : bytes;
  if (body.length !== CLAIM_BODY_LEN) return { ok: false, reason: "malformed" };
  const claim = decodeClaimBody(body);
  if (!claim) return { ok: false, reason: "malformed" };
  let known: { prefix: Prefix } | null;
  try {
    known = opts.lookup(claim.publicKey);
  } catch {
    known = null;
  }
  if (!known) return { ok: false, reason: "unknown_identity" };
  if (!ed25519Verify(claim.signature, signedMessage(body), claim.publicKey)) return { ok: false, reason: "bad_signature" };
  if (!equalBytes(claim.networkHash, networkHash(opts.networkId))) return { ok: false, reason: "wrong_network" };
  if (claim.prefix.addr !== known.prefix.addr >>> 0 || claim.prefix.len !== known.prefix.len) return { ok: false, reason: "prefix_mismatch" };
  const maxAge = opts.maxAgeMs ?? DEFAULT_CLAIM_MAX_AGE_MS;
  if (Math.abs(opts.nowMs - claim.issuedAt) > maxAge) return { ok: false, reason: "stale" };
  return { ok: true, publicKey: claim.publicKey, prefix: claim.prefix, issuedAt: claim.issuedAt };
}

function signedMessage(body: Uint8Array): Uint8Array {
  const m = new Uint8Array(DOMAIN.length + CLAIM_SIGNED_LEN);
  m.set(DOMAIN, 0);
  m.set(body.subarray(0, CLAIM_SIGNED_LEN), DOMAIN.length);
  return m;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
