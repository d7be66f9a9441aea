// Key rotation on a fake clock (two simulated hosts, see sessions-sim.ts): a steady ping must lose
// nothing across several rekeys, also when a handshake round trip takes longer than REKEY_TIMEOUT
// (a loaded machine), and when the two hosts' rekeys cross.

import { afterAll, describe, expect, test } from "bun:test";
import { setSystemTime } from "bun:test";
import { rekeyTimeout, REJECT_AFTER_TIME, REKEY_AFTER_TIME, scaled } from "../../src/wg/constants.ts";
import { pingRun, runsOf, simPair, warmUp } from "./sessions-sim.ts";
import { setMonoClockForTests } from "../../src/clock.ts";

afterAll(() => {
  setSystemTime();
  setMonoClockForTests(null);
});

const ROTATIONS = 4;
const duration = scaled(REKEY_AFTER_TIME) * ROTATIONS + scaled(REJECT_AFTER_TIME);

describe("rekey under a steady ping (fake clock)", () => {
  test("fast handshakes: every echo answered, the keypair rotates", () => {
    const { clock, a, b } = simPair({ wire: 1, command: 1, event: 1, handshake: () => 5 });
    expect(warmUp(clock, a)).toBe(true);
    const lost = pingRun(clock, a, duration);
    expect(runsOf(lost)).toBe("");
    expect(a.counters.get("handshakes_completed")).toBeGreaterThanOrEqual(ROTATIONS);
    expect(a.gaveUp + b.gaveUp).toBe(0);
  });

  for (const factor of [0.6, 1.0, 1.5, 2.0]) {
    test(`handshake round trip ${factor} × REKEY_TIMEOUT: every echo answered`, () => {
      // Each host takes this long to get to a handshake message: the round trip is twice that.
      const { clock, a, b } = simPair({ wire: 1, command: 5, event: 5, handshake: () => (rekeyTimeout() * factor) / 2 });
      expect(warmUp(clock, a)).toBe(true);
    const lost = pingRun(clock, a, duration);
      expect(runsOf(lost)).toBe("");
      expect(a.counters.get("handshakes_completed")).toBeGreaterThanOrEqual(ROTATIONS);
      expect(a.gaveUp + b.gaveUp).toBe(0);
      // The responder left every rekey to the initiator: no crossing handshakes.
      expect(b.counters.get("handshake_initiations_sent")).toBe(0);
      // From one REKEY_TIMEOUT on, responses arrive after the retransmission and still count.
      if (factor >= 1) expect(a.counters.get("handshake_late_responses")).toBeGreaterThanOrEqual(ROTATIONS);
    });
  }

  test("the initiator's initiations never arrive: the responder rekeys before the keypair expires", () => {
    const { clock, a, b } = simPair({ wire: 1, command: 5, event: 5, handshake: () => 50 });
    expect(warmUp(clock, a)).toBe(true);
    // From now on every initiation a sends is lost (a one-way filter, say); b's get through.
    a.dropOut = (bytes) => bytes[0] === 1;
    const lost = pingRun(clock, a, duration);
    expect(runsOf(lost)).toBe("");
    expect(b.counters.get("handshake_initiations_sent")).toBeGreaterThanOrEqual(ROTATIONS);
  });

  test("a late response confirms one keypair; the responder's other unconfirmed keypairs are expired", () => {
    const { clock, a, b } = simPair({ wire: 1, command: 5, event: 5, handshake: () => rekeyTimeout() * 0.75 });
    expect(warmUp(clock, a)).toBe(true);
    const lost = pingRun(clock, a, duration);
    expect(runsOf(lost)).toBe("");
    // b answered a's retransmissions too, but keeps no keypair the initiator did not choose: at
    // most current, previous and the answers to the rekey in flight remain.
    let live = 0;
    for (let slot = 0; slot < 4096; slot++) if (b.v.keypair(slot, 0) !== 0 && b.v.keypair(slot, 1) === b.peer.index) live++;
    expect(live).toBeLessThanOrEqual(2 + 2);
  });

  test("jittery main threads (5..1500 ms per handshake message): every echo answered", () => {
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const { clock, a, b } = simPair({ wire: 1, command: 20, event: 20, handshake: () => 5 + rnd() * 1500 });
    expect(warmUp(clock, a)).toBe(true);
    const lost = pingRun(clock, a, duration);
    expect(runsOf(lost)).toBe("");
    expect(a.gaveUp + b.gaveUp).toBe(0);
  });
});
