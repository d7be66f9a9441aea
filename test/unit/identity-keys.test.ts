// Identity: RFC 8032 known answer with pinned peer_id, fingerprint and X25519 form (cross-checked
// against @noble/curves and node:crypto), peer_id decoding rejects every kind of damage, and random
// keys round-trip.

import { describe, expect, test } from "bun:test";
import { createHash, createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { ed25519, x25519 as nobleX25519 } from "@noble/curves/ed25519.js";
import {
  base32,
  decodePeerId,
  encodePeerId,
  fingerprintOf,
  generateIdentity,
  identityFromSeed,
  PEER_ID_PREFIX,
  shortPeerId,
  unbase32,
} from "../../src/identity/keys.ts";
import { x25519FromEd25519Public } from "../../src/crypto/ed25519.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

// RFC 8032 §7.1 TEST 1.
const SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SIG_EMPTY = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
// Pinned from this implementation and cross-checked below by independent computation.
const PEER_ID = "vine125njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkencd7q";
const FINGERPRINT = "21fe-31df-a154-a261";
const X_PRIV = "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f";
const X_PUB = "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e";

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");

describe("RFC 8032 test 1 known answers", () => {
  const id = identityFromSeed(bytes(SEED));

  test("public key, peer_id, fingerprint, X25519 pair", () => {
    expect(hex(id.publicKey)).toBe(PUB);
    expect(id.peerId).toBe(PEER_ID);
    expect(id.fingerprint).toBe(FINGERPRINT);
    expect(hex(id.x25519Private)).toBe(X_PRIV);
    expect(hex(id.x25519Public)).toBe(X_PUB);
    expect(hex(id.seed)).toBe(SEED);
    // the identity is a real Ed25519 key: RFC 8032 signature of the empty message
    expect(hex(ed25519.sign(new Uint8Array(0), id.seed))).toBe(SIG_EMPTY);
  });

  test("peer_id is vine1 + base32(pub ‖ sha256(pub)[0..2]) computed independently", () => {
    const sum = createHash("sha256").update(bytes(PUB)).digest();
    const body = Buffer.concat([Buffer.from(PUB, "hex"), sum.subarray(0, 2)]);
    // RFC 4648 base32 without padding, written here independently of src/identity
    const A = "abcdefghijklmnopqrstuvwxyz234567";
    let bits = "";
    for (const b of body) bits += b.toString(2).padStart(8, "0");
    while (bits.length % 5) bits += "0";
    let s = "";
    for (let i = 0; i < bits.length; i += 5) s += A[parseInt(bits.slice(i, i + 5), 2)];
    expect("vine1" + s).toBe(PEER_ID);
    expect(PEER_ID).toHaveLength(60);
    const fp = sum.subarray(0, 8).toString("hex");
    expect(FINGERPRINT).toBe(`${fp.slice(0, 4)}-${fp.slice(4, 8)}-${fp.slice(8, 12)}-${fp.slice(12, 16)}`);
  });

  test("X25519 private is the clamped SHA-512 seed half (RFC 8032 §5.1.5), computed with node:crypto", () => {
    const h = Buffer.from(createHash("sha512").update(bytes(SEED)).digest().subarray(0, 32));
    h[0]! &= 248;
    h[31]! &= 127;
    h[31]! |= 64;
    expect(h.toString("hex")).toBe(X_PRIV);
  });

  test("X25519 public = base-point multiplication of the X25519 private (noble and node:crypto)", () => {
    expect(hex(nobleX25519.getPublicKey(id.x25519Private))).toBe(X_PUB);
    expect(hex(nobleX25519.scalarMultBase(id.x25519Private))).toBe(X_PUB);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, id.x25519Private]), format: "der", type: "pkcs8" });
    const spki = createPublicKey(key).export({ format: "der", type: "spki" });
    expect(Buffer.from(spki).subarray(-32).toString("hex")).toBe(X_PUB);
    // and the Montgomery form of the Ed25519 public key agrees
    expect(hex(x25519FromEd25519Public(bytes(PUB)))).toBe(X_PUB);
  });

  test("decodePeerId returns the public key", () => {
    expect(hex(decodePeerId(PEER_ID)!)).toBe(PUB);
    expect(shortPeerId(PEER_ID)).toBe("vine125njqamc");
  });

  test("identityFromSeed rejects a seed that is not 32 bytes", () => {
    expect(() => identityFromSeed(new Uint8Array(31))).toThrow("32 bytes");
    expect(() => identityFromSeed(new Uint8Array(33))).toThrow("32 bytes");
  });
});

describe("decodePeerId rejects damage", () => {
  test("wrong prefix", () => {
    for (const p of ["vine2", "VINE1", "vine0", "wine1", "vin1x"]) expect(decodePeerId(p + PEER_ID.slice(5))).toBeNull();
    expect(decodePeerId(PEER_ID.slice(5))).toBeNull();
  });

  test("wrong length", () => {
    expect(decodePeerId(PEER_ID.slice(0, -1))).toBeNull();
    expect(decodePeerId(PEER_ID + "a")).toBeNull();
    expect(decodePeerId("vine1")).toBeNull();
    expect(decodePeerId("")).toBeNull();
    expect(decodePeerId(PEER_ID_PREFIX + "a".repeat(56))).toBeNull();
  });

  test("characters outside the lowercase RFC 4648 alphabet", () => {
    for (const c of ["0", "1", "8", "9", "A", "Z", "=", " ", "-", "é"]) {
      const s = PEER_ID.slice(0, 20) + c + PEER_ID.slice(21);
      expect(decodePeerId(s)).toBeNull();
    }
    expect(decodePeerId(PEER_ID.toUpperCase())).toBeNull();
  });

  test("every single flipped character fails the checksum (or the canonical-spelling rule)", () => {
    const A = "abcdefghijklmnopqrstuvwxyz234567";
    for (let i = PEER_ID_PREFIX.length; i < PEER_ID.length; i++) {
      for (const c of A) {
        if (c === PEER_ID[i]) continue;
        const s = PEER_ID.slice(0, i) + c + PEER_ID.slice(i + 1);
        expect(decodePeerId(s)).toBeNull();
      }
    }
  });

  test("non-string input is null, not a throw", () => {
    for (const v of [null, undefined, 42, {}, [], new Uint8Array(34)]) expect(decodePeerId(v as unknown as string)).toBeNull();
  });

  test("random strings never throw and almost never decode", () => {
    const A = "abcdefghijklmnopqrstuvwxyz234567";
    let decoded = 0;
    for (let n = 0; n < 2000; n++) {
      const r = randomBytes(55);
      let s = PEER_ID_PREFIX;
      for (const b of r) s += A[b & 31];
      if (decodePeerId(s) !== null) decoded++;
      // and arbitrary bytes as a string
      expect(() => decodePeerId(Buffer.from(randomBytes(60)).toString("latin1"))).not.toThrow();
    }
    // a 16-bit checksum and 3 spare bits: expect ~2000/2^19 ≈ 0
    expect(decoded).toBeLessThanOrEqual(1);
  });
});

describe("round trips", () => {
  test("random public keys encode and decode", () => {
    for (let n = 0; n < 300; n++) {
      const pub = new Uint8Array(randomBytes(32));
      const id = encodePeerId(pub);
      expect(id).toMatch(/^vine1[a-z2-7]{55}$/);
      expect(hex(decodePeerId(id)!)).toBe(hex(pub));
    }
  });

  test("generated identities are consistent", () => {
    for (let n = 0; n < 20; n++) {
      const id = generateIdentity();
      expect(hex(decodePeerId(id.peerId)!)).toBe(hex(id.publicKey));
      expect(id.fingerprint).toBe(fingerprintOf(id.publicKey));
      expect(hex(nobleX25519.getPublicKey(id.x25519Private))).toBe(hex(id.x25519Public));
      expect(hex(identityFromSeed(id.seed).publicKey)).toBe(hex(id.publicKey));
      expect(id.fingerprint).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    }
  });

  test("base32 and unbase32 are inverse for whole-byte inputs", () => {
    for (let n = 0; n < 200; n++) {
      const b = new Uint8Array(randomBytes(n % 40));
      expect(hex(unbase32(base32(b))!)).toBe(hex(b));
    }
    expect(base32(new TextEncoder().encode("foobar"))).toBe("mzxw6ytboi"); // RFC 4648 §10, lowercased
    expect(unbase32("mzxw6yt!")).toBeNull();
  });
});
