// Ed25519: RFC 8032 known answers through the native path, and the native path checked against the
// @noble/curves reference on random keys and messages, on damaged signatures, messages and keys, and
// on non-canonical encodings (both must refuse the same inputs).

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyNoble,
  x25519FromEd25519Public,
  x25519SecretFromSeed,
} from "../../src/crypto/ed25519.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

// RFC 8032 §7.1, TESTs 1, 2, 3 and SHA(abc).
const VECTORS = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    pub: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    msg: "",
    sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    pub: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    msg: "72",
    sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
  {
    seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    pub: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    msg: "af82",
    sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
  },
  {
    seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    pub: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    msg: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    sig: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
  },
];

// The group order L, little-endian: a signature with s + L in place of s is the same point
// arithmetic but a non-canonical scalar, which RFC 8032 requires verifiers to refuse.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
function addLToS(sig: Uint8Array): Uint8Array {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += L;
  const out = new Uint8Array(sig);
  for (let i = 32; i < 64; i++) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}

describe("ed25519 (native path)", () => {
  test("RFC 8032 known answers: public key, signature, verification", () => {
    for (const v of VECTORS) {
      expect(hex(ed25519PublicKey(bytes(v.seed)))).toBe(v.pub);
      expect(hex(ed25519Sign(bytes(v.msg), bytes(v.seed)))).toBe(v.sig);
      expect(ed25519Verify(bytes(v.sig), bytes(v.msg), bytes(v.pub))).toBe(true);
      expect(ed25519VerifyNoble(bytes(v.sig), bytes(v.msg), bytes(v.pub))).toBe(true);
    }
  });

  test("agrees with @noble/curves on random keys and messages", () => {
    for (let i = 0; i < 100; i++) {
      const seed = new Uint8Array(randomBytes(32));
      const msg = new Uint8Array(randomBytes(i * 7));
      const pub = ed25519PublicKey(seed);
      expect(hex(pub)).toBe(hex(ed25519.getPublicKey(seed)));
      const sig = ed25519Sign(msg, seed);
      expect(hex(sig)).toBe(hex(ed25519.sign(msg, seed)));
      expect(ed25519Verify(sig, msg, pub)).toBe(true);
      expect(hex(x25519SecretFromSeed(seed))).toBe(hex(ed25519.utils.toMontgomerySecret(seed)));
      expect(hex(x25519FromEd25519Public(pub))).toBe(hex(ed25519.utils.toMontgomery(pub)));
    }
  });

  test("damaged signatures, messages and keys are refused by both", () => {
    const seed = new Uint8Array(randomBytes(32));
    const pub = ed25519PublicKey(seed);
    const msg = new Uint8Array(randomBytes(64));
    const sig = ed25519Sign(msg, seed);
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const s = new Uint8Array(sig);
      const m = new Uint8Array(msg);
      const p = new Uint8Array(pub);
      const which = i % 3;
      const target = which === 0 ? s : which === 1 ? m : p;
      const bit = (i * 37) % (target.length * 8);
      target[bit >> 3]! ^= 1 << (bit & 7);
      const native = ed25519Verify(s, m, p);
      expect(native).toBe(ed25519VerifyNoble(s, m, p));
      if (!native) refused++;
    }
    expect(refused).toBe(300);
  });

  test("non-canonical s (s + L), wrong sizes, and a key that is not a point are refused without throwing", () => {
    const v = VECTORS[1]!;
    const sig = bytes(v.sig);
    const big = addLToS(sig);
    expect(hex(big)).not.toBe(v.sig);
    expect(ed25519Verify(big, bytes(v.msg), bytes(v.pub))).toBe(false);
    expect(ed25519VerifyNoble(big, bytes(v.msg), bytes(v.pub))).toBe(false);
    expect(ed25519Verify(sig.subarray(0, 63), bytes(v.msg), bytes(v.pub))).toBe(false);
    expect(ed25519Verify(sig, bytes(v.msg), bytes(v.pub).subarray(1))).toBe(false);
    // y = 2 has no x on the curve: not a point.
    const notPoint = new Uint8Array(32);
    notPoint[0] = 2;
    expect(() => ed25519.Point.fromHex(hex(notPoint))).toThrow();
    expect(ed25519Verify(sig, bytes(v.msg), notPoint)).toBe(false);
    expect(ed25519VerifyNoble(sig, bytes(v.msg), notPoint)).toBe(false);
  });

  test("a seed of the wrong size is a programming error", () => {
    expect(() => ed25519PublicKey(new Uint8Array(31))).toThrow(RangeError);
    expect(() => ed25519Sign(new Uint8Array(1), new Uint8Array(33))).toThrow(RangeError);
    expect(() => x25519SecretFromSeed(new Uint8Array(16))).toThrow(RangeError);
  });
});
