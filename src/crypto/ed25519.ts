// Ed25519 (RFC 8032): identities sign claims and snapshots, and derive their X25519 secret from the
// same seed. The fast path goes through node:crypto (native) with raw keys wrapped in their fixed DER
// prefixes; @noble/curves stays as the reference implementation that tests compare against, and the
// fallback if node:crypto refuses a key.
//
// Why not noble on the daemon's path: its first signature builds precomputed tables of base-point
// multiples out of BigInts and JIT-compiles the field arithmetic, about 10 MB of heap and code that
// an idle daemon then keeps for good — most of what it held beyond the runtime itself. The native
// path builds nothing, and signs and verifies ~10× faster (26 vs 287 µs, 44 vs 448 µs here).
//
// Verification is strict on encodings (a signature with s ≥ L, or whose R is not the canonical
// encoding of the recomputed point, fails) in both implementations; crafted signatures built on
// small-order points may be judged differently by the two (cofactorless native check, cofactored
// noble check). That changes nothing here: signatures are only checked against admitted identities'
// keys (allowed_peers, a snapshot's signer), which are real key pairs, and for those only the holder
// of the secret can make a signature that either accepts.

import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";

export const ED25519_SEED_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;

// DER prefixes for raw 32-byte Ed25519 keys (PKCS#8 private, SPKI public; OID 1.3.101.112).
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** The seed as a node:crypto key; null if node:crypto refuses it (then noble does the work). */
function nativePrivateKey(seed: Uint8Array): KeyObject | null {
  if (seed.length !== ED25519_SEED_SIZE) throw new RangeError("ed25519: a seed is 32 bytes");
  try {
    return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  } catch {
    return null;
  }
}

/** The public key of a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const key = nativePrivateKey(seed);
  if (key === null) return ed25519.getPublicKey(seed);
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** The 64-byte signature of `message` by `seed` (deterministic: the same as noble's). */
export function ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  const key = nativePrivateKey(seed);
  if (key === null) return ed25519.sign(message, seed);
  return new Uint8Array(sign(null, message, key));
}

/** Whether `signature` is `publicKey`'s signature of `message`. Never throws. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_SIZE || publicKey.length !== 32) return false;
  let key;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
  } catch {
    return ed25519VerifyNoble(signature, message, publicKey);
  }
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** Reference implementation (@noble/curves, RFC 8032 encodings), same contract as ed25519Verify(). */
export function ed25519VerifyNoble(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false; // a public key that is not a curve point
  }
}

/** The X25519 secret of an Ed25519 seed: the clamped low half of SHA-512(seed), as RFC 8032 derives its scalar. */
export function x25519SecretFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== ED25519_SEED_SIZE) throw new RangeError("ed25519: a seed is 32 bytes");
  const s = new Uint8Array(createHash("sha512").update(seed).digest().subarray(0, 32));
  s[0]! &= 248;
  s[31]! &= 127;
  s[31]! |= 64;
  return s;
}

/**
 * The X25519 public key of an Ed25519 public key (the birational map u = (1 + y) / (1 − y)). Throws
 * when the bytes are not a curve point. One field inversion: noble does it without its tables.
 */
export function x25519FromEd25519Public(publicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(publicKey);
}
