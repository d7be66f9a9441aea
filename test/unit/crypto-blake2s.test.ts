// BLAKE2s, MAC, HMAC-BLAKE2s and WireGuard's KDF. Vectors: RFC 7693 Appendix B, the BLAKE2 reference
// KAT file (keyed), and values from the independent Python reference
// (test/e2e/wg-interop/reference-transcript.py: hashlib + hmac).

import { describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";
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

// An independent construction: BLAKE2s-256 from OpenSSL (node:crypto "blake2s256"), with HMAC
// (RFC 2104: 64-byte block, keys longer than a block hashed first) and HKDF (RFC 5869, empty info)
// written out here by hand; and the form the spec names (hmac from @noble/hashes over blake2s).
describe("against independent constructions", () => {
  const osslHash = (...parts: Uint8Array[]) => {
    const h = createHash("blake2s256");
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };
  const handHmac = (key: Uint8Array, data: Uint8Array): Uint8Array => {
    const k = new Uint8Array(64);
    k.set(key.length > 64 ? osslHash(key) : key);
    const ipad = k.map((x) => x ^ 0x36);
    const opad = k.map((x) => x ^ 0x5c);
    return osslHash(opad, osslHash(ipad, data));
  };
  const handKdf = (n: number, key: Uint8Array, input: Uint8Array): Uint8Array[] => {
    const prk = handHmac(key, input);
    const out: Uint8Array[] = [];
    let prev: Uint8Array = new Uint8Array(0);
    for (let i = 1; i <= n; i++) {
      prev = handHmac(prk, new Uint8Array([...prev, i]));
      out.push(prev);
    }
    return out;
  };
  const rand = (n: number) => new Uint8Array(randomBytes(n));

  test("HASH equals OpenSSL's BLAKE2s-256 for lengths 0..300", () => {
    for (let n = 0; n <= 300; n++) {
      const m = rand(n);
      expect(hex(hash(m))).toBe(hex(osslHash(m)));
      // Split into two parts at a random point: hashing parts is hashing the concatenation.
      const cut = Math.floor(Math.random() * (n + 1));
      expect(hex(hash(m.subarray(0, cut), m.subarray(cut)))).toBe(hex(osslHash(m)));
    }
  });

  test("MAC: keyed BLAKE2s-128 pinned from Python hashlib for several key and input lengths", () => {
    const cases: [number, number, string][] = [
      [1, 0, "8c428d85069c64e0526bdba37edad820"],
      [16, 1, "af0795ceef3b1c1dcb0662e61ab9a0fe"],
      [32, 64, "1bf0c0c5c3583d852c57b1aa1c990559"],
      [32, 65, "12788b6035950ac42b410404843a8883"],
      [32, 200, "9b9dc539cf0ab2399c1e06f079f322f5"],
    ];
    for (const [kl, dl, want] of cases) expect(hex(mac(seq(kl, 7), seq(dl, 100)))).toBe(want);
    // BLAKE2 reference KAT (blake2s-kat.txt, keyed, empty input) with the full 32-byte output: the
    // same keyed construction mac() uses, at the reference's digest length.
    expect(hex(blake2s(new Uint8Array(0), { key: seq(32), dkLen: 32 }))).toBe("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");
  });

  test("HMAC-BLAKE2s equals a hand-written RFC 2104 HMAC over OpenSSL's BLAKE2s and noble's hmac", () => {
    for (const kl of [0, 1, 16, 32, 63, 64, 65, 100]) {
      for (const dl of [0, 1, 32, 64, 65, 150]) {
        const k = rand(kl);
        const d = rand(dl);
        const got = hex(hmacBlake2s(k, d));
        expect(got).toBe(hex(handHmac(k, d)));
        expect(got).toBe(hex(hmac(blake2s, k, d)));
      }
    }
  });

  test("KDF1/2/3 equal a hand-written HKDF over that HMAC", () => {
    for (let i = 0; i < 60; i++) {
      const key = rand(32);
      const input = rand([0, 1, 32, 64, 100][i % 5]!);
      const want = handKdf(3, key, input).map(hex);
      expect(kdf3(key, input).map(hex)).toEqual(want);
      expect(kdf2(key, input).map(hex)).toEqual(want.slice(0, 2));
      expect(hex(kdf1(key, input))).toBe(want[0]!);
    }
  });
});
