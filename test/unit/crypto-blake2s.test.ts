// BLAKE2s, MAC, HMAC-BLAKE2s and WireGuard's KDF. Vectors: RFC 7693 Appendix B, the BLAKE2 reference
// KAT file (keyed), and values from the independent Python reference
// (test/e2e/wg-interop/reference-transcript.py: hashlib + hmac).

import { describe, expect, test } from "bun:test";
import { hash, hmacBlake2s, kdf, kdf1, kdf2, kdf3, mac } from "../../src/crypto/blake2s.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const text = (s: string) => new TextEncoder().encode(s);
const seq = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe("HASH = BLAKE2s-256", () => {
  test("RFC 7693 Appendix B: BLAKE2s-256(\"abc\")", () => {
    expect(hex(hash(text("abc")))).toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  });
  test("several parts hash as their concatenation", () => {
    expect(hex(hash(text("a"), text("b"), text("c")))).toBe(hex(hash(text("abc"))));
  });
  test("empty input (BLAKE2s reference)", () => {
    expect(hex(hash(new Uint8Array(0)))).toBe("69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
  });
});

describe("MAC = keyed BLAKE2s-128", () => {
  test("keyed BLAKE2s KAT shape: 16-byte output with a 32-byte key (Python hashlib)", () => {
    expect(hex(mac(seq(32), text("abc")))).toBe("61ba5f165c194692e09d12520cc4c74a");
  });
  test("the key matters", () => {
    expect(hex(mac(seq(32, 1), text("abc")))).not.toBe("61ba5f165c194692e09d12520cc4c74a");
  });
});

describe("HMAC-BLAKE2s and KDF", () => {
  test("HMAC (RFC 2104 over BLAKE2s; Python hmac + hashlib.blake2s)", () => {
    expect(hex(hmacBlake2s(text("key"), text("The quick brown fox jumps over the lazy dog")))).toBe(
      "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0",
    );
  });
  test("KDF3 known answer", () => {
    const out = kdf(3, seq(32), text("input")).map(hex);
    expect(out).toEqual([
      "87b7f70b24183c6db5dc4f6d9f4c47cdb203321aa2a0bef714896adb3107a040",
      "538a02e1eb2e31b7e4d4b82476d1fe2acf50085d3fb584537279195f5d1f5824",
      "9ad858025593be88de0f9442a589cfe84a88dc19e4753d93684d1c5efc4837f9",
    ]);
  });
  test("KDF1 of an empty input under a zero key", () => {
    expect(hex(kdf1(new Uint8Array(32), new Uint8Array(0)))).toBe("8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0");
  });
  test("KDF1/KDF2 are prefixes of KDF3", () => {
    const key = bytes("87b7f70b24183c6db5dc4f6d9f4c47cdb203321aa2a0bef714896adb3107a040");
    const [a, b, c] = kdf3(key, text("x"));
    expect(hex(kdf1(key, text("x")))).toBe(hex(a));
    expect(kdf2(key, text("x")).map(hex)).toEqual([hex(a), hex(b)]);
    expect(hex(c)).not.toBe(hex(b));
  });
});
