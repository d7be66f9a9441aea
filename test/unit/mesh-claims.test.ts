// Signed membership claims: a pinned known answer (cross-checked with node:crypto's independent
// Ed25519 and BLAKE2s), every rejection reason, and random/mutated input that never throws.

import { describe, expect, test } from "bun:test";
import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { networkHash, signClaim, verifyClaim, type VerifyClaimOptions } from "../../src/mesh/claims.ts";
import { CLAIM_BODY_LEN, decodeControl, encodeClaim } from "../../src/mesh/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);
const PUB = ed25519.getPublicKey(SEED);
const PREFIX = { addr: 0x0a2a0100, len: 24 }; // 10.42.1.0/24
const T = 1_700_000_000_000;
const KAT =
  "01" + // version
  "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8" + // Ed25519 public key of seed 00..1f
  "69745fffb9fc7e23de5c4b493a8b4d3ddd1d4c5a66059ab181d0eff9e1be188a" + // BLAKE2s-256("vine-test")
  "0a2a0100" + "18" + // 10.42.1.0/24
  "0000018bcfe56800" + // issued_at 1700000000000
  "07d15d5ce7bc5ce8ff6a0f4960f396ad773e2059d3dd44466449bcf9049673e0" +
  "b81cc23a9b875954e426eb21341e4bbd4d8b44a1697d9c4ec6e5063fb0274405";

function opts(over: Partial<VerifyClaimOptions> = {}): VerifyClaimOptions {
  return {
    networkId: "vine-test",
    nowMs: T + 1000,
    lookup: (pub) => (hex(pub) === hex(PUB) ? { prefix: PREFIX } : null),
    ...over,
  };
}

describe("known answer", () => {
  const body = signClaim(SEED, PUB, "vine-test", PREFIX, T);

  test("pinned bytes", () => {
    expect(body.length).toBe(CLAIM_BODY_LEN);
    expect(hex(body)).toBe(KAT);
  });

  test("independent check: node:crypto BLAKE2s and Ed25519 agree with the pinned bytes", () => {
    expect(hex(networkHash("vine-test"))).toBe(createHash("blake2s256").update("vine-test").digest("hex"));
    const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(PUB)]);
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    const signed = Buffer.concat([Buffer.from("vine claim v1"), Buffer.from(body.subarray(0, 78))]);
    expect(nodeVerify(null, signed, key, Buffer.from(body.subarray(78)))).toBe(true);
  });

  test("verifies as a body and as a whole CLAIM message", () => {
    const want = { ok: true as const, publicKey: PUB, prefix: PREFIX, issuedAt: T };
    expect(verifyClaim(body, opts())).toEqual(want);
    expect(verifyClaim(encodeClaim(body), opts())).toEqual(want);
    const decoded = decodeControl(encodeClaim(body));
    expect(decoded?.type === "claim" && verifyClaim(decoded.bytes, opts())).toEqual(want);
  });

  test("signing refuses a public key that is not the seed's, and a non-canonical prefix", () => {
    expect(() => signClaim(SEED, new Uint8Array(32), "vine-test", PREFIX, T)).toThrow(RangeError);
    expect(() => signClaim(SEED, PUB, "vine-test", { addr: 0x0a2a0101, len: 24 }, T)).toThrow(RangeError);
  });
});

describe("rejections", () => {
  const body = signClaim(SEED, PUB, "vine-test", PREFIX, T);

  test("malformed: wrong length, wrong version", () => {
    expect(verifyClaim(body.subarray(1), opts())).toEqual({ ok: false, reason: "malformed" });
    const v2 = body.slice();
    v2[0] = 2;
    expect(verifyClaim(v2, opts())).toEqual({ ok: false, reason: "malformed" });
  });

  test("unknown_identity: the allowlist does not know the key (checked before any signature work)", () => {
    let asked = 0;
    const r = verifyClaim(body, opts({ lookup: () => (asked++, null) }));
    expect(r).toEqual({ ok: false, reason: "unknown_identity" });
    expect(asked).toBe(1);
  });

  test("bad_signature: a changed byte anywhere (key, network hash, prefix, time, signature) that leaves the layout valid", () => {
    for (const at of [5, 40, 66, 75, 77, 78, 100, 141]) {
      const m = body.slice();
      m[at]! ^= 0x01;
      const r = verifyClaim(m, opts({ lookup: () => ({ prefix: PREFIX }) }));
      expect(`${at}: ${r.ok ? "ok" : r.reason}`).toBe(`${at}: bad_signature`);
    }
  });

  test("bad_signature: a validly signed claim by another key presented under the known key", () => {
    const other = signClaim(new Uint8Array(32).fill(7), ed25519.getPublicKey(new Uint8Array(32).fill(7)), "vine-test", PREFIX, T);
    const forged = other.slice();
    forged.set(PUB, 1);
    expect(verifyClaim(forged, opts())).toEqual({ ok: false, reason: "bad_signature" });
  });

  test("wrong_network", () => {
    expect(verifyClaim(body, opts({ networkId: "vine-other" }))).toEqual({ ok: false, reason: "wrong_network" });
  });

  test("prefix_mismatch: a validly signed claim for a prefix that is not the configured one", () => {
    const wider = signClaim(SEED, PUB, "vine-test", { addr: 0x0a2a0000, len: 16 }, T);
    expect(verifyClaim(wider, opts())).toEqual({ ok: false, reason: "prefix_mismatch" });
  });

  test("stale: older or newer than maxAgeMs", () => {
    expect(verifyClaim(body, opts({ nowMs: T + 60_001, maxAgeMs: 60_000 }))).toEqual({ ok: false, reason: "stale" });
    expect(verifyClaim(body, opts({ nowMs: T - 60_001, maxAgeMs: 60_000 }))).toEqual({ ok: false, reason: "stale" });
    expect(verifyClaim(body, opts({ nowMs: T + 60_000, maxAgeMs: 60_000 })).ok).toBe(true);
    expect(verifyClaim(body, opts({ nowMs: T + 25 * 3600_000 }))).toEqual({ ok: false, reason: "stale" }); // default 24 h
  });

  test("random and mutated input never throws", () => {
    let x = 0x1234567;
    const next = () => ((x = (x * 1103515245 + 12345) >>> 0), x >>> 8);
    const admitAll = opts({ lookup: () => ({ prefix: PREFIX }) });
    for (let i = 0; i < 3000; i++) {
      const m = i % 2 === 0 ? body.slice() : new Uint8Array(next() % 200).map(() => next() & 0xff);
      if (i % 2 === 0) for (let f = 0; f < 1 + (i % 4); f++) m[next() % m.length]! ^= 1 << (next() & 7);
      const r = verifyClaim(m, admitAll);
      expect(typeof r.ok).toBe("boolean");
    }
    // A public key that is not a curve point is a rejection, not a throw.
    const notPoint = body.slice();
    notPoint.set(new Uint8Array(32).fill(0xff), 1);
    expect(verifyClaim(notPoint, admitAll).ok).toBe(false);
    // A lookup that throws counts as unknown.
    expect(verifyClaim(body, opts({ lookup: () => { throw new Error("db"); } }))).toEqual({ ok: false, reason: "unknown_identity" });
  });
});
