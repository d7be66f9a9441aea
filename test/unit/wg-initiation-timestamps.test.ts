// Initiation timestamps never go backwards per peer, even when the wall clock does, and even across
// a restart (the store): a WireGuard responder that saw the last one accepts the next.

import { describe, expect, test } from "bun:test";
import { tai64n, tai64nCompare, tai64nToMs } from "../../src/crypto/tai64n.ts";
import { InitiationTimestamps, type TimestampStore } from "../../src/wg/initiation-timestamps.ts";
import { Handshaker } from "../../src/wg/handshake.ts";
import { generateX25519KeyPair } from "../../src/crypto/x25519.ts";

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function memoryStore(): TimestampStore & { rows: Map<string, Uint8Array>; saves: number } {
  const rows = new Map<string, Uint8Array>();
  const s = {
    rows,
    saves: 0,
    load: (k: Uint8Array) => rows.get(Buffer.from(k).toString("hex")) ?? null,
    save: (k: Uint8Array, ts: Uint8Array) => {
      s.saves++;
      rows.set(Buffer.from(k).toString("hex"), ts.slice());
    },
  };
  return s;
}

describe("InitiationTimestamps", () => {
  test("a clock that runs forward: the clock's own timestamp, recorded per peer", () => {
    let now = T0;
    const store = memoryStore();
    const t = new InitiationTimestamps(store, () => now);
    const a1 = t.next(KEY_A);
    expect(a1.behindMs).toBe(0);
    expect(Buffer.from(a1.timestamp).equals(Buffer.from(tai64n(T0)))).toBe(true);
    now += 5000;
    const a2 = t.next(KEY_A);
    expect(Buffer.from(a2.timestamp).equals(Buffer.from(tai64n(T0 + 5000)))).toBe(true);
    expect(store.saves).toBe(2);
  });

  test("a clock set back an hour: each timestamp is one step after the last, and says how far behind", () => {
    let now = T0;
    const t = new InitiationTimestamps(null, () => now);
    const before = t.next(KEY_A).timestamp;
    now -= HOUR;
    const n1 = t.next(KEY_A);
    expect(tai64nCompare(n1.timestamp, before)).toBeGreaterThan(0);
    expect(n1.behindMs).toBeGreaterThan(HOUR - 100);
    expect(n1.behindMs).toBeLessThanOrEqual(HOUR);
    const n2 = t.next(KEY_A);
    expect(tai64nCompare(n2.timestamp, n1.timestamp)).toBeGreaterThan(0);
    // Another peer never saw the later timestamp: it gets the clock's.
    expect(Buffer.from(t.next(KEY_B).timestamp).equals(Buffer.from(tai64n(now)))).toBe(true);
    // Once the clock passes the last one sent, it is used again.
    now = T0 + 10_000;
    const n3 = t.next(KEY_A);
    expect(n3.behindMs).toBe(0);
    expect(tai64nToMs(n3.timestamp)).toBe(tai64nToMs(tai64n(T0 + 10_000)));
  });

  test("across a restart with the clock still behind: the stored timestamp is the floor", () => {
    let now = T0;
    const store = memoryStore();
    const seen = new InitiationTimestamps(store, () => now).next(KEY_A).timestamp;
    now -= HOUR; // the clock steps back, then the daemon restarts
    const restarted = new InitiationTimestamps(store, () => now);
    const n = restarted.next(KEY_A);
    expect(tai64nCompare(n.timestamp, seen)).toBeGreaterThan(0);
    expect(n.behindMs).toBeGreaterThan(HOUR - 100);
  });

  test("a stock responder accepts the restarted initiator's initiation (timestamp greater than the last seen)", () => {
    const ikA = generateX25519KeyPair();
    const ikB = generateX25519KeyPair();
    const psk = new Uint8Array(32);
    const responder = new Handshaker(ikA);
    let now = T0;
    const store = memoryStore();
    const first = new InitiationTimestamps(store, () => now).next(ikA.publicKey).timestamp;
    const m1 = new Handshaker(ikB).createInitiation(ikA.publicKey, psk, 1, null, 0, first).message;
    const seen = responder.consumeInitiation(m1)!.timestamp;
    now -= HOUR;
    // Without the floor, the restarted host would send its clock's timestamp: a replay to the responder.
    const naive = responder.consumeInitiation(new Handshaker(ikB).createInitiation(ikA.publicKey, psk, 2, null, 0, tai64n(now)).message)!.timestamp;
    expect(tai64nCompare(naive, seen)).toBeLessThan(0);
    const next = new InitiationTimestamps(store, () => now).next(ikA.publicKey).timestamp;
    const got = responder.consumeInitiation(new Handshaker(ikB).createInitiation(ikA.publicKey, psk, 3, null, 0, next).message)!.timestamp;
    expect(tai64nCompare(got, seen)).toBeGreaterThan(0);
  });
});
