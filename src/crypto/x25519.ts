// X25519 (RFC 7748). The fast path goes through node:crypto (native, ~10× @noble/curves here) with
// raw keys wrapped in their fixed DER prefixes; noble stays as the reference implementation that
// tests compare against, and the fallback if node:crypto refuses a key.
//
// An all-zero shared secret (the peer sent a low-order point) is reported as null, never thrown:
// WireGuard rejects such handshakes, and callers treat null as "drop this message".

import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { x25519 as nobleX25519 } from "@noble/curves/ed25519.js";

export const X25519_KEY_SIZE = 32;

// DER prefixes for raw 32-byte X25519 keys (PKCS#8 private, SPKI public; OID 1.3.101.110).
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

function privateKeyObject(privateKey: Uint8Array) {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: "der", type: "pkcs8" });
}

/** Shared secret; null for a wrong-size key or an all-zero result (low-order public key). */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  if (privateKey.length !== X25519_KEY_SIZE || publicKey.length !== X25519_KEY_SIZE) return null;
  try {
    const pub = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
    const s = new Uint8Array(diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: pub }));
    return isZero(s) ? null : s;
  } catch {
    // OpenSSL refuses to output an all-zero secret; noble tells us which case this is.
    return x25519Noble(privateKey, publicKey);
  }
}

/** Reference implementation (@noble/curves), same contract as x25519(). */
export function x25519Noble(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  if (privateKey.length !== X25519_KEY_SIZE || publicKey.length !== X25519_KEY_SIZE) return null;
  try {
    const s = nobleX25519.getSharedSecret(privateKey, publicKey);
    return isZero(s) ? null : s;
  } catch {
    return null;
  }
}

/** The public key of a (clamped or unclamped) 32-byte private key. */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== X25519_KEY_SIZE) throw new RangeError("x25519: private key must be 32 bytes");
  try {
    const der = createPublicKey(privateKeyObject(privateKey)).export({ format: "der", type: "spki" });
    return new Uint8Array(der.subarray(der.length - X25519_KEY_SIZE));
  } catch {
    return nobleX25519.getPublicKey(privateKey);
  }
}

export function x25519PublicKeyNoble(privateKey: Uint8Array): Uint8Array {
  return nobleX25519.getPublicKey(privateKey);
}

/** A fresh clamped private key and its public key. */
export function generateX25519KeyPair(): X25519KeyPair {
  const privateKey = new Uint8Array(randomBytes(32));
  privateKey[0]! &= 248;
  privateKey[31]! &= 127;
  privateKey[31]! |= 64;
  return { privateKey, publicKey: x25519PublicKey(privateKey) };
}
