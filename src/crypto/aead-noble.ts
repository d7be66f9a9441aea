// ChaCha20-Poly1305 and AES-256-GCM from @noble/ciphers: the pure-JS fallback and the reference in
// tests. noble writes into the caller's buffer (its `output` argument), but it still allocates a
// cipher object and subarrays per packet: this backend is correct, not fast.

import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { type AeadWithNonce, KEY_SIZE, type Suite, TAG_SIZE, writeNonce } from "./aead.ts";

export function createNobleAead(suite: Suite = "chacha20-poly1305"): AeadWithNonce {
  const cipher = suite === "aes-256-gcm" ? gcm : chacha20poly1305;
  // noble's GCM takes no output buffer: it allocates the result, which is then copied back.
  const inPlace = suite !== "aes-256-gcm";
  const nonce = new Uint8Array(12);
  const sealWithNonce = (key: Uint8Array, nonce12: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array =>
    cipher(key, nonce12, ad).encrypt(plaintext);
  const openWithNonce = (key: Uint8Array, nonce12: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null => {
    if (ciphertext.length < TAG_SIZE || key.length !== KEY_SIZE) return null;
    try {
      return cipher(key, nonce12, ad).decrypt(ciphertext);
    } catch {
      return null;
    }
  };
  return {
    name: "noble",
    suite,
    seal(key, counter, buf, off, len) {
      if (off < 0 || len < 0 || off + len + TAG_SIZE > buf.length) throw new RangeError(`aead: range outside buffer of ${buf.length}`);
      writeNonce(nonce, counter);
      if (inPlace) cipher(key, nonce).encrypt(buf.subarray(off, off + len), buf.subarray(off, off + len + TAG_SIZE));
      else buf.set(cipher(key, nonce).encrypt(buf.subarray(off, off + len)), off);
    },
    open(key, counter, buf, off, len) {
      if (len < TAG_SIZE || key.length !== KEY_SIZE || off < 0 || off + len > buf.length) return false;
      writeNonce(nonce, counter);
      try {
        if (inPlace) cipher(key, nonce).decrypt(buf.subarray(off, off + len), buf.subarray(off, off + len - TAG_SIZE));
        else buf.set(cipher(key, nonce).decrypt(buf.subarray(off, off + len)), off);
        return true;
      } catch {
        return false;
      }
    },
    prime() {}, // noble sets a cipher up per packet: nothing to prepare
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
