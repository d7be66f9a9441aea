// Hardening: more than a million random and mutated inputs to every decoder of untrusted bytes.
//
//   decodeControl            mesh control messages (src/mesh/messages.ts)
//   verifyClaim              signed membership claims (src/mesh/claims.ts)
//   Handshaker               consumeInitiation / consumeResponse (src/wg/handshake.ts)
//   CookieJar.consumeReply   cookie replies (src/wg/cookie.ts)
//   PacketEngine.fromUdp     the data plane's receive path (src/dataplane/engine.ts)
//   validateConfig           TOML configs (src/config/load.ts)
//
// Properties: nothing throws; nothing forged is accepted (an accepted input equals the real one on
// every authenticated byte); decoded control messages re-encode to the very same bytes; the packet
// engine counts every datagram exactly once (one drop reason or one delivery) and an unauthenticated
// datagram changes no shared state. Each target runs for a fixed number of cases with a time cap
// (a loaded machine makes the run shorter, never longer). The PRNG is seeded: FUZZ_SEED=<n>
// reproduces a run, and every failure message names the seed.

import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { createAead, createAeads } from "../../src/crypto/aead.ts";
import { generateX25519KeyPair } from "../../src/crypto/x25519.ts";
import { validateConfig } from "../../src/config/load.ts";
import { SlotAllocator } from "../../src/daemon/slots.ts";
import { HEADROOM, PacketEngine, TAILROOM, writeTransportHeader } from "../../src/dataplane/engine.ts";
import {
  allocateTables,
  KS_ACTIVE,
  NC,
  NODE_COUNTERS,
  P_ACTIVE,
  P_CURRENT,
  P_EP_IP,
  P_EP_PORT,
  P_KEY_HASH,
  P_NEXT,
  P_PREFIX,
  P_PREFIX_LEN,
  P_PREVIOUS,
  P_RX_VIA,

  P_VIA,
  RELAY_SERVICE,
  TableViews,
  type WorkerEvent,
} from "../../src/dataplane/tables.ts";
import { encodePeerId } from "../../src/identity/keys.ts";
import { signClaim, verifyClaim, type VerifyClaimOptions } from "../../src/mesh/claims.ts";
import {
  CTRL,
  decodeControl,
  encodeClaim,
  encodeEndpoints,
  encodeLookup,
  encodeProbe,
  encodeProbeReply,
  encodeRegister,
  encodeRelay,
  encodeRelayRefused,
  type ControlMessage,
} from "../../src/mesh/messages.ts";
import { CookieChecker, CookieJar } from "../../src/wg/cookie.ts";
import { Handshaker } from "../../src/wg/handshake.ts";

// ------------------------------------------------------------------------------------ harness

const SEED = Number(process.env.FUZZ_SEED ?? randomBytes(4).readUInt32LE(0)) >>> 0;
const why = (target: string, i: number) => `${target}, case ${i}, FUZZ_SEED=${SEED}`;

/** xorshift128: fast, seeded, good enough for fuzzing. */
let s0 = SEED || 1,
  s1 = 0x9e3779b9,
  s2 = 0x243f6a88,
  s3 = 0xb7e15162;
function next(): number {
  const t = s0 ^ (s0 << 11);
  s0 = s1;
  s1 = s2;
  s2 = s3;
  s3 = (s3 ^ (s3 >>> 19) ^ t ^ (t >>> 8)) >>> 0;
  return s3;
}
for (let i = 0; i < 32; i++) next();
const below = (n: number) => next() % n;
const chance = (p: number) => next() / 0x1_0000_0000 < p;
const pick = <T>(a: readonly T[]): T => a[below(a.length)]!;
function fill(b: Uint8Array, from = 0, to = b.length): Uint8Array {
  for (let i = from; i < to; i++) b[i] = next() & 0xff;
  return b;
}
const rnd = (n: number) => fill(new Uint8Array(n));

/** A mutation of `m`: bit flips, byte sets, truncation, extension, splices, or interesting values. */
function mutate(m: Uint8Array): Uint8Array {
  const r = below(10);
  if (m.length === 0 || r === 0) return rnd(below(m.length + 40));
  if (r === 1) return m.slice(0, below(m.length));
  if (r === 2) {
    const c = new Uint8Array(m.length + 1 + below(16));
    c.set(m);
    fill(c, m.length);
    return c;
  }
  const c = m.slice();
  if (r === 3) {
    // Overwrite a run with an "interesting" byte.
    const at = below(c.length);
    c.fill(pick([0x00, 0xff, 0x7f, 0x80, 0x01, 0x20]), at, Math.min(c.length, at + 1 + below(8)));
    return c;
  }
  if (r === 4) {
    // Splice a random run.
    const at = below(c.length);
    fill(c, at, Math.min(c.length, at + 1 + below(12)));
    return c;
  }
  const flips = 1 + below(r === 5 ? 8 : 2);
  for (let i = 0; i < flips; i++) c[below(c.length)]! ^= 1 << below(8);
  return c;
}

function differsOutside(a: Uint8Array, b: Uint8Array, free: [number, number][]): boolean {
  if (a.length !== b.length) return true;
  outer: for (let i = 0; i < a.length; i++) {
    for (const [lo, hi] of free) if (i >= lo && i < hi) continue outer;
    if (a[i] !== b[i]) return true;
  }
  return false;
}

/** Run `body(i)` for `count` cases or until `capMs` passes, whichever comes first; returns cases run. */
function run(target: string, count: number, capMs: number, body: (i: number) => void): number {
  const start = performance.now();
  let i = 0;
  for (; i < count; i++) {
    if ((i & 255) === 0 && performance.now() - start > capMs) break;
    try {
      body(i);
    } catch (e) {
      throw new Error(`${why(target, i)}: ${(e as Error).stack ?? e}`);
    }
  }
  ran.set(target, i);
  return i;
}
const ran = new Map<string, number>();
const TOTAL_MIN = 1_000_000;

afterAll(() => {
  const total = [...ran.values()].reduce((a, b) => a + b, 0);
  console.log(`fuzz-decoders: ${total.toLocaleString("en")} cases (FUZZ_SEED=${SEED}): ${[...ran].map(([k, v]) => `${k} ${v.toLocaleString("en")}`).join(", ")}`);
});

// ------------------------------------------------------------------------------------ decodeControl

/** Re-encode a decoded message with the public encoders. */
function reencode(m: ControlMessage): Uint8Array {
  switch (m.type) {
    case "claim":
      return encodeClaim(m.bytes);
    case "register":
      return encodeRegister(m.endpoints);
    case "lookup":
      return encodeLookup(m.requestId, m.target);
    case "endpoints":
      return encodeEndpoints(m.requestId, m.subject, m.punchNow, m.endpoints);
    case "probe":
      return encodeProbe(m.probeId, m.sentAt);
    case "probe_reply":
      return encodeProbeReply(m.probeId, m.sentAt);
    case "relay":
      return encodeRelay(CTRL.RELAY, m.peer, m.inner);
    case "relay_deliver":
      return encodeRelay(CTRL.RELAY_DELIVER, m.peer, m.inner);
    case "relay_refused":
      return encodeRelayRefused(m.peer, m.reason);
  }
}

const CLAIM_SEED = new Uint8Array(32).fill(9);
const CLAIM_PUB = ed25519.getPublicKey(CLAIM_SEED);
const CLAIM_PREFIX = { addr: 0x0a2a0100, len: 24 };
const CLAIM_T = 1_700_000_000_000;
const CLAIM_BODY = signClaim(CLAIM_SEED, CLAIM_PUB, "fuzz-net", CLAIM_PREFIX, CLAIM_T);

function wgInner(n: number): Uint8Array {
  const m = rnd(n);
  m[0] = 1 + below(4);
  m[1] = m[2] = m[3] = 0;
  return m;
}
const eps = (n: number) => Array.from({ length: n }, () => ({ ip: 1 + below(0xfffffffe), port: 1 + below(0xffff) }));
const CONTROL_SAMPLES: Uint8Array[] = [
  encodeClaim(CLAIM_BODY),
  encodeRegister([]),
  encodeRegister(eps(1)),
  encodeRegister(eps(8)),
  encodeLookup(7, rnd(32)),
  encodeEndpoints(9, rnd(32), true, eps(3)),
  encodeEndpoints(0xffffffff, rnd(32), false, []),
  encodeProbe(1, CLAIM_T),
  encodeProbeReply(0xfffffffe, 2 ** 53 - 1),
  encodeRelay(CTRL.RELAY, rnd(32), wgInner(32)),
  encodeRelay(CTRL.RELAY_DELIVER, rnd(32), wgInner(148)),
  encodeRelayRefused(rnd(32), 3),
];

describe("fuzz", () => {
  test("decodeControl: random and mutated messages, at offsets, with bad ranges", () => {
    const big = new Uint8Array(2048);
    let decoded = 0;
    const n = run("decodeControl", 600_000, 6_000, (i) => {
      let m: Uint8Array;
      const r = i % 4;
      if (r === 0) {
        // Random bytes with a plausible type byte and a plausible length.
        m = rnd(pick([0, 1, 2, 8, 13, 14, 34, 35, 37, 38, 39, 45, 50, 64, 65, 143, 144, 200]));
        if (m.length > 0 && chance(0.8)) m[0] = below(0x42);
      } else m = mutate(pick(CONTROL_SAMPLES));
      let got: ControlMessage | null;
      if (i % 3 === 0) {
        // Embedded at an offset in a larger buffer, sometimes with a wrong (even invalid) range.
        const off = below(64);
        fill(big, 0, off);
        big.set(m, off);
        fill(big, off + m.length, Math.min(big.length, off + m.length + 64));
        const len = chance(0.9) ? m.length : pick([-1, 0, m.length + 1, big.length, NaN, 1.5, Infinity]);
        got = decodeControl(big, chance(0.95) ? off : pick([-3, big.length, 2.5, NaN]), len);
        if (got && len === m.length) expect(Buffer.from(reencode(got)).equals(Buffer.from(m))).toBe(true);
      } else {
        got = decodeControl(m);
        if (got) expect(Buffer.from(reencode(got)).equals(Buffer.from(m))).toBe(true);
      }
      if (got) decoded++;
    });
    expect(n).toBeGreaterThan(10_000);
    // Mutations keep enough valid messages to exercise every accepting branch.
    expect(decoded).toBeGreaterThan(n / 100);
  });

  // ---------------------------------------------------------------------------------- verifyClaim

  test("verifyClaim: random and mutated claims are never accepted", () => {
    const opts: VerifyClaimOptions = {
      networkId: "fuzz-net",
      lookup: (pub) => (Buffer.from(pub).equals(Buffer.from(CLAIM_PUB)) ? { prefix: CLAIM_PREFIX } : null),
      nowMs: CLAIM_T,
    };
    expect(verifyClaim(CLAIM_BODY, opts).ok).toBe(true);
    expect(verifyClaim(encodeClaim(CLAIM_BODY), opts).ok).toBe(true);
    const reasons = new Map<string, number>();
    // Mutations that keep the public key reach Ed25519 verification (~0.6 ms each): a few thousand.
    let curveWork = 0;
    const n = run("verifyClaim", 50_000, 4_000, (i) => {
      let m: Uint8Array;
      if (i % 2 === 0) m = rnd(pick([0, 1, 141, 142, 143, 144]));
      else {
        m = mutate(i % 4 === 1 ? CLAIM_BODY : encodeClaim(CLAIM_BODY));
        const offset = m.length === 143 ? 1 : 0;
        const keepsKey = m.length >= 33 + offset && Buffer.from(m.subarray(1 + offset, 33 + offset)).equals(Buffer.from(CLAIM_PUB));
        if (keepsKey && curveWork++ > 2500) m[1 + offset]! ^= 0x55; // stays unknown_identity: cheap
      }
      const v = verifyClaim(m, opts);
      reasons.set(v.ok ? "ok" : v.reason, (reasons.get(v.ok ? "ok" : v.reason) ?? 0) + 1);
      if (v.ok) {
        // Only the genuine claim (with or without its type byte) verifies.
        const body = m.length === 143 ? m.subarray(1) : m;
        expect(Buffer.from(body).equals(Buffer.from(CLAIM_BODY))).toBe(true);
      }
    });
    expect(n).toBeGreaterThan(1000);
    for (const r of ["malformed", "unknown_identity", "bad_signature"]) expect(reasons.get(r) ?? 0).toBeGreaterThan(0);
  });

  // ---------------------------------------------------------------------------------- handshake

  const psk = new Uint8Array(32).fill(3);
  const ik = generateX25519KeyPair();
  const rk = generateX25519KeyPair();
  const initiator = new Handshaker(ik);
  const responder = new Handshaker(rk);
  const first = initiator.createInitiation(rk.publicKey, psk, 0x01020304);

  test("consumeInitiation: only the authenticated bytes of a real initiation authenticate", () => {
    let accepted = 0;
    const n = run("consumeInitiation", 12_000, 3_000, (i) => {
      // Half random (type 1 and the right size most of the time, so the DH and AEAD run), half mutated.
      let m: Uint8Array;
      if (i % 2 === 0) {
        m = rnd(chance(0.8) ? 148 : below(300));
        if (m.length >= 4 && chance(0.9)) m.set([1, 0, 0, 0]);
      } else m = mutate(first.message);
      const got = responder.consumeInitiation(m);
      if (got) {
        accepted++;
        // Sender index (4..8) and the macs (116..148) are not covered by the handshake's AEADs.
        expect(differsOutside(m, first.message, [[4, 8], [116, 148]])).toBe(false);
        expect(Buffer.from(got.peerPublic).equals(Buffer.from(ik.publicKey))).toBe(true);
      }
    });
    expect(n).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(n / 4);
  });

  test("consumeResponse: only the authenticated bytes of a real response authenticate", () => {
    const got = responder.consumeInitiation(first.message)!;
    const resp = responder.createResponse(got.state, psk, 0x0a0b0c0d).message;
    expect(initiator.consumeResponse(first.pending, psk, resp)).not.toBeNull();
    const n = run("consumeResponse", 12_000, 3_000, (i) => {
      let m: Uint8Array;
      if (i % 2 === 0) {
        m = rnd(chance(0.8) ? 92 : below(200));
        if (m.length >= 12 && chance(0.9)) {
          m.set([2, 0, 0, 0]);
          if (chance(0.8)) m.set([4, 3, 2, 1], 8); // our index: gets as far as the DH
        }
      } else m = mutate(resp);
      const keys = initiator.consumeResponse(first.pending, psk, m);
      if (keys) expect(differsOutside(m, resp, [[4, 8], [60, 92]])).toBe(false);
    });
    expect(n).toBeGreaterThan(500);
  });

  // ---------------------------------------------------------------------------------- cookies

  test("CookieJar.consumeReply: forged replies are refused and leave the jar as it was", () => {
    const checker = new CookieChecker(rk.publicKey);
    const src = new Uint8Array([198, 18, 0, 1, 0x10, 0x04]);
    const reply = checker.createReply(first.message, src, 0x01020304, 1000);
    const jar = new CookieJar(rk.publicKey);
    expect(jar.consumeReply(reply, first.pending.mac1, 1000)).toBe(true);
    const cookie = Buffer.from(jar.cookie(1000)!);
    let ok = 0;
    const n = run("consumeReply", 60_000, 3_000, (i) => {
      let m: Uint8Array;
      if (i % 2 === 0) {
        m = rnd(chance(0.8) ? 64 : below(100));
        if (m.length >= 4 && chance(0.9)) m.set([3, 0, 0, 0]);
      } else m = mutate(reply);
      const mac1 = chance(0.95) ? first.pending.mac1 : rnd(pick([0, 15, 16, 17]));
      if (jar.consumeReply(m, mac1, 1000)) {
        ok++;
        expect(differsOutside(m, reply, [[4, 8]])).toBe(false);
        expect(Buffer.from(mac1).equals(Buffer.from(first.pending.mac1))).toBe(true);
      }
      // A refused reply never replaces the cookie we hold.
      expect(Buffer.from(jar.cookie(1000)!).equals(cookie)).toBe(true);
    });
    expect(n).toBeGreaterThan(1000);
    expect(ok).toBeLessThan(n / 4);
  });

  // ---------------------------------------------------------------------------------- packet engine

  test("PacketEngine.fromUdp: every datagram counted once; unauthenticated ones change nothing", () => {
    const { a, b, c } = engines();
    // Real traffic a → b, delivered once, so later exact copies are replays.
    for (let i = 0; i < 24; i++) a.fromTun(ipPacket(A_NET + 1 + i, B_NET + 1, i * 13));
    const valid = a.sent.map((s) => s.bytes);
    for (const v of valid) b.deliver(v, a.ip);
    expect(b.tun.length).toBe(valid.length);
    const handshakeLike = [first.message, rnd(92), rnd(64)].map((m, i) => (m.set([i + 1, 0, 0, 0]), m));
    // A transport header with b's real receiver index for a (state must survive forged bodies).
    const idx = b.v.keypairs[b.v.peer(0, P_CURRENT) * 8 + 2]! >>> 0;

    const snap = () => [Buffer.from(new Uint8Array(b.v.peers.buffer.slice(0))), Buffer.from(new Uint8Array(b.v.keypairs.buffer.slice(0))), Buffer.from(b.v.peerKeys.slice())];
    const before = snap();
    const counted0 = b.counted();
    const tun0 = b.tun.length;
    const events0 = b.events.length;
    const buf = new Uint8Array(4096);
    const n = run("fromUdp", 400_000, 6_000, (i) => {
      let m: Uint8Array;
      const r = i % 5;
      if (r === 0) m = rnd(below(200));
      else if (r === 1) {
        m = rnd(32 + below(1500));
        m.set([4, 0, 0, 0]);
        if (chance(0.7)) m.set([idx & 0xff, (idx >>> 8) & 0xff, (idx >>> 16) & 0xff, idx >>> 24], 4);
      } else if (r === 2) m = mutate(pick(handshakeLike));
      else m = mutate(pick(valid));
      buf.set(m);
      b.engine.fromUdp(buf, 0, m.length, chance(0.5) ? a.ip : 0x0a0b0c0d, 4100 + below(3));
    });
    expect(b.counted() - counted0).toBe(n);
    expect(b.tun.length).toBe(tun0);
    const after = snap();
    for (let t = 0; t < before.length; t++) expect(after[t]!.equals(before[t]!)).toBe(true);
    // The only hand-off is of handshake-sized messages to the main thread (which checks mac1 first).
    expect(b.events.slice(events0).filter((e) => e.ev !== "handshake").length).toBe(0);
  });

  test("PacketEngine.fromUdp: authentic packets with random contents are each counted once", () => {
    const { a, b, c } = engines();
    const slot = b.v.peer(0, P_CURRENT);
    const idx = b.v.keypairs[slot * 8 + 2]! >>> 0;
    const key = a.sendKeyFor(b); // a's send key on its session with b
    const aead = createAead();
    const cEp = [c.peerField(b, P_EP_IP), c.peerField(b, P_EP_PORT)];
    const buf = new Uint8Array(HEADROOM + 2048 + TAILROOM);
    const counted0 = b.counted();
    let counter = 1000;
    const n = run("fromUdp-authentic", 30_000, 3_000, () => {
      let p: Uint8Array;
      const r = below(8);
      if (r === 0) p = new Uint8Array(0); // keepalive
      else if (r === 1) p = ipPacket(chance(0.7) ? A_NET + below(256) : next(), next(), below(100)); // in or out of a's prefix
      else if (r === 2) p = mutate(ipPacket(A_NET + 1, B_NET + 1, below(60)));
      else if (r === 3) p = relayEnvelope(CTRL.RELAY, pick([c.key, a.key, b.key, rnd(32)]), mutate(wgInner(32 + below(200))));
      else if (r === 4) p = relayEnvelope(CTRL.RELAY_DELIVER, pick([c.key, a.key, rnd(32)]), chance(0.5) ? mutate(wgInner(32 + below(200))) : first.message);
      else if (r === 5) p = mutate(pick(CONTROL_SAMPLES));
      else p = rnd(1 + below(300));
      if (p.length > 1800) p = p.subarray(0, 1800);
      const c0 = chance(0.05) ? counter - 1 - below(50) : counter++; // some replays
      buf.set(p, 16);
      writeTransportHeader(buf, 0, idx, c0);
      aead.seal(key, c0, buf, 16, p.length);
      b.engine.fromUdp(buf, 0, 16 + p.length + 16, a.ip, 4100);
    });
    expect(b.counted() - counted0).toBe(n);
    // Authentic traffic from a never moves c's endpoint.
    expect([c.peerField(b, P_EP_IP), c.peerField(b, P_EP_PORT)]).toEqual(cEp);
    expect(b.drop("relay_forwarded_packets")).toBeGreaterThan(0);
    expect(b.drop("control_messages_in")).toBeGreaterThan(0);
    expect(b.drop("keepalives_in")).toBeGreaterThan(0);
    expect(b.drop("drop_spoofed_source")).toBeGreaterThan(0);
    expect(b.drop("rx_packets")).toBeGreaterThan(0);
  });

  // ---------------------------------------------------------------------------------- validateConfig

  test("validateConfig: random and mutated TOML never throws; problems are well-formed", () => {
    const ids = Array.from({ length: 3 }, (_, i) => encodePeerId(ed25519.getPublicKey(new Uint8Array(32).fill(i + 1))));
    const base = `# fuzz base
[node]
name = "alpha"
network_id = "home-net"
state_dir = "/var/lib/libvine"
listen_port = 4100

[tun]
name = "vine0"
address = "10.42.0.1"
prefix_len = 24
mtu = 1400

[[bootstrap_peers]]
peer_id = "${ids[2]}"
address = "udp://198.18.0.40:4100"

[[allowed_peers]]
name = "beta"
peer_id = "${ids[0]}"
prefix = "10.42.1.0/24"
relay_capable = false
endpoint = "udp://198.18.0.11:4100"

[[allowed_peers]]
name = "gamma"
peer_id = "${ids[1]}"
prefix = "10.42.2.0/24"

[[allowed_peers]]
name = "relay"
peer_id = "${ids[2]}"
prefix = "10.42.254.0/24"
relay_capable = true
endpoint = "udp://198.18.0.40:4100"

[policy]
strict_allowlist = true
allow_relay = true
allow_signaling_upgrade = true
`;
    const good = validateConfig("base.toml", base);
    expect(good.problems).toEqual([]);
    expect(good.config).not.toBeNull();
    const lines = base.split("\n");
    const ALPHABET = `[]{}=".,'#\n\t 0123456789abcdefxyz-_:/\\+eE`;
    const VALUES = ['""', "0", "-1", "1e999", "nan", "inf", "true", "[]", "{}", "[1, \"a\"]", "{ a = 1 }", "1979-05-27T07:32:00Z", "0x7fffffffffffffff", '"udp://[::1]:0"', '"10.42.0.0/33"', '"999.1.1.1"', '"\\u0000"', `"${"x".repeat(300)}"`, "'''\nmulti\n'''"];
    let valid = 0;
    const n = run("validateConfig", 12_000, 4_000, (i) => {
      let src: string;
      const r = i % 6;
      if (r === 0) {
        // Random text from TOML's alphabet.
        src = Array.from({ length: below(120) }, () => ALPHABET[below(ALPHABET.length)]).join("");
      } else if (r === 1) {
        // Replace one value with one of another type or out of range.
        const ls = lines.slice();
        const at = below(ls.length);
        if (ls[at]!.includes("=")) ls[at] = `${ls[at]!.split("=")[0]}= ${pick(VALUES)}`;
        src = ls.join("\n");
      } else if (r === 2) {
        // Drop, duplicate or move lines.
        const ls = lines.slice();
        const at = below(ls.length);
        const op = below(3);
        if (op === 0) ls.splice(at, 1);
        else if (op === 1) ls.splice(at, 0, ls[below(ls.length)]!);
        else ls.splice(below(ls.length), 0, ...ls.splice(at, 1));
        src = ls.join("\n");
      } else if (r === 3) {
        src = base.slice(0, below(base.length));
      } else {
        // Character edits.
        const cs = base.split("");
        for (let k = 0, e = 1 + below(4); k < e; k++) {
          const at = below(cs.length);
          const op = below(3);
          if (op === 0) cs.splice(at, 1);
          else if (op === 1) cs.splice(at, 0, ALPHABET[below(ALPHABET.length)]!);
          else cs[at] = String.fromCharCode(below(0x3000));
        }
        src = cs.join("");
      }
      const res = validateConfig("fuzz.toml", src, chance(0.1) ? 0o100666 : undefined);
      if (res.config) {
        valid++;
        expect(res.problems).toEqual([]);
      } else expect(res.problems.length).toBeGreaterThan(0);
      for (const p of [...res.problems, ...res.warnings]) {
        if (p.file !== "fuzz.toml" || !Number.isInteger(p.line) || p.line < 0 || typeof p.key !== "string" || typeof p.message !== "string" || p.message.length === 0) {
          throw new Error(`malformed problem ${JSON.stringify(p)} for source ${JSON.stringify(src)}`);
        }
      }
    });
    expect(n).toBeGreaterThan(500);
    expect(valid).toBeGreaterThan(0);
  });

  test(`at least ${TOTAL_MIN.toLocaleString("en")} cases ran in total`, () => {
    const total = [...ran.values()].reduce((x, y) => x + y, 0);
    expect(total).toBeGreaterThanOrEqual(TOTAL_MIN);
  });
});

// ------------------------------------------------------------------------------------ engines in memory

const A_NET = 0x0a2a0000; // 10.42.0.0/24
const B_NET = 0x0a2a0100; // 10.42.1.0/24
const C_NET = 0x0a2a0200; // 10.42.2.0/24

/** A relay envelope around any inner bytes (the encoder refuses what the engine must survive). */
function relayEnvelope(type: number, key: Uint8Array, inner: Uint8Array): Uint8Array {
  const m = new Uint8Array(33 + inner.length);
  m[0] = type;
  m.set(key, 1);
  m.set(inner, 33);
  return m;
}

function ipPacket(src: number, dst: number, payload: number): Uint8Array {
  const len = 28 + payload;
  const p = new Uint8Array(len);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, len);
  p[8] = 64;
  p[9] = 17;
  dv.setUint32(12, src >>> 0);
  dv.setUint32(16, dst >>> 0);
  for (let i = 28; i < len; i++) p[i] = i & 0xff;
  return p;
}

class Host {
  readonly v = new TableViews(allocateTables());
  readonly sent: { bytes: Uint8Array; ip: number; port: number }[] = [];
  readonly tun: Uint8Array[] = [];
  readonly events: WorkerEvent[] = [];
  readonly engine: PacketEngine;
  readonly slots: SlotAllocator;
  readonly key = new Uint8Array(randomBytes(32));
  private readonly index = new Map<Host, number>();
  private readonly sendKeys = new Map<Host, Uint8Array>();

  constructor(
    readonly ip: number,
    readonly prefix: number,
  ) {
    this.engine = new PacketEngine(
      this.v,
      createAeads(),
      {
        sendUdp: (buf, off, len, ip, port) => {
          if (this.sent.length < 64) this.sent.push({ bytes: buf.slice(off, off + len), ip, port });
          return true;
        },
        writeTun: (buf, off, len) => {
          if (this.tun.length < 100_000) this.tun.push(buf.slice(off, off + len));
          return true;
        },
        emit: (ev) => {
          if (this.events.length < 10_000) this.events.push(ev);
        },
      },
      1420,
    );
    this.slots = new SlotAllocator(this.v);
  }

  addPeer(i: number, peer: Host): void {
    this.index.set(peer, i);
    const v = this.v;
    v.peerKeys.set(peer.key, i * 32);
    v.setPeer(i, P_KEY_HASH, peer.key[0]! | (peer.key[1]! << 8) | (peer.key[2]! << 16) | (peer.key[3]! << 24));
    v.setPeer(i, P_PREFIX, peer.prefix);
    v.setPeer(i, P_PREFIX_LEN, 24);
    for (const f of [P_CURRENT, P_PREVIOUS, P_NEXT, P_RX_VIA]) v.setPeer(i, f, -1);
    v.setPeer(i, P_VIA, -1);
    v.setPeer(i, P_EP_IP, peer.ip);
    v.setPeer(i, P_EP_PORT, 4100);
    v.setPeer(i, P_ACTIVE, 1);
  }

  sendKeyFor(peer: Host): Uint8Array {
    return this.sendKeys.get(peer)!;
  }

  peerField(peer: Host, f: number): number {
    return this.v.peer(this.index.get(peer)!, f);
  }

  fromTun(pkt: Uint8Array): void {
    const buf = new Uint8Array(HEADROOM + pkt.length + TAILROOM + 16);
    buf.set(pkt, HEADROOM);
    this.engine.fromTun(buf, HEADROOM, pkt.length);
  }

  deliver(bytes: Uint8Array, fromIp: number): void {
    const buf = new Uint8Array(bytes.length + 64);
    buf.set(bytes);
    this.engine.fromUdp(buf, 0, bytes.length, fromIp, 4100);
  }

  drop(name: (typeof NODE_COUNTERS)[number]): number {
    return this.v.node[NC[name]]!;
  }

  /** Every way a received datagram ends: a drop, a hand-off to the main thread, or a delivery. */
  counted(): number {
    let s = 0;
    for (const name of NODE_COUNTERS) {
      if (name.startsWith("drop_") || name === "handshake_messages_in" || name === "control_messages_in" || name === "keepalives_in" || name === "rx_packets" || name === "relay_forwarded_packets") {
        s += this.v.node[NC[name]]!;
      }
    }
    return s;
  }

  static session(x: Host, y: Host): void {
    const k1 = new Uint8Array(randomBytes(32));
    const k2 = new Uint8Array(randomBytes(32));
    const rx = x.slots.reserve()!;
    const ry = y.slots.reserve()!;
    const xi = x.index.get(y)!;
    const yi = y.index.get(x)!;
    x.slots.publish(rx.slot, xi, rx.localIndex, ry.localIndex, k1, k2, KS_ACTIVE);
    y.slots.publish(ry.slot, yi, ry.localIndex, rx.localIndex, k2, k1, KS_ACTIVE);
    x.engine.command({ op: "install", peer: xi, slot: rx.slot, role: "initiator" });
    y.engine.command({ op: "install", peer: yi, slot: ry.slot, role: "initiator" });
    x.sendKeys.set(y, k1);
    y.sendKeys.set(x, k2);
  }
}

/** a, b, c: b is the host under test; a and c are its peers 0 and 1, and b relays between them. */
function engines(): { a: Host; b: Host; c: Host } {
  const a = new Host(0xc6120001, A_NET);
  const b = new Host(0xc6120002, B_NET);
  const c = new Host(0xc6120003, C_NET);
  a.addPeer(0, b);
  b.addPeer(0, a);
  b.addPeer(1, c);
  c.addPeer(0, b);
  a.engine.command({ op: "routes", routes: [{ addr: B_NET, len: 24, peer: 0 }] });
  b.engine.command({ op: "routes", routes: [{ addr: A_NET, len: 24, peer: 0 }, { addr: C_NET, len: 24, peer: 1 }] });
  Atomics.store(b.v.misc, RELAY_SERVICE, 1);
  Host.session(a, b);
  Host.session(b, c);
  return { a, b, c };
}

