// ChaCha20-Poly1305 from @noble/ciphers: the pure-JS fallback and the reference in tests. noble
// writes into the caller's buffer (its `output` argument), but it still allocates a cipher object
// and subarrays per packet: this backend is correct, not fast.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { type AeadWithNonce, KEY_SIZE, TAG_SIZE, writeNonce } from "./aead.ts";

export function createNobleAead(): AeadWithNonce {
  const nonce = new Uint8Array(12);
  const sealWithNonce = (key: Uint8Array, nonce12: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array =>
    chacha20poly1305(key, nonce12, ad).encrypt(plaintext);
  const openWithNonce = (key: Uint8Array, nonce12: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null => {
    if (ciphertext.length < TAG_SIZE || key.length !== KEY_SIZE) return null;
    try {
      return chacha20poly1305(key, nonce12, ad).decrypt(ciphertext);
    } catch {
      return null;
    }
  };
  return {
    name: "noble",
    seal(key, counter, buf, off, len) {
      if (off < 0 || len < 0 || off + len + TAG_SIZE > buf.length) throw new RangeError(`aead: range outside buffer of ${buf.length}`);
      writeNonce(nonce, counter);
      chacha20poly1305(key, nonce).encrypt(buf.subarray(off, off + len), buf.subarray(off, off + len + TAG_SIZE));
    },
    open(key, counter, buf, off, len) {
      if (len < TAG_SIZE || key.length !== KEY_SIZE || off < 0 || off + len > buf.length) return false;
      writeNonce(nonce, counter);
      try {
        chacha20poly1305(key, nonce).decrypt(buf.subarray(off, off + len), buf.subarray(off, off + len - TAG_SIZE));
        return true;
      } catch {
        return false;
      }
    },
    sealAd(key, counter, plaintext, ad) {
      writeNonce(nonce, counter);
      return sealWithNonce(key, nonce, plaintext, ad);
    },
    openAd(key, counter, ciphertext, ad) {
      writeNonce(nonce, counter);
      return openWithNonce(key, nonce, ciphertext, ad);
    },
    sealWithNonce,
    openWithNonce,
  };
}
