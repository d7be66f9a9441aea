// Path selection with a fake clock and a simulated network: each path (a direct endpoint, or a relay)
// is a link that delivers or drops each probe as the test says; replies come back after `rttMs`,
// reported the way the daemon reports them (an authenticated packet, then the PROBE_REPLY).

import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS, PathSelector, type Endpoint, type PathAction, type PathPolicy, type PathTimings } from "../../src/mesh/paths.ts";

const E1: Endpoint = { ip: 0xc6120002, port: 4100 }; // 198.18.0.2:4100
const E2: Endpoint = { ip: 0xc6120063, port: 40001 }; // 198.18.0.99:40001
const LAN: Endpoint = { ip: 0xc6130a02, port: 4100 };
const P = "peer-b";
const BOTH: PathPolicy = { allowRelay: true, allowSignalingUpgrade: true };

type Link = (n: number) => boolean;
const up: Link = () => true;
const down: Link = () => false;
const alternate: Link = (n) => n % 2 === 0; // every other probe is lost

function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

class Sim {
  now = 0;
  readonly sel: PathSelector;
  readonly log: PathAction[] = [];
  readonly links = new Map<string, Link>();
  private readonly sent = new Map<string, number>();
  private pending: { at: number; fn: () => void }[] = [];
  rttMs = 20;
  traffic = false;

  constructor(policy: PathPolicy = BOTH, timings: Partial<PathTimings> = {}, seed = 42) {
    this.sel = new PathSelector(policy, timings, seeded(seed));
  }

  link(path: Endpoint | string, l: Link): void {
    this.links.set(keyOf(path), l);
  }

  /** Advance to `until`, ticking every `step` ms and delivering replies on time. */
  run(until: number, step = 50): void {
    while (this.now < until) {
      this.now = Math.min(until, this.now + step);
      const due = this.pending.filter((p) => p.at <= this.now);
      this.pending = this.pending.filter((p) => p.at > this.now);
      for (const p of due) p.fn();
      if (this.traffic) this.sel.onTraffic(P, this.now);
      this.handle(this.sel.tick(this.now));
    }
  }

  handle(actions: PathAction[]): void {
    for (const a of actions) {
      this.log.push(a);
      if (a.kind === "probe") this.deliver(a.peer, a.endpoint ?? a.via!, a.probeId);
      if (a.kind === "punch") a.endpoints.forEach((e, i) => this.deliver(a.peer, e, a.probeIds[i]!));
    }
  }

  private deliver(peer: string, path: Endpoint | string, probeId: number): void {
    const k = keyOf(path);
    const n = this.sent.get(k) ?? 0;
    this.sent.set(k, n + 1);
    if (!(this.links.get(k) ?? down)(n)) return;
    const at = this.now + this.rttMs;
    this.pending.push({
      at,
      fn: () => {
        const from = typeof path === "string" ? { via: path } : { endpoint: path };
        this.log.push(...this.sel.onAuthenticated(peer, from, at));
        this.log.push(...this.sel.onProbeReply(peer, probeId, at));
      },
    });
  }

  of<K extends PathAction["kind"]>(kind: K, from = 0): Extract<PathAction, { kind: K }>[] {
    return this.log.slice(from).filter((a): a is Extract<PathAction, { kind: K }> => a.kind === kind);
  }
}

const keyOf = (p: Endpoint | string) => (typeof p === "string" ? `via:${p}` : `ep:${p.ip >>> 0}:${p.port}`);

describe("start", () => {
  test("a static endpoint starts direct optimistically and is probed at once", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E1, via: null, since: 0 });
    s.run(50);
    expect(s.of("probe")).toEqual([expect.objectContaining({ kind: "probe", peer: P, endpoint: E1, via: null })]);
  });

  test("no endpoint: lookup, and a live relay meanwhile", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(50);
    expect(s.of("lookup")).toHaveLength(1);
    const sw = s.of("switch");
    expect(sw).toHaveLength(1);
    expect(sw[0]!.from.cls).toBe("none");
    expect(sw[0]!.to).toMatchObject({ cls: "relay", via: "relay-r", since: 50 });
    expect(sw[0]!.reason).toContain("relay-r");
    s.run(1000);
    expect(s.sel.view(P).rttMs).toBe(20);
    expect(s.sel.stats()).toMatchObject({ relayUsage: 1, fallbackTransitions: 0 });
  });

  test("warm restart: the last good path is resumed, class included", () => {
    const s = new Sim();
    s.sel.addPeer("a", { staticEndpoint: E1, lastGood: { cls: "signaling_then_direct", endpoint: E2, via: null }, relayCapable: false }, 5);
    s.sel.addPeer("b", { lastGood: { cls: "relay", endpoint: null, via: "relay-r" }, relayCapable: false }, 5);
    expect(s.sel.view("a")).toMatchObject({ cls: "signaling_then_direct", endpoint: E2 });
    expect(s.sel.view("b")).toMatchObject({ cls: "relay", via: "relay-r" });
    // The relay list is empty until the daemon's sessions are up: the resumed relay is kept while it answers.
    s.link("relay-r", up);
    s.link(E2, up);
    s.run(50); // first probes go out before the relay's session is up...
    expect(s.sel.view("b").cls).toBe("relay");
    s.sel.setRelays(["relay-r"]); // ...which the daemon reports before any relayed reply can arrive
    s.run(10_000);
    expect(s.sel.view("b")).toMatchObject({ cls: "relay", via: "relay-r", since: 5, rttMs: 20 });
    expect(s.sel.view("a")).toMatchObject({ cls: "signaling_then_direct", since: 5 });
    expect(s.of("switch").filter((a) => a.peer === "b")).toHaveLength(0);
    const noRelay = new PathSelector({ allowRelay: false, allowSignalingUpgrade: true });
    noRelay.addPeer("b", { lastGood: { cls: "relay", endpoint: null, via: "relay-r" }, relayCapable: false }, 5);
    expect(noRelay.view("b").cls).toBe("none");
  });

  test("view of an unknown peer throws; has() tells", () => {
    const s = new Sim();
    expect(s.sel.has(P)).toBe(false);
    expect(() => s.sel.view(P)).toThrow(/unknown peer/);
    s.sel.addPeer(P, { relayCapable: false }, 0);
    expect(s.sel.has(P)).toBe(true);
    s.sel.removePeer(P);
    expect(s.sel.has(P)).toBe(false);
  });
});

describe("signaling and punching", () => {
  test("ENDPOINTS → punches every punchIntervalMs for punchDurationMs while nothing answers", () => {
    const s = new Sim(BOTH, { punchIntervalMs: 200, punchDurationMs: 2000 });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.run(100);
    s.sel.onSignaled(P, [E2, LAN], 100);
    s.run(5000);
    const punches = s.of("punch");
    expect(punches.length).toBe(10); // at 100, 300, ..., 1900
    expect(punches[0]!.endpoints).toEqual([E2, LAN]);
    expect(punches[0]!.probeIds).toHaveLength(2);
    expect(punches.every((p) => p.peer === P)).toBe(true);
    expect(s.sel.view(P).cls).toBe("none");
  });

  test("the first authenticated direct reply makes it signaling_then_direct and stops the punching", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(500);
    expect(s.sel.view(P).cls).toBe("relay");
    s.link(E2, up); // the reflexive endpoint opens; the LAN address never answers
    s.sel.onSignaled(P, [E2, LAN], 500);
    const mark = s.log.length;
    s.run(1000);
    const sw = s.of("switch", mark);
    expect(sw).toHaveLength(1);
    expect(sw[0]!.to).toMatchObject({ cls: "signaling_then_direct", endpoint: E2 });
    expect(sw[0]!.to.since).toBe(550 + 20); // punched on the tick at 550; switched by the reply itself
    expect(sw[0]!.reason).toContain("hole punched");
    expect(s.of("punch", mark)).toHaveLength(1);
    expect(s.sel.stats()).toMatchObject({ promotions: 1, relayUsage: 0 });
    // A proven direct path: no more lookups, punches or background probes; only the active path is probed.
    const mark2 = s.log.length;
    s.run(30_000);
    expect(s.of("lookup", mark2)).toHaveLength(0);
    expect(s.of("punch", mark2)).toHaveLength(0);
    expect(s.of("probe", mark2).every((p) => p.endpoint?.port === E2.port && p.via === null)).toBe(true);
  });

  test("an unknown source answering during the punch window (a NAT's own port choice) is a signaled path", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.onSignaled(P, [E2], 10);
    const mapped = { ip: E2.ip, port: 50123 };
    s.log.push(...s.sel.onAuthenticated(P, { endpoint: mapped }, 30));
    expect(s.sel.view(P)).toMatchObject({ cls: "signaling_then_direct", endpoint: mapped });
  });

  test("allowSignalingUpgrade=false: no lookup, no punch, ENDPOINTS ignored", () => {
    const s = new Sim({ allowRelay: true, allowSignalingUpgrade: false });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.link(E2, up);
    s.sel.onSignaled(P, [E2], 0);
    s.run(30_000);
    expect(s.of("lookup")).toHaveLength(0);
    expect(s.of("punch")).toHaveLength(0);
    expect(s.of("probe")).toHaveLength(0);
    expect(s.sel.view(P).cls).toBe("none");
  });

  test("lookups back off from lookupFirstRetryMs to lookupRetryMs, and stop on a proven direct path", () => {
    const s = new Sim(BOTH, { lookupFirstRetryMs: 1000, lookupRetryMs: 10_000 });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.run(40_000);
    const at = s.log.map((a, i) => [a, i] as const).filter(([a]) => a.kind === "lookup").length;
    expect(at).toBe(7); // 50, 1050, 3050, 7050, 15050, 25050, 35050
    s.link(E1, up);
    s.log.push(...s.sel.onAuthenticated(P, { endpoint: E1 }, 40_000));
    const mark = s.log.length;
    s.run(80_000);
    expect(s.of("lookup", mark)).toHaveLength(0);
  });
});

describe("liveness", () => {
  function provenDirect(timings: Partial<PathTimings> = {}): Sim {
    const s = new Sim(BOTH, timings);
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.run(1000);
    expect(s.sel.view(P).cls).toBe("direct");
    return s;
  }

  test("probed every probeIntervalMs under traffic, every probeIntervalIdleMs when idle", () => {
    const s = provenDirect();
    let mark = s.log.length;
    s.run(11_000); // idle
    expect(s.of("probe", mark).length).toBe(2); // 5 s period
    s.traffic = true;
    mark = s.log.length;
    s.run(13_000);
    expect(s.of("probe", mark).length).toBe(10); // 200 ms period
  });

  test("a dead direct path falls back to relay within deadAfterMs + a probe period, reason given, counted", () => {
    const s = provenDirect();
    s.traffic = true;
    s.run(2000);
    s.link(E1, down);
    const mark = s.log.length;
    s.run(4000);
    const sw = s.of("switch", mark);
    expect(sw).toHaveLength(1);
    expect(sw[0]!.from).toMatchObject({ cls: "direct", endpoint: E1 });
    expect(sw[0]!.to).toMatchObject({ cls: "relay", via: "relay-r" });
    expect(sw[0]!.reason).toMatch(/stopped answering: \d+ probes unanswered over \d+ ms/);
    const lastOk = 2000; // last reply arrived at about then
    expect(sw[0]!.to.since - lastOk).toBeLessThanOrEqual(DEFAULT_TIMINGS.deadAfterMs + DEFAULT_TIMINGS.probeIntervalMs + 100);
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 1, relayUsage: 1, promotions: 0 });
    // A fallback asks the bootstrap peers for fresh endpoints at once.
    expect(s.of("lookup", mark).length).toBeGreaterThanOrEqual(1);
  });

  test("while on relay the direct endpoint is probed in the background and promoted after 3 replies and the hold-down", () => {
    const s = provenDirect();
    s.traffic = true;
    s.link(E1, down);
    s.run(3000);
    const demoted = s.of("switch").at(-1)!;
    expect(demoted.to.cls).toBe("relay");
    const background = s.of("probe").filter((p) => p.endpoint?.port === E1.port && p.via === null && s.log.indexOf(p) > s.log.indexOf(demoted));
    expect(background.length).toBeGreaterThan(0);
    s.link(E1, up); // back almost at once: only the hold-down delays the promotion
    const mark = s.log.length;
    s.run(8000);
    const sw = s.of("switch", mark);
    expect(sw).toHaveLength(1);
    expect(sw[0]!.to).toMatchObject({ cls: "direct", endpoint: E1 });
    expect(sw[0]!.reason).toMatch(/answered [3-9] consecutive probes/);
    expect(sw[0]!.to.since - demoted.to.since).toBeGreaterThanOrEqual(DEFAULT_TIMINGS.holdDownMs);
    expect(sw[0]!.to.since - demoted.to.since).toBeLessThan(DEFAULT_TIMINGS.holdDownMs + 1000);
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 1, promotions: 1, relayUsage: 0 });
  });

  test("promotion needs consecutive replies even after the hold-down: two replies are not enough", () => {
    const s = provenDirect({ holdDownMs: 0 });
    s.traffic = true;
    s.link(E1, down);
    s.run(3000);
    let answered = 0;
    s.link(E1, () => ++answered <= 2); // two replies, then silence
    const mark = s.log.length;
    s.run(20_000);
    expect(answered).toBeGreaterThan(2);
    expect(s.of("switch", mark)).toHaveLength(0);
    expect(s.sel.view(P).cls).toBe("relay");
  });

  test("a lossy path does not flap: alternate losses neither kill a direct path nor promote one from relay", () => {
    const s = provenDirect();
    s.traffic = true;
    s.link(E1, alternate);
    const mark = s.log.length;
    s.run(30_000);
    expect(s.of("switch", mark)).toHaveLength(0);
    expect(s.sel.view(P).cls).toBe("direct");

    s.link(E1, down);
    s.run(32_000);
    expect(s.sel.view(P).cls).toBe("relay");
    s.link(E1, alternate);
    const mark2 = s.log.length;
    s.run(60_000);
    expect(s.of("switch", mark2)).toHaveLength(0);
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 1, promotions: 0 });
  });

  test("a path that keeps going down and up: the hold-down grows, so switches thin out", () => {
    const s = provenDirect();
    s.traffic = true;
    s.link(E1, (n) => Math.floor(n / 6) % 2 === 0); // ~1.2 s up, ~1.2 s down, by probe count
    const mark = s.log.length;
    s.run(121_000);
    const times = s.of("switch", mark).map((a) => a.to.since);
    if (process.env.VINE_TEST_DEBUG) console.log(times);
    const promotions = s.of("switch", mark).filter((a) => a.to.cls === "direct").map((a) => a.to.since);
    // Without growth a 2 s hold-down allows ~30 cycles in two minutes.
    expect(times.length).toBeLessThanOrEqual(16);
    // Later promotions are further apart than early ones.
    const gaps = promotions.slice(1).map((t, i) => t - promotions[i]!);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]! * 3);
  });

  test("an unproven path gets unprovenDeadAfterMs (a first handshake must fit), and its failure is not a fallback", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(DEFAULT_TIMINGS.unprovenDeadAfterMs - 100);
    expect(s.sel.view(P).cls).toBe("direct");
    s.run(DEFAULT_TIMINGS.unprovenDeadAfterMs + 300);
    const sw = s.of("switch");
    expect(sw).toHaveLength(1);
    expect(sw[0]!.reason).toContain("never answered");
    expect(sw[0]!.to.cls).toBe("relay");
    expect(s.sel.stats().fallbackTransitions).toBe(0);
    // Never demoted from a proven path: the first direct answer promotes at once.
    s.link(E1, up);
    s.run(30_000);
    expect(s.sel.view(P).cls).toBe("direct");
  });

  test("allowRelay=false: a dead direct path goes to none, never relay; it is taken back when it answers", () => {
    const s = new Sim({ allowRelay: false, allowSignalingUpgrade: true });
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, down);
    s.run(5000);
    expect(s.sel.view(P).cls).toBe("none");
    expect(s.of("switch").at(-1)!.reason).toContain("no other path");
    s.link(E1, up);
    s.run(40_000);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E1 });
    expect(s.log.some((a) => a.kind === "switch" && a.to.cls === "relay")).toBe(false);
    expect(s.log.some((a) => a.kind === "probe" && a.via !== null)).toBe(false);
  });
});

describe("relays", () => {
  test("a relay that goes away: the next one takes over; with none left, none", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["r1", "r2"]);
    s.link("r1", up);
    s.link("r2", up);
    s.run(500);
    expect(s.sel.view(P).via).toBe("r1");
    s.sel.setRelays(["r2"]);
    s.run(600);
    const sw = s.of("switch").at(-1)!;
    expect(sw.to).toMatchObject({ cls: "relay", via: "r2" });
    expect(sw.reason).toContain("r1 is no longer available");
    expect(s.sel.stats().fallbackTransitions).toBe(1);
    s.sel.setRelays([]);
    s.run(700);
    expect(s.sel.view(P).cls).toBe("none");
  });

  test("a relay path that stops answering moves to the next relay; the only relay is kept", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["r1", "r2"]);
    s.link("r1", up);
    s.link("r2", up);
    s.run(500);
    s.traffic = true; // busy: the relay path is probed at the fast rate
    s.link("r1", down);
    s.run(3000);
    expect(s.sel.view(P).via).toBe("r2");
    s.sel.setRelays(["r2"]);
    s.link("r2", down);
    const mark = s.log.length;
    s.run(10_000);
    expect(s.of("switch", mark)).toHaveLength(0);
    expect(s.sel.view(P).via).toBe("r2");
  });

  test("a peer is never its own relay", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: true }, 0);
    s.sel.setRelays([P]);
    s.run(1000);
    expect(s.sel.view(P).cls).toBe("none");
  });
});

describe("roaming, probes, RTT", () => {
  test("a direct packet from a new endpoint moves the path there once the old one is quiet", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.link(E1, up);
    s.run(1000);
    // Packets from both endpoints interleaved: no switch.
    for (let t = 1000; t < 2000; t += 50) {
      s.log.push(...s.sel.onAuthenticated(P, { endpoint: E1 }, t));
      s.log.push(...s.sel.onAuthenticated(P, { endpoint: E2 }, t + 10));
    }
    expect(s.of("switch")).toHaveLength(0);
    // E1 goes quiet, E2 keeps talking: roamed.
    s.link(E1, down);
    for (let t = 2000; t < 2400; t += 50) s.log.push(...s.sel.onAuthenticated(P, { endpoint: E2 }, t));
    const sw = s.of("switch");
    expect(sw).toHaveLength(1);
    expect(sw[0]!.to).toMatchObject({ cls: "direct", endpoint: E2 });
    expect(sw[0]!.reason).toContain("roamed");
    expect(s.sel.stats().fallbackTransitions).toBe(0);
  });

  test("replies to unknown, foreign or late probe ids are ignored and counted", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.addPeer("other", { relayCapable: false }, 0);
    s.run(50);
    const id = s.of("probe")[0]!.probeId;
    expect(s.sel.onProbeReply(P, (id + 1) >>> 0, 60)).toEqual([]);
    expect(s.sel.onProbeReply("other", id, 60)).toEqual([]); // right id, wrong peer
    expect(s.sel.onProbeReply(P, id, 50 + DEFAULT_TIMINGS.probeTimeoutMs + 1)).toEqual([]); // too late
    expect(s.sel.onProbeReply(P, id, 50 + DEFAULT_TIMINGS.probeTimeoutMs + 2)).toEqual([]); // and only once
    expect(s.sel.onProbeReply("nobody", id, 60)).toEqual([]);
    expect(s.sel.stats().unknownProbeReplies).toBe(5);
    expect(s.sel.view(P).rttMs).toBeNull();
  });

  test("RTT is an EWMA (gain 1/8) of probe replies on the active path", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.link(E1, up);
    s.rttMs = 20;
    s.run(100);
    expect(s.sel.view(P).rttMs).toBe(20);
    s.rttMs = 100;
    s.run(5200); // one idle probe (at 5050) later
    expect(s.sel.view(P).rttMs).toBe(30);
  });

  test("probe ids are random u32s, distinct among outstanding probes", () => {
    const sel = new PathSelector(BOTH, { probeIntervalMs: 1 });
    sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    const ids: number[] = [];
    for (let t = 1; t <= 1000; t++) for (const a of sel.tick(t)) if (a.kind === "probe") ids.push(a.probeId);
    expect(ids.length).toBeGreaterThan(900);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id <= 0xffffffff)).toBe(true);
    const sequential = ids.slice(1).filter((id, i) => id === ids[i]! + 1).length;
    expect(sequential).toBeLessThan(3);
    expect(Math.max(...ids)).toBeGreaterThan(0x80000000);
  });

  test("deterministic: the same inputs and seed give the same actions", () => {
    const runOnce = () => {
      const s = new Sim(BOTH, {}, 7);
      s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
      s.sel.setRelays(["relay-r"]);
      s.link(E1, (n) => n < 10 || n > 40);
      s.link("relay-r", up);
      s.traffic = true;
      s.run(20_000);
      return JSON.stringify(s.log);
    };
    expect(runOnce()).toBe(runOnce());
  });

  test("bad timing overrides are ignored, not trusted", () => {
    const sel = new PathSelector(BOTH, { deadAfterMs: Number.NaN, probeIntervalMs: -5, promoteAfterOk: 0 });
    expect(sel.timings.deadAfterMs).toBe(DEFAULT_TIMINGS.deadAfterMs);
    expect(sel.timings.probeIntervalMs).toBe(DEFAULT_TIMINGS.probeIntervalMs);
    expect(sel.timings.promoteAfterOk).toBe(1);
  });
});
