// WireGuard's hash functions (whitepaper §5.4): HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128,
// HMAC = HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s, 64-byte block), and KDF1/2/3 = HKDF (RFC 5869)
// built on that HMAC with an empty info: T0 = HMAC(key, input), Ti = HMAC(T0, T(i-1) ‖ i).
// Handshake-only code: allocation is fine.

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

/** HASH(parts...) = BLAKE2s-256 of the concatenation. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  return blake2s(parts.length === 1 ? parts[0]! : concat(...parts), { dkLen: 32 });
}

/** MAC(key, data) = keyed BLAKE2s with a 16-byte output (mac1, mac2, cookies). */
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return blake2s(data, { key, dkLen: 16 });
}

/** HMAC(key, data) with BLAKE2s-256 (not keyed BLAKE2s: WireGuard's KDF uses the RFC 2104 form). */
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

export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0]!;
}

export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [a, b] = kdf(2, key, input);
  return [a!, b!];
}

export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const [a, b, c] = kdf(3, key, input);
  return [a!, b!, c!];
}
