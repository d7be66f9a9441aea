// WireGuard's hash functions (whitepaper §5.4): HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128,
// HMAC = HMAC-BLAKE2s-256, and KDF1/2/3 = HKDF built on that HMAC.

import { blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function hash(...parts: Uint8Array[]): Uint8Array {
  return blake2s(parts.length === 1 ? parts[0]! : concat(...parts), { dkLen: 32 });
}

export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return blake2s(data, { key, dkLen: 16 });
}

export function hmacBlake2s(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(blake2s, key, data);
}

const ONE = new Uint8Array([1]);

/** KDF_n(key, input) → n 32-byte outputs. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmacBlake2s(key, input);
  const t1 = hmacBlake2s(prk, ONE);
  if (n === 1) return [t1];
  const t2 = hmacBlake2s(prk, concat(t1, new Uint8Array([2])));
  if (n === 2) return [t1, t2];
  const t3 = hmacBlake2s(prk, concat(t2, new Uint8Array([3])));
  return [t1, t2, t3];
}
