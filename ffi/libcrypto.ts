// OpenSSL 3 libcrypto through bun:ffi: just what the transport AEAD needs. Loaded lazily (and per
// thread) so that a host without libcrypto.so.3 still runs, on the noble fallback.

import { dlopen, FFIType } from "bun:ffi";

const { ptr, i32, cstring } = FFIType;

function open() {
  return dlopen("libcrypto.so.3", {
    OpenSSL_version: { args: [i32], returns: cstring },
    EVP_CIPHER_CTX_new: { args: [], returns: ptr },
    EVP_CIPHER_CTX_free: { args: [ptr], returns: FFIType.void },
    EVP_chacha20_poly1305: { args: [], returns: ptr },
    EVP_aes_256_gcm: { args: [], returns: ptr },
    EVP_EncryptInit_ex: { args: [ptr, ptr, ptr, ptr, ptr], returns: i32 },
    EVP_EncryptUpdate: { args: [ptr, ptr, ptr, ptr, i32], returns: i32 },
    EVP_EncryptFinal_ex: { args: [ptr, ptr, ptr], returns: i32 },
    EVP_DecryptInit_ex: { args: [ptr, ptr, ptr, ptr, ptr], returns: i32 },
    EVP_DecryptUpdate: { args: [ptr, ptr, ptr, ptr, i32], returns: i32 },
    EVP_DecryptFinal_ex: { args: [ptr, ptr, ptr], returns: i32 },
    EVP_CIPHER_CTX_ctrl: { args: [ptr, i32, i32, ptr], returns: i32 },
  });
}

export type LibCrypto = ReturnType<typeof open>["symbols"];

let cached: { lib: LibCrypto | null; why: string | null } | null = null;

/** The libcrypto symbols, or null with the reason it could not be loaded. */
export function libcrypto(): { lib: LibCrypto | null; why: string | null } {
  if (cached) return cached;
  try {
    const l = open();
    cached = { lib: l.symbols, why: null };
  } catch (e) {
    cached = { lib: null, why: `libcrypto.so.3 not loadable: ${(e as Error).message}` };
  }
  return cached;
}

export const EVP_CTRL_AEAD_GET_TAG = 0x10;
export const EVP_CTRL_AEAD_SET_TAG = 0x11;
