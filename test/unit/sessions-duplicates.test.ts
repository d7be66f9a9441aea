// Duplicate handshake initiations: an initiator sends the same initiation (the same bytes) to several
// paths at once, so the responder gets copies. The first is answered; a byte-identical copy is
// dropped before any DH work and counted as handshake_duplicates (not handshake_replayed), and
// nothing that would otherwise be refused gets through. Two simulated hosts (sessions-sim.ts) on a
// fake clock; a's initiations are captured and handed to b by hand.

import { afterAll, describe, expect, test } from "bun:test";
import { setSystemTime } from "bun:test";
import { setMonoClockForTests } from "../../src/clock.ts";
import { rekeyTimeout } from "../../src/wg/constants.ts";
import { RecentInitiations } from "../../src/wg/recent-initiations.ts";
import { simPair, type SimHost } from "./sessions-sim.ts";
import type { Origin } from "../../src/daemon/sessions.ts";

afterAll(() => {
  setSystemTime();
  setMonoClockForTests(null);
});

/** a's initiations never reach the wire (captured instead); b's responses are captured too. */
function captured() {
  const { clock, a, b } = simPair({ wire: 1, command: 1, event: 1, handshake: () => 1 });
  const initiations: Uint8Array[] = [];
  const responses: Uint8Array[] = [];
  a.dropOut = (bytes) => {
    if (bytes[0] === 1) initiations.push(bytes.slice());
    return true;
  };
  b.dropOut = (bytes) => {
    if (bytes[0] === 2) responses.push(bytes.slice());
    return true;
  };
  const origin: Origin = { ip: a.ip, port: 4100, via: -1 };
  const src = new Uint8Array(6);
  new DataView(src.buffer).setUint32(0, a.ip);
  new DataView(src.buffer).setUint16(4, 4100);
  const deliver = (to: SimHost, msg: Uint8Array, from: Origin = origin) => to.sessions.onHandshakeMessage(msg.slice(), from, src, clock.now);
  return { clock, a, b, initiations, responses, deliver, origin };
}

describe("duplicate initiations", () => {
  test("the same initiation twice: one response, one handshake_duplicates, no handshake_replayed", () => {
    const { clock, a, b, initiations, responses, deliver } = captured();
    a.sessions.want(a.peer, clock.now);
    expect(initiations.length).toBe(1);
    const first = initiations[0]!;

    deliver(b, first);
    expect(responses.length).toBe(1);
    expect(b.counters.get("handshakes_completed")).toBe(1);

    // The same bytes again, as if through the relay: no second response, no DH, not a "replay".
    deliver(b, first, { ip: 0, port: 0, via: 0 });
    expect(responses.length).toBe(1);
    expect(b.counters.get("handshake_duplicates")).toBe(1);
    expect(b.counters.get("handshake_duplicates", "a")).toBe(1); // counted against the sender
    expect(b.counters.get("handshake_replayed")).toBe(0);
    expect(b.counters.get("handshakes_completed")).toBe(1);
    expect(b.counters.get("handshake_failed")).toBe(0);
  });

  test("a different initiation from the same peer still completes; copies of either are dropped", () => {
    const { clock, a, b, initiations, responses, deliver } = captured();
    a.sessions.want(a.peer, clock.now);
    deliver(b, initiations[0]!);
    deliver(b, initiations[0]!);
    // No answer reached a: after REKEY_TIMEOUT it sends a new initiation (new ephemeral, timestamp).
    clock.runUntil(clock.now + rekeyTimeout() + 500);
    expect(initiations.length).toBeGreaterThanOrEqual(2);
    const second = initiations[initiations.length - 1]!;
    expect(Buffer.from(second).equals(Buffer.from(initiations[0]!))).toBe(false);

    deliver(b, second);
    expect(responses.length).toBe(2);
    expect(b.counters.get("handshakes_completed")).toBe(2);
    deliver(b, second);
    deliver(b, initiations[0]!);
    expect(responses.length).toBe(2);
    expect(b.counters.get("handshake_duplicates")).toBe(3);
    expect(b.counters.get("handshake_replayed")).toBe(0);

    // The second response completes the handshake at a: the session works.
    a.dropOut = () => false;
    b.dropOut = () => false;
    a.sessions.onHandshakeMessage(responses[1]!.slice(), { ip: b.ip, port: 4100, via: -1 }, new Uint8Array(6), clock.now);
    expect(a.counters.get("handshakes_completed")).toBe(1);
    clock.runUntil(clock.now + 20); // the keypair reaches the workers
    expect(a.sessions.hasSession(a.peer)).toBe(true);
  });

  test("nothing that would be refused gets through: an older initiation after a newer one is still a replay", () => {
    const { clock, a, b, initiations, responses, deliver } = captured();
    a.sessions.want(a.peer, clock.now);
    clock.runUntil(clock.now + rekeyTimeout() + 500);
    expect(initiations.length).toBeGreaterThanOrEqual(2);
    const older = initiations[0]!;
    const newer = initiations[initiations.length - 1]!;
    deliver(b, newer);
    expect(responses.length).toBe(1);
    // The older one was never seen by b: it is authenticated, then refused by its timestamp...
    deliver(b, older);
    expect(b.counters.get("handshake_replayed")).toBe(1);
    // ...and its copies are dropped without being processed again.
    deliver(b, older);
    expect(b.counters.get("handshake_replayed")).toBe(1);
    expect(b.counters.get("handshake_duplicates")).toBe(1);
    expect(responses.length).toBe(1);
  });

  test("a changed byte is not a copy: mac1 fails before the cache is consulted", () => {
    const { clock, a, b, initiations, responses, deliver } = captured();
    a.sessions.want(a.peer, clock.now);
    const first = initiations[0]!;
    deliver(b, first);
    const forged = first.slice();
    forged[100] ^= 1; // inside the encrypted timestamp; mac1 unchanged
    deliver(b, forged);
    expect(b.counters.get("handshake_bad_mac1")).toBe(1);
    expect(b.counters.get("handshake_duplicates")).toBe(0);
    expect(responses.length).toBe(1);
  });

  test("a peer that is forgotten (removed) loses its entries", () => {
    const { clock, a, b, initiations, responses, deliver } = captured();
    a.sessions.want(a.peer, clock.now);
    deliver(b, initiations[0]!);
    b.sessions.forget(b.peer);
    deliver(b, initiations[0]!);
    // Processed again (the peer's replay state went with it): answered, not counted as a copy.
    expect(b.counters.get("handshake_duplicates")).toBe(0);
    expect(responses.length).toBe(2);
  });
});

describe("RecentInitiations", () => {
  const msg = (seed: number, slotBits: number) => {
    const m = new Uint8Array(148);
    for (let i = 0; i < m.length; i++) m[i] = (seed * 31 + i * 7) & 255;
    new DataView(m.buffer).setUint32(116, slotBits, true); // first 32 bits of mac1 pick the slot
    return m;
  };

  test("finds what was added, by the whole mac1", () => {
    const r = new RecentInitiations(8);
    const m = msg(1, 5);
    expect(r.lookup(m)).toBe(-1);
    r.add(m, 3);
    expect(r.lookup(m)).toBe(3);
    const other = m.slice();
    other[131] ^= 1; // last byte of mac1
    expect(r.lookup(other)).toBe(-1);
    const mac2Only = m.slice();
    mac2Only[140] ^= 1; // mac2 is not part of the key
    expect(r.lookup(mac2Only)).toBe(3);
  });

  test("fixed size: a later initiation in the same slot replaces the older one", () => {
    const r = new RecentInitiations(8);
    const m1 = msg(1, 2);
    const m2 = msg(2, 2 + 8); // same slot in 8
    r.add(m1, 1);
    r.add(m2, 2);
    expect(r.lookup(m1)).toBe(-1);
    expect(r.lookup(m2)).toBe(2);
  });

  test("forgetPeer clears only that peer", () => {
    const r = new RecentInitiations(8);
    const m1 = msg(1, 1);
    const m2 = msg(2, 2);
    r.add(m1, 1);
    r.add(m2, 2);
    r.forgetPeer(1);
    expect(r.lookup(m1)).toBe(-1);
    expect(r.lookup(m2)).toBe(2);
  });

  test("capacity must be a power of two", () => {
    expect(() => new RecentInitiations(1000)).toThrow();
    expect(() => new RecentInitiations(0)).toThrow();
  });
});
