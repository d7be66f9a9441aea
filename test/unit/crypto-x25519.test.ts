// X25519: RFC 7748 §6.1 on the node:crypto fast path and the noble reference, agreement on random
// keys, and null (never a throw, never a zero key) for low-order points and wrong sizes.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { generateX25519KeyPair, x25519, x25519Noble, x25519PublicKey, x25519PublicKeyNoble } from "../../src/crypto/x25519.ts";

const hex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString("hex") : null);
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

const ALICE_PRIV = bytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_PRIV = bytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
const BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

describe.each([
  ["node:crypto", x25519, x25519PublicKey],
  ["noble", x25519Noble, x25519PublicKeyNoble],
] as const)("%s", (_name, dh, pub) => {
  test("RFC 7748 §6.1 public keys and shared secret", () => {
    expect(hex(pub(ALICE_PRIV))).toBe(ALICE_PUB);
    expect(hex(pub(BOB_PRIV))).toBe(BOB_PUB);
    expect(hex(dh(ALICE_PRIV, bytes(BOB_PUB)))).toBe(SHARED);
    expect(hex(dh(BOB_PRIV, bytes(ALICE_PUB)))).toBe(SHARED);
  });

  test("low-order public keys give null, not an all-zero secret", () => {
    // The identity point (0) and the order-8 point from the libsodium/WireGuard blacklist.
    for (const p of ["00".repeat(32), "0100000000000000000000000000000000000000000000000000000000000000", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"]) {
      expect(dh(ALICE_PRIV, bytes(p))).toBeNull();
    }
  });

  test("wrong key sizes give null", () => {
    expect(dh(ALICE_PRIV.subarray(0, 31), bytes(BOB_PUB))).toBeNull();
    expect(dh(ALICE_PRIV, new Uint8Array(33))).toBeNull();
  });
});

test("fast path and reference agree on random keys", () => {
  for (let i = 0; i < 40; i++) {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    expect(hex(a.publicKey)).toBe(hex(x25519PublicKeyNoble(a.privateKey)));
    const s = x25519(a.privateKey, b.publicKey);
    expect(s).not.toBeNull();
    expect(hex(s)).toBe(hex(x25519Noble(a.privateKey, b.publicKey)));
    expect(hex(s)).toBe(hex(x25519(b.privateKey, a.publicKey)));
  }
});

test("generated private keys are clamped", () => {
  const { privateKey } = generateX25519KeyPair();
  expect(privateKey[0]! & 7).toBe(0);
  expect(privateKey[31]! & 0x80).toBe(0);
  expect(privateKey[31]! & 0x40).toBe(0x40);
});

// RFC 7748 §5.2: scalar multiplication on arbitrary (unclamped) scalars and u-coordinates, whose top
// bit is masked; then the iterated vectors.
const SCALARMULT: [string, string, string][] = [
  ["a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"],
  ["4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"],
];

describe.each([
  ["node:crypto", x25519, 1000],
  ["noble", x25519Noble, 1],
] as const)("%s: RFC 7748 §5.2", (_name, dh, iterations) => {
  test("scalar multiplication vectors (unclamped inputs, top bit of u masked)", () => {
    for (const [k, u, out] of SCALARMULT) expect(hex(dh(bytes(k), bytes(u)))).toBe(out);
  });

  test(`iterated k = X25519(k, u), u = old k: ${iterations} iteration(s)`, () => {
    let k: Uint8Array = bytes("09" + "00".repeat(31));
    let u: Uint8Array = k.slice();
    for (let i = 0; i < iterations; i++) {
      const r = dh(k, u)!;
      u = k;
      k = r;
    }
    const want = iterations === 1 ? "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" : "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";
    expect(hex(k)).toBe(want);
  });
});

test("every small-order u-coordinate (the libsodium/WireGuard list) gives null on both paths", () => {
  const smallOrder = [
    "00".repeat(32),
    "01" + "00".repeat(31),
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff".repeat(30) + "7f", // p - 1
    "ed" + "ff".repeat(30) + "7f", // p (≡ 0)
    "ee" + "ff".repeat(30) + "7f", // p + 1 (≡ 1)
  ];
  for (let i = 0; i < 5; i++) {
    const { privateKey } = generateX25519KeyPair();
    for (const p of smallOrder) {
      expect(x25519(privateKey, bytes(p))).toBeNull();
      expect(x25519Noble(privateKey, bytes(p))).toBeNull();
    }
  }
});

test("fast path and reference agree on arbitrary 32-byte scalars and u-coordinates (top bit set too)", () => {
  for (let i = 0; i < 60; i++) {
    const k = new Uint8Array(randomBytes(32));
    const u = new Uint8Array(randomBytes(32));
    if (i % 2 === 0) u[31]! |= 0x80;
    expect(hex(x25519(k, u))).toBe(hex(x25519Noble(k, u)));
    expect(hex(x25519PublicKey(k))).toBe(hex(x25519PublicKeyNoble(k)));
  }
});
