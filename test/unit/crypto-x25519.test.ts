// X25519: RFC 7748 §6.1 on the node:crypto fast path and the noble reference, agreement on random
// keys, and null (never a throw, never a zero key) for low-order points and wrong sizes.

import { describe, expect, test } from "bun:test";
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
