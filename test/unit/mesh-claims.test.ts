// Signed membership claims: a pinned known answer (cross-checked with node:crypto's independent
// Ed25519 and BLAKE2s), every rejection reason, and random/mutated input that never throws.

import { describe, expect, test } from "bun:test";
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from "node:crypto";
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

// ------------------------------------------------------------------------------------------------
// A second known answer signed independently, each rejection triggered by exactly one change from a
// valid claim, and the order of the checks when several things are wrong.

describe("second known answer (/32 prefix, issued at 0), signed independently by node:crypto", () => {
  const seed = new Uint8Array(32).fill(0x42);
  const pub = ed25519.getPublicKey(seed);
  const PIN =
    "01" +
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12" +
    "1c2a2e2e6c87126837f85d2090ed8737c273da8f22e3f62d2a7009692372602c" + // BLAKE2s-256("home-net")
    "0a2a0507" + "20" + // 10.42.5.7/32
    "0000000000000000" +
    "be4ba6ce9ee5ce6298775d37fefeab500682182dc50188e02e4e8ceb3e3b4a6b" +
    "aab7e88893e0bf6365329e5db96833fa536f79379c7e637656893394f7913504";

  test("pinned bytes; node:crypto's Ed25519 signs the same message to the same signature", () => {
    const body = signClaim(seed, pub, "home-net", { addr: 0x0a2a0507, len: 32 }, 0);
    expect(hex(body)).toBe(PIN);
    expect(hex(networkHash("home-net"))).toBe(createHash("blake2s256").update("home-net").digest("hex"));
    const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seed)]);
    const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    const sig = nodeSign(null, Buffer.concat([Buffer.from("vine claim v1"), Buffer.from(body.subarray(0, 78))]), key);
    expect(sig.toString("hex")).toBe(PIN.slice(78 * 2));
    const r = verifyClaim(body, {
      networkId: "home-net",
      nowMs: 3600_000,
      lookup: (k) => (hex(k) === hex(pub) ? { prefix: { addr: 0x0a2a0507, len: 32 } } : null),
    });
    expect(r).toEqual({ ok: true, publicKey: pub, prefix: { addr: 0x0a2a0507, len: 32 }, issuedAt: 0 });
  });
});

describe("each rejection, triggered by exactly one change", () => {
  const body = signClaim(SEED, PUB, "vine-test", PREFIX, T);
  const mutate = (f: (b: Uint8Array) => void) => {
    const b = body.slice();
    f(b);
    return b;
  };
  const cases: [string, Uint8Array, Partial<VerifyClaimOptions>][] = [
    ["ok", body, {}],
    ["malformed", new Uint8Array(0), {}],
    ["malformed", body.subarray(0, 141), {}],
    ["malformed", Uint8Array.from([...body, 0]), {}],
    ["malformed", Uint8Array.from([0x02, ...body]), {}], // 143 bytes but not a CLAIM type byte
    ["malformed", mutate((b) => (b[0] = 0)), {}], // version 0
    ["malformed", mutate((b) => (b[68] = 1)), {}], // 10.42.1.1/24: host bits set
    ["malformed", mutate((b) => (b[69] = 33)), {}], // prefix length 33
    ["malformed", mutate((b) => (b[70] = 0x00, b[71] = 0x20)), {}], // issued_at above 2^53 - 1
    ["unknown_identity", body, { lookup: () => null }],
    ["bad_signature", mutate((b) => (b[141]! ^= 0x80)), {}],
    ["wrong_network", body, { networkId: "vine-test " }],
    ["prefix_mismatch", body, { lookup: () => ({ prefix: { addr: 0x0a2a0200, len: 24 } }) }],
    ["prefix_mismatch", body, { lookup: () => ({ prefix: { addr: 0x0a2a0100, len: 25 } }) }],
    ["stale", body, { nowMs: T + 24 * 3600_000 + 1 }],
  ];
  cases.forEach(([want, bytes, over], i) => {
    test(`#${i} ${want}: ${bytes.length} bytes, ${Object.keys(over).join(", ") || "default options"}`, () => {
      const r = verifyClaim(bytes, opts(over));
      expect(r.ok ? "ok" : r.reason).toBe(want);
    });
  });

  test("the configured prefix may be given with a signed address (Int32 views): still accepted", () => {
    expect(verifyClaim(body, opts({ lookup: () => ({ prefix: { addr: 0x0a2a0100 | 0, len: 24 } }) })).ok).toBe(true);
    const high = { addr: 0xc0a80000, len: 16 };
    const b = signClaim(SEED, PUB, "vine-test", high, T);
    expect(verifyClaim(b, opts({ lookup: () => ({ prefix: { addr: 0xc0a80000 | 0, len: 16 } }) })).ok).toBe(true);
  });

  test("bad_signature: a malleable signature (S + L, same R) is refused", () => {
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const s = body.subarray(110, 142);
    let S = 0n;
    for (let i = 31; i >= 0; i--) S = (S << 8n) | BigInt(s[i]!);
    const S2 = S + L;
    expect(S2 < 1n << 256n).toBe(true);
    const m = body.slice();
    let v = S2;
    for (let i = 0; i < 32; i++) {
      m[110 + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    expect(verifyClaim(m, opts())).toEqual({ ok: false, reason: "bad_signature" });
  });

  test("the order of checks: malformed, unknown_identity, bad_signature, wrong_network, prefix_mismatch, stale", () => {
    const everything = { networkId: "other", nowMs: 0, lookup: () => ({ prefix: { addr: 0, len: 0 } }) };
    // All of wrong network, wrong prefix and stale: the network is reported.
    expect(verifyClaim(body, opts(everything))).toEqual({ ok: false, reason: "wrong_network" });
    // Wrong prefix and stale: the prefix.
    expect(verifyClaim(body, opts({ ...everything, networkId: "vine-test" }))).toEqual({ ok: false, reason: "prefix_mismatch" });
    // A bad signature hides the rest; an unknown identity hides a bad signature; malformed hides all.
    const badSig = mutate((b) => (b[100]! ^= 1));
    expect(verifyClaim(badSig, opts(everything))).toEqual({ ok: false, reason: "bad_signature" });
    let looked = 0;
    expect(verifyClaim(badSig, opts({ ...everything, lookup: () => (looked++, null) }))).toEqual({ ok: false, reason: "unknown_identity" });
    expect(looked).toBe(1);
    const broken = mutate((b) => ((b[0] = 9), (b[100]! ^= 1)));
    looked = 0;
    expect(verifyClaim(broken, opts({ lookup: () => (looked++, null) }))).toEqual({ ok: false, reason: "malformed" });
    expect(looked).toBe(0); // no lookup for garbage
  });

  test("lookup is asked with the claim's key; the verdict's key is a copy", () => {
    const seen: string[] = [];
    const r = verifyClaim(body, opts({ lookup: (k) => (seen.push(hex(k)), { prefix: PREFIX }) }));
    expect(seen).toEqual([hex(PUB)]);
    expect(r.ok).toBe(true);
    if (r.ok) {
      r.publicKey.fill(0);
      expect(hex(body.subarray(1, 33))).toBe(hex(PUB));
    }
  });
});
