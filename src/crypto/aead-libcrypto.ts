// ChaCha20-Poly1305 or AES-256-GCM through libcrypto (OpenSSL 3) with bun:ffi and no C shim: four
// calls per packet, in place.
//
// Key schedules: each transport key (a fixed place in the data plane's shared key table) gets its
// own cipher context, initialised with the key once; a packet then only sets the nonce. For
// AES-GCM that halves the cost of a packet (the key expansion and GHASH tables are not redone).
// The context remembers the key bytes it was set up with, so a key slot reused by a new session
// is noticed (32-byte compare) and the context re-keyed.
//
// Nonces set ahead: setting the nonce (EVP_*Init_ex) is the costliest of a packet's calls when the
// thread has slept — 8–17 µs of OpenSSL's cipher dispatch with cold caches, measured in C, against
// ~0.3 µs warm. So each context used since the last prime() is given its next counter's nonce
// there, while warm: the worker calls prime() after sending, before it sleeps in poll(). A packet
// whose counter is the one prepared skips the call; any other counter (the other worker took it,
// a packet arrived out of order) sets its nonce as before. Same number of calls under load.
//
// Pointers: bun:ffi's ptr() works on views of a SharedArrayBuffer as well as an ArrayBuffer (checked
// by test/unit/crypto-aead.test.ts), so session keys can stay in the data plane's shared tables and be
// passed directly. The base address of each backing buffer is taken once (on a fresh full view, after
// `.buffer` has been touched, so the engine cannot move the storage any more) and cached in a WeakMap;
// a packet costs two WeakMap lookups and no allocation.
//
// On a failed open() the bytes of buf[off, off+len-16) are unspecified (OpenSSL decrypts before it
// verifies the tag); callers drop the packet anyway.

import { ptr, type Pointer } from "bun:ffi";
import { EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG, libcrypto } from "../../ffi/libcrypto.ts";
import { type AeadWithNonce, KEY_SIZE, type Suite, TAG_SIZE, writeNonce } from "./aead.ts";

/** Associated data in the handshake is a 32-byte hash; this bounds what the scratch area holds. */
const AD_MAX = 128;
/** Cached key contexts per direction; past this (only tests make that many keys) all are dropped. */
const MAX_KEY_CONTEXTS = 1024;
/** Counters past this are not prepared ahead (writeNonce is exact up to 2^53). */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER - 1;

/** Contexts prime() prepares at most per call (a worker uses a few: its peers' keys in flight). */
const MAX_PRIMED = 64;

/** A cipher context set up for one key, in one direction. */
interface KeyContext {
  ctx: Pointer;
  key: Uint8Array; // the key bytes the context was initialised with
  encrypt: boolean;
  /** The counter whose nonce the context is set up for (-1: none; a packet consumes it). */
  ready: number;
  /** The counter prime() prepares: the one after the last packet's. */
  next: number;
  /** Listed for the next prime(). */
  listed: boolean;
}

export function libcryptoVersion(): { version: string | null; why: string | null } {
  const { lib, why } = libcrypto();
  if (!lib) return { version: null, why };
  return { version: String(lib.OpenSSL_version(0)), why: null };
}

export function createLibcryptoAead(suite: Suite = "chacha20-poly1305"): AeadWithNonce | null {
  const { lib } = libcrypto();
  if (!lib) return null;
  const ctx = lib.EVP_CIPHER_CTX_new();
  const cipher = suite === "aes-256-gcm" ? lib.EVP_aes_256_gcm() : lib.EVP_chacha20_poly1305();
  if (!ctx || !cipher) return null;

  // Scratch: nonce (12), the out-length int (4), and room for a handshake's key (32) and associated
  // data (up to 128), in one long-lived buffer whose pointer is taken once. Native code must never
  // read a temporary: a pointer is a plain number, so nothing would keep a temporary's memory alive
  // while OpenSSL reads it (the GC may free it mid-call).
  const scratchAb = new ArrayBuffer(16 + 16 + KEY_SIZE + AD_MAX);
  const scratch = new Uint8Array(scratchAb);
  const nonce = new Uint8Array(scratchAb, 0, 12);
  const base = ptr(scratchAb);
  const noncePtr = base;
  const outlPtr = (base + 16) as Pointer;
  const keyPtr = (base + 32) as Pointer;
  const adPtr = (base + 32 + KEY_SIZE) as Pointer;
  const stage = (key: Uint8Array, ad: Uint8Array): void => {
    scratch.set(key, 32);
    scratch.set(ad, 32 + KEY_SIZE);
  };

  const bases = new WeakMap<ArrayBufferLike, number>();
  const addr = (a: Uint8Array, off: number): Pointer => {
    const buffer = a.buffer;
    let p = bases.get(buffer);
    if (p === undefined) {
      p = ptr(new Uint8Array(buffer));
      bases.set(buffer, p);
    }
    return (p + a.byteOffset + off) as Pointer;
  };

  // Transport contexts by key address, one map per direction; those used since the last prime().
  const sealContexts = new Map<Pointer, KeyContext>();
  const openContexts = new Map<Pointer, KeyContext>();
  const toPrime: KeyContext[] = [];
  let primeCount = 0;
  /** Set the scratch nonce on a context; with `key`, (re-)key it first. */
  const init = (kc: KeyContext, key: Pointer | null): boolean => {
    const c = key === null ? null : cipher;
    return (kc.encrypt ? lib.EVP_EncryptInit_ex(kc.ctx, c, null, key, noncePtr) : lib.EVP_DecryptInit_ex(kc.ctx, c, null, key, noncePtr)) === 1;
  };
  /** The context for `key`, set up for `counter`, whose nonce is already in the scratch area. */
  const keyContext = (contexts: Map<Pointer, KeyContext>, key: Uint8Array, encrypt: boolean, counter: number): Pointer | null => {
    const at = addr(key, 0);
    let kc = contexts.get(at);
    if (kc === undefined) {
      if (contexts.size >= MAX_KEY_CONTEXTS) {
        for (const old of contexts.values()) lib.EVP_CIPHER_CTX_free(old.ctx);
        contexts.clear();
        // The list may hold freed contexts: empty it (the other direction's are listed again on use).
        for (let i = 0; i < primeCount; i++) toPrime[i]!.listed = false;
        primeCount = 0;
      }
      const c = lib.EVP_CIPHER_CTX_new();
      if (!c) return null;
      const fresh: KeyContext = { ctx: c as Pointer, key: new Uint8Array(KEY_SIZE), encrypt, ready: -1, next: -1, listed: false };
      fresh.key[0] = key[0]! ^ 1; // differs from the key: forces the first initialisation below
      contexts.set(at, fresh);
      kc = fresh;
    }
    const ready = kc.ready;
    kc.ready = -1;
    kc.next = counter + 1;
    if (!kc.listed && primeCount < MAX_PRIMED) {
      kc.listed = true;
      toPrime[primeCount++] = kc;
    }
    const known = kc.key;
    let same = true;
    for (let i = 0; i < KEY_SIZE; i++) {
      if (known[i] !== key[i]) {
        same = false;
        break;
      }
    }
    if (same) return ready === counter || init(kc, null) ? kc.ctx : null;
    if (!init(kc, at)) {
      known[0] = key[0]! ^ 1;
      return null;
    }
    known.set(key);
    return kc.ctx;
  };
  /** Set each context used since the last call up for its next counter (see the top of the file). */
  const prime = (): void => {
    for (let i = 0; i < primeCount; i++) {
      const kc = toPrime[i]!;
      kc.listed = false;
      if (kc.next > MAX_COUNTER) continue;
      writeNonce(nonce, kc.next);
      kc.ready = init(kc, null) ? kc.next : -1;
    }
    primeCount = 0;
  };

  const checkRange = (buf: Uint8Array, off: number, len: number): void => {
    // A bad range here would be a memory-safety bug in native code, not just a wrong answer.
    if (off < 0 || len < 0 || off + len > buf.length) throw new RangeError(`aead: range [${off}, ${off + len}) outside buffer of ${buf.length}`);
  };

  // Handshake-sized operations with associated data, on copies (inputs may be short-lived views).
  const sealAdCurrentNonce = (key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array => {
    if (key.length !== KEY_SIZE) throw new RangeError("aead: key must be 32 bytes");
    if (ad.length > AD_MAX) throw new RangeError(`aead: associated data over ${AD_MAX} bytes`);
    const n = plaintext.length;
    const out = new Uint8Array(new ArrayBuffer(n + TAG_SIZE));
    out.set(plaintext);
    const p = addr(out, 0);
    const tag = (p + n) as Pointer;
    stage(key, ad);
    let ok = lib.EVP_EncryptInit_ex(ctx, cipher, null, keyPtr, noncePtr);
    if (ad.length > 0) ok &= lib.EVP_EncryptUpdate(ctx, null, outlPtr, adPtr, ad.length);
    if (n > 0) ok &= lib.EVP_EncryptUpdate(ctx, p, outlPtr, p, n);
    ok &= lib.EVP_EncryptFinal_ex(ctx, tag, outlPtr);
    ok &= lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, tag);
    if (ok !== 1) throw new Error("aead: libcrypto seal failed");
    return out;
  };
  const openAdCurrentNonce = (key: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null => {
    if (ciphertext.length < TAG_SIZE || key.length !== KEY_SIZE || ad.length > AD_MAX) return null;
    const n = ciphertext.length - TAG_SIZE;
    const out = copy(ciphertext);
    const p = addr(out, 0);
    const tag = (p + n) as Pointer;
    stage(key, ad);
    let ok = lib.EVP_DecryptInit_ex(ctx, cipher, null, keyPtr, noncePtr);
    ok &= lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag);
    if (ad.length > 0) ok &= lib.EVP_DecryptUpdate(ctx, null, outlPtr, adPtr, ad.length);
    if (n > 0) ok &= lib.EVP_DecryptUpdate(ctx, p, outlPtr, p, n);
    if (ok !== 1 || lib.EVP_DecryptFinal_ex(ctx, tag, outlPtr) !== 1) return null;
    return out.subarray(0, n);
  };

  const aead: AeadWithNonce = {
    name: "libcrypto",
    suite,
    seal(key, counter, buf, off, len) {
      if (key.length !== KEY_SIZE) throw new RangeError("aead: key must be 32 bytes");
      checkRange(buf, off, len + TAG_SIZE);
      writeNonce(nonce, counter);
      const kctx = keyContext(sealContexts, key, true, counter);
      if (kctx === null) throw new Error("aead: libcrypto seal failed");
      const p = addr(buf, off);
      const tag = (p + len) as Pointer;
      const ok =
        lib.EVP_EncryptUpdate(kctx, p, outlPtr, p, len) &
        lib.EVP_EncryptFinal_ex(kctx, tag, outlPtr) &
        lib.EVP_CIPHER_CTX_ctrl(kctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, tag);
      if (ok !== 1) throw new Error("aead: libcrypto seal failed");
    },
    open(key, counter, buf, off, len) {
      if (len < TAG_SIZE || key.length !== KEY_SIZE || off < 0 || off + len > buf.length) return false;
      writeNonce(nonce, counter);
      const kctx = keyContext(openContexts, key, false, counter);
      if (kctx === null) return false;
      const p = addr(buf, off);
      const n = len - TAG_SIZE;
      const tag = (p + n) as Pointer;
      if (lib.EVP_CIPHER_CTX_ctrl(kctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) !== 1) return false;
      if (lib.EVP_DecryptUpdate(kctx, p, outlPtr, p, n) !== 1) return false;
      return lib.EVP_DecryptFinal_ex(kctx, tag, outlPtr) === 1;
    },
    prime,
    sealAd(key, counter, plaintext, ad) {
      writeNonce(nonce, counter);
      return sealAdCurrentNonce(key, plaintext, ad);
    },
    openAd(key, counter, ciphertext, ad) {
      writeNonce(nonce, counter);
      return openAdCurrentNonce(key, ciphertext, ad);
    },
    sealWithNonce(key, nonce12, plaintext, ad) {
      nonce.set(nonce12.subarray(0, 12));
      return sealAdCurrentNonce(key, plaintext, ad);
    },
    openWithNonce(key, nonce12, ciphertext, ad) {
      nonce.set(nonce12.subarray(0, 12));
      return openAdCurrentNonce(key, ciphertext, ad);
    },
  };
  return aead;
}

/** A copy in its own ArrayBuffer (handshake inputs can be views on short-lived buffers). */
function copy(a: Uint8Array): Uint8Array {
  const c = new Uint8Array(new ArrayBuffer(Math.max(1, a.length)));
  c.set(a);
  return c.subarray(0, a.length);
}
