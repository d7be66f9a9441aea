// X25519. The fast path goes through node:crypto (native, ~10× @noble/curves here); noble stays as
// the reference implementation that tests compare against.

import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { x25519 as nobleX25519 } from "@noble/curves/ed25519.js";

// DER prefixes for raw 32-byte X25519 keys (PKCS#8 private, SPKI public).
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

/** Shared secret, or null for an all-zero result (a low-order public key: WireGuard rejects it). */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  try {
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: "der", type: "pkcs8" });
    const pub = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
    const s = new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub }));
    return isZero(s) ? null : s;
  } catch {
    return x25519Noble(privateKey, publicKey);
  }
}

export function x25519Noble(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  try {
    const s = nobleX25519.getSharedSecret(privateKey, publicKey);
    return isZero(s) ? null : s;
  } catch {
    return null;
  }
}

export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  return nobleX25519.getPublicKey(privateKey);
}

export function generateX25519KeyPair(): X25519KeyPair {
  const privateKey = new Uint8Array(randomBytes(32));
  privateKey[0]! &= 248;
  privateKey[31]! &= 127;
  privateKey[31]! |= 64;
  return { privateKey, publicKey: x25519PublicKey(privateKey) };
}
