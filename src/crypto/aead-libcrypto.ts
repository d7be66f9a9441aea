// ChaCha20-Poly1305 through libcrypto (OpenSSL 3) with bun:ffi and no C shim: four calls per packet
// on one reused cipher context, in place. Pointers are taken once per ArrayBuffer (or
// SharedArrayBuffer) and cached, so the per-packet path allocates nothing.

import { ptr, type Pointer } from "bun:ffi";
import { EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG, libcrypto } from "../../ffi/libcrypto.ts";
import { type Aead, writeNonce } from "./aead.ts";

export function libcryptoVersion(): { version: string | null; why: string | null } {
  const { lib, why } = libcrypto();
  if (!lib) return { version: null, why };
  return { version: String(lib.OpenSSL_version(0)), why: null };
}

export function createLibcryptoAead(): Aead | null {
  const { lib } = libcrypto();
  if (!lib) return null;
  const ctx = lib.EVP_CIPHER_CTX_new();
  const cipher = lib.EVP_chacha20_poly1305();
  if (!ctx || !cipher) return null;

  // Scratch: nonce (12) and the out-length int (4), in one buffer whose pointer is taken once.
  const scratchAb = new ArrayBuffer(32);
  const scratch = new Uint8Array(scratchAb);
  const nonce = scratch.subarray(0, 12);
  const base = ptr(scratchAb);
  const noncePtr = base;
  const outlPtr = (base + 16) as Pointer;

  const bases = new WeakMap<ArrayBufferLike, number>();
  const addr = (a: Uint8Array, off: number): Pointer => {
    const buffer = a.buffer;
    let p = bases.get(buffer);
    if (p === undefined) {
      p = ptr(new Uint8Array(buffer as ArrayBuffer));
      bases.set(buffer, p);
    }
    return (p + a.byteOffset + off) as Pointer;
  };

  const aead: Aead = {
    name: "libcrypto",
    seal(key, counter, buf, off, len) {
      writeNonce(nonce, counter);
      const p = addr(buf, off);
      lib.EVP_EncryptInit_ex(ctx, cipher, null, addr(key, 0), noncePtr);
      lib.EVP_EncryptUpdate(ctx, p, outlPtr, p, len);
      lib.EVP_EncryptFinal_ex(ctx, (p + len) as Pointer, outlPtr);
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, (p + len) as Pointer);
    },
    open(key, counter, buf, off, len) {
      if (len < 16) return false;
      writeNonce(nonce, counter);
      const p = addr(buf, off);
      const n = len - 16;
      if (lib.EVP_DecryptInit_ex(ctx, cipher, null, addr(key, 0), noncePtr) !== 1) return false;
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (p + n) as Pointer);
      lib.EVP_DecryptUpdate(ctx, p, outlPtr, p, n);
      return lib.EVP_DecryptFinal_ex(ctx, (p + n) as Pointer, outlPtr) === 1;
    },
    sealAd(key, counter, plaintext, ad) {
      const out = new Uint8Array(new ArrayBuffer(plaintext.length + 16));
      out.set(plaintext);
      writeNonce(nonce, counter);
      const p = addr(out, 0);
      lib.EVP_EncryptInit_ex(ctx, cipher, null, addr(copy(key), 0), noncePtr);
      if (ad.length > 0) lib.EVP_EncryptUpdate(ctx, null, outlPtr, addr(copy(ad), 0), ad.length);
      lib.EVP_EncryptUpdate(ctx, p, outlPtr, p, plaintext.length);
      lib.EVP_EncryptFinal_ex(ctx, (p + plaintext.length) as Pointer, outlPtr);
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, (p + plaintext.length) as Pointer);
      return out;
    },
    openAd(key, counter, ciphertext, ad) {
      if (ciphertext.length < 16) return null;
      const n = ciphertext.length - 16;
      const out = copy(ciphertext);
      writeNonce(nonce, counter);
      const p = addr(out, 0);
      lib.EVP_DecryptInit_ex(ctx, cipher, null, addr(copy(key), 0), noncePtr);
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (p + n) as Pointer);
      if (ad.length > 0) lib.EVP_DecryptUpdate(ctx, null, outlPtr, addr(copy(ad), 0), ad.length);
      lib.EVP_DecryptUpdate(ctx, p, outlPtr, p, n);
      if (lib.EVP_DecryptFinal_ex(ctx, (p + n) as Pointer, outlPtr) !== 1) return null;
      return out.subarray(0, n);
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
