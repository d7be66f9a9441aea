// The transport AEAD with WireGuard's nonce (4 zero bytes ‖ 64-bit little-endian counter). Two
// suites: ChaCha20-Poly1305 (WireGuard's, always) and AES-256-GCM (negotiated only between two vine
// hosts, see src/wg/handshake.ts). Two backends with one interface: libcrypto through bun:ffi
// (native speed, probed once) and @noble/ciphers (pure JS, the tested fallback). Each thread
// creates its own instances.

import { readFileSync } from "node:fs";

import { createLibcryptoAead, libcryptoVersion } from "./aead-libcrypto.ts";
import type * as NobleAead from "./aead-noble.ts";

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;

/** Transport suites by wire number: the number is what a handshake offers and chooses. */
export const SUITES = ["chacha20-poly1305", "aes-256-gcm"] as const;
export type Suite = (typeof SUITES)[number];
export const SUITE_CHACHA = 0;
export const SUITE_AES_GCM = 1;
/** The offer bit of each suite beyond ChaCha20-Poly1305 (which every peer supports). */
export const OFFER_AES_GCM = 1 << (SUITE_AES_GCM - 1);

export interface Aead {
  readonly name: "libcrypto" | "noble";
  readonly suite: Suite;
  /** In place: plaintext buf[off, off+len) → ciphertext, tag written at buf[off+len, off+len+16). */
  seal(key: Uint8Array, counter: number, buf: Uint8Array, off: number, len: number): void;
  /** In place: buf[off, off+len) is ciphertext ‖ tag (len ≥ 16); true and plaintext in buf[off, off+len-16) when authentic. */
  open(key: Uint8Array, counter: number, buf: Uint8Array, off: number, len: number): boolean;
  /**
   * Prepare the keys used since the last call for their next packets (libcrypto: set each one's next
   * nonce ahead, off the latency path). A worker calls it before it sleeps; a no-op for noble.
   */
  prime(): void;
  /** Handshake use (small, allocation allowed): seal with associated data. */
  sealAd(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Uint8Array;
  /** Handshake use: open with associated data; null when not authentic. */
  openAd(key: Uint8Array, counter: number, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null;
}

/** Both backends also take an arbitrary 12-byte nonce: for RFC 8439 vectors, not for WireGuard. */
export interface AeadWithNonce extends Aead {
  sealWithNonce(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array;
  openWithNonce(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null;
}

/** VINE_AEAD=noble forces the fallback (for tests and for hosts with a broken libcrypto). */
export function createAead(prefer?: "libcrypto" | "noble", suite: Suite = "chacha20-poly1305"): Aead {
  const want = prefer ?? (process.env.VINE_AEAD === "noble" ? "noble" : "libcrypto");
  if (want === "libcrypto") {
    const a = createLibcryptoAead(suite);
    if (a) return a;
  }
  return nobleBackend().createNobleAead(suite);
}

/**
 * The noble backend is loaded on first use only: importing @noble/ciphers' AES fills ~1.3 MB of
 * lookup tables, which every thread that imported it (the main thread and both workers) would keep
 * for nothing while libcrypto does the work.
 */
function nobleBackend(): typeof NobleAead {
  return require("./aead-noble.ts") as typeof NobleAead;
}

/** One instance per suite, indexed by suite number (what a keypair records). */
export function createAeads(prefer?: "libcrypto" | "noble"): Aead[] {
  return SUITES.map((s) => createAead(prefer, s));
}

/**
 * Is AES-256-GCM worth offering here? Only with the native backend on a CPU with AES instructions:
 * elsewhere it is slower than ChaCha20-Poly1305 (and table-based AES in software leaks timing).
 */
export function aesGcmFast(): boolean {
  if (process.env.VINE_AEAD === "noble" || libcryptoVersion().version === null) return false;
  try {
    return /^flags\s*:.*\baes\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

export function aeadBackendInfo(): { active: "libcrypto" | "noble"; libcrypto: string | null } {
  const v = libcryptoVersion();
  const active = process.env.VINE_AEAD === "noble" || v.version === null ? "noble" : "libcrypto";
  return { active, libcrypto: v.version ?? v.why };
}

/** WireGuard's 12-byte nonce for a counter (exact up to 2^53), written into `out`. */
export function writeNonce(out: Uint8Array, counter: number): void {
  out[0] = out[1] = out[2] = out[3] = 0;
  let c = counter;
  for (let i = 4; i < 12; i++) {
    out[i] = c % 256;
    c = Math.floor(c / 256);
  }
}
