// ChaCha20-Poly1305 from @noble/ciphers: the pure-JS fallback and the reference in tests.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { type Aead, writeNonce } from "./aead.ts";

export function createNobleAead(): Aead {
  const nonce = new Uint8Array(12);
  return {
    name: "noble",
    seal(key, counter, buf, off, len) {
      writeNonce(nonce, counter);
      const ct = chacha20poly1305(key, nonce).encrypt(buf.subarray(off, off + len));
      buf.set(ct, off);
    },
    open(key, counter, buf, off, len) {
      if (len < 16) return false;
      writeNonce(nonce, counter);
      try {
        const pt = chacha20poly1305(key, nonce).decrypt(buf.subarray(off, off + len));
        buf.set(pt, off);
        return true;
      } catch {
        return false;
      }
    },
    sealAd(key, counter, plaintext, ad) {
      writeNonce(nonce, counter);
      return chacha20poly1305(key, nonce, ad).encrypt(plaintext);
    },
    openAd(key, counter, ciphertext, ad) {
      writeNonce(nonce, counter);
      try {
        return chacha20poly1305(key, nonce, ad).decrypt(ciphertext);
      } catch {
        return null;
      }
    },
  };
}
