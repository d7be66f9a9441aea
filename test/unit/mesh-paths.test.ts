// Path selection with a fake clock and a simulated network: each path (a direct endpoint, or a relay)
// is a link that delivers or drops each probe as the test says; replies come back after `rttMs`,
// reported the way the daemon reports them (an authenticated packet, then the PROBE_REPLY).

import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS, MAX_CANDIDATES, PathSelector, type Endpoint, type PathAction, type PathPolicy, type PathTimings } from "../../src/mesh/paths.ts";

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

  /** When tick() emitted an action (for actions that went through handle()). */
  readonly when = new WeakMap<PathAction, number>();

  handle(actions: PathAction[]): void {
    for (const a of actions) {
      this.log.push(a);
      this.when.set(a, this.now);
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
    s.run(21_000); // idle
    expect(s.of("probe", mark).length).toBe(2); // 10 s period
    s.traffic = true;
    mark = s.log.length;
    s.run(23_000);
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
    s.run(10_200); // one idle probe (at 10050) later
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

// ------------------------------------------------------------------------------------------------
// Behaviours one by one, each with its own clock and network, and the invariants that must hold
// whatever the events.

/** Every switch starts from where the previous one (or the initial view) left the peer. */
function expectContinuous(s: Sim, peer: string, initial: string): void {
  let cls = initial;
  for (const a of s.log) {
    if (a.kind !== "switch" || a.peer !== peer) continue;
    expect(a.from.cls).toBe(cls as never);
    // A switch changes something: the class, the endpoint or the relay.
    expect(JSON.stringify([a.from.cls, a.from.endpoint, a.from.via])).not.toBe(JSON.stringify([a.to.cls, a.to.endpoint, a.to.via]));
    cls = a.to.cls;
  }
  expect(s.sel.view(peer).cls).toBe(cls as never);
}

describe("behaviours", () => {
  test("static endpoint: starts direct and stays direct for 60 s while it answers (idle, then busy)", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E1 });
    s.run(30_000);
    s.traffic = true;
    s.run(60_000);
    expect(s.of("switch")).toHaveLength(0);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E1, since: 0, rttMs: 20 });
    expect(s.sel.stats()).toEqual({ fallbackTransitions: 0, promotions: 0, relayUsage: 0, unknownProbeReplies: 0 });
    // Proven from the first reply on: nothing but probes of the active endpoint afterwards.
    const afterProof = s.log.slice(2);
    expect(afterProof.every((a) => a.kind === "probe" && a.endpoint?.port === E1.port && a.via === null)).toBe(true);
  });

  test("no endpoint + a live relay, allowSignalingUpgrade=true: relay and a lookup on the first tick", () => {
    const s = new Sim(BOTH);
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    const first = s.sel.tick(10);
    expect(first.map((a) => a.kind).sort()).toEqual(["lookup", "probe", "switch"]);
    const sw = first.find((a) => a.kind === "switch")!;
    expect(sw).toMatchObject({ kind: "switch", peer: P, from: { cls: "none" }, to: { cls: "relay", via: "relay-r", endpoint: null, since: 10 } });
    expect(first.find((a) => a.kind === "probe")).toMatchObject({ endpoint: null, via: "relay-r" });
    expect(s.sel.stats().relayUsage).toBe(1);
  });

  test("no endpoint + a live relay, allowSignalingUpgrade=false: relay at once, and no lookup is ever emitted", () => {
    const s = new Sim({ allowRelay: true, allowSignalingUpgrade: false });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(50);
    expect(s.sel.view(P)).toMatchObject({ cls: "relay", via: "relay-r", since: 50 });
    s.run(60_000);
    expect(s.of("lookup")).toHaveLength(0);
    expect(s.of("punch")).toHaveLength(0);
    expect(s.of("switch")).toHaveLength(1);
  });

  test("onSignaled: a punch to every endpoint exactly every punchIntervalMs for punchDurationMs, fresh probe ids each time", () => {
    const s = new Sim(BOTH, { punchIntervalMs: 300, punchDurationMs: 1500 });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.run(1000);
    s.sel.onSignaled(P, [E2, LAN, { ip: 0, port: 9 } /* invalid: skipped */], 1000);
    s.run(10_000);
    const punches = s.of("punch");
    // The first on the next tick (1050), then every 300 ms until 1000 + 1500, exclusive.
    expect(punches.map((p) => s.when.get(p))).toEqual([1050, 1350, 1650, 1950, 2250]);
    for (const p of punches) {
      expect(p.endpoints).toEqual([E2, LAN]);
      expect(p.probeIds).toHaveLength(2);
    }
    const ids = punches.flatMap((p) => p.probeIds);
    expect(new Set(ids).size).toBe(ids.length);
    expect(s.sel.view(P).cls).toBe("none"); // nothing answered
    // A second ENDPOINTS restarts the window.
    s.sel.onSignaled(P, [E2], 10_000);
    s.run(20_000);
    expect(s.of("punch").slice(5).map((p) => s.when.get(p))).toEqual([10_050, 10_350, 10_650, 10_950, 11_250]);
  });

  test("first authenticated direct packet while punching: onAuthenticated itself returns the switch to signaling_then_direct", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.run(200);
    s.sel.onSignaled(P, [E2], 200);
    s.run(600); // punching, nothing answers yet
    expect(s.of("punch").length).toBeGreaterThan(1);
    const got = s.sel.onAuthenticated(P, { endpoint: E2 }, 610);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ kind: "switch", peer: P, from: { cls: "none" }, to: { cls: "signaling_then_direct", endpoint: E2, since: 610 } });
    expect((got[0] as Extract<PathAction, { kind: "switch" }>).reason).toContain("hole punched");
    // The punching stops with the switch.
    const mark = s.log.length;
    s.run(3000);
    expect(s.of("punch", mark)).toHaveLength(0);
  });

  test("first authenticated direct packet while punching from relay (never fell back): promoted at once, counted", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(500);
    s.sel.onSignaled(P, [E2], 500);
    s.run(700);
    const got = s.sel.onAuthenticated(P, { endpoint: E2 }, 710);
    expect(got).toEqual([expect.objectContaining({ kind: "switch", to: expect.objectContaining({ cls: "signaling_then_direct", endpoint: E2 }) })]);
    expect(s.sel.stats()).toMatchObject({ promotions: 1, relayUsage: 0, fallbackTransitions: 0 });
  });

  test("active direct path silent for deadAfterMs → switch to relay with a reason; fallbackTransitions counted once", () => {
    const deadAfterMs = 1200;
    const s = new Sim(BOTH, { deadAfterMs });
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(2000);
    s.link(E1, down);
    const mark = s.log.length;
    s.run(10_000);
    const lost = s.of("probe", mark).filter((p) => p.endpoint?.port === E1.port);
    const sw = s.of("switch", mark);
    expect(sw).toHaveLength(1);
    expect(sw[0]).toMatchObject({ from: { cls: "direct", endpoint: E1 }, to: { cls: "relay", via: "relay-r" } });
    expect(sw[0]!.reason).toMatch(/^direct path stopped answering: \d+ probes unanswered over \d+ ms$/);
    const silentMs = Number(/over (\d+) ms/.exec(sw[0]!.reason)![1]);
    expect(silentMs).toBeGreaterThanOrEqual(deadAfterMs);
    expect(silentMs).toBeLessThan(deadAfterMs + 200);
    expect(Number(/: (\d+) probes/.exec(sw[0]!.reason)![1])).toBeGreaterThanOrEqual(3);
    expect(lost.length).toBeGreaterThanOrEqual(3);
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 1, relayUsage: 1 });
  });

  test("while on relay, the direct candidate is probed in the background with a bounded exponential backoff", () => {
    const s = new Sim(BOTH, { candidateBackoffMaxMs: 4000 });
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, down);
    s.run(60_000);
    const fallback = s.of("switch");
    expect(fallback).toHaveLength(1);
    expect(fallback[0]!.to.cls).toBe("relay");
    const after = s.log.indexOf(fallback[0]!);
    const times = s.of("probe", after + 1).filter((p) => p.endpoint?.port === E1.port).map((p) => s.when.get(p)!);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(times.length).toBeGreaterThan(10);
    expect(times[0]! - s.when.get(fallback[0]!)!).toBeLessThanOrEqual(200); // at once
    expect(gaps[0]!).toBeLessThanOrEqual(400); // fast at first
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!); // backs off
    expect(Math.max(...gaps)).toBeLessThanOrEqual(4000 + 50);
    expect(gaps.at(-1)).toBe(4000); // up to the cap, and stays there
    // The relay keeps carrying the peer meanwhile.
    expect(s.sel.view(P)).toMatchObject({ cls: "relay", via: "relay-r" });
    expect(s.of("probe", after + 1).filter((p) => p.via === "relay-r").length).toBeGreaterThan(100);
  });

  test("promotion after a fallback waits for holdDownMs even when promoteAfterOk replies came long before", () => {
    const holdDownMs = 6000;
    const s = new Sim(BOTH, { holdDownMs });
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, down);
    s.run(2500);
    const fallback = s.of("switch").at(-1)!;
    expect(fallback.to.cls).toBe("relay");
    s.link(E1, up);
    s.run(fallback.to.since + holdDownMs - 50);
    expect(s.sel.view(P).cls).toBe("relay"); // many replies by now, but the hold-down holds
    s.run(fallback.to.since + holdDownMs + 300);
    const promo = s.of("switch").at(-1)!;
    expect(promo.to).toMatchObject({ cls: "direct", endpoint: E1 });
    expect(promo.to.since - fallback.to.since).toBeGreaterThanOrEqual(holdDownMs);
    expect(promo.reason).toMatch(/answered \d+ consecutive probes/);
  });

  test("promotion after a fallback needs promoteAfterOk consecutive replies: promoteAfterOk-1 in a row, then a loss, never promotes", () => {
    const s = new Sim(BOTH, { holdDownMs: 0, promoteAfterOk: 5 });
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, down);
    s.run(2500);
    expect(s.sel.view(P).cls).toBe("relay");
    s.link(E1, (n) => n % 5 !== 4); // 4 answered, 1 lost, again and again
    const mark = s.log.length;
    s.run(40_000);
    expect(s.of("switch", mark)).toHaveLength(0);
    s.link(E1, up);
    s.run(45_000);
    const sw = s.of("switch", mark);
    expect(sw).toHaveLength(1);
    expect(sw[0]!.reason).toContain("answered 5 consecutive probes");
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 1, promotions: 1 });
  });

  test("a fresh but lossy endpoint of a better class does not block the promotion of a candidate that answers every probe", () => {
    // Regression: promotion used to consider only the best-ranked fresh candidate, so a static
    // endpoint answering every other probe kept a signaled endpoint with a perfect streak on relay.
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, down);
    s.run(3000);
    expect(s.sel.view(P).cls).toBe("relay");
    s.link(E1, alternate);
    s.link(E2, up);
    s.sel.onSignaled(P, [E2], 3000);
    s.run(10_000);
    expect(s.sel.view(P)).toMatchObject({ cls: "signaling_then_direct", endpoint: E2 });
    const mark = s.log.length;
    s.run(60_000);
    expect(s.of("switch", mark)).toHaveLength(0); // and it stays there
    expectContinuous(s, P, "direct");
  });

  test("ENDPOINTS naming the active endpoint do not change the active class without a switch", () => {
    // Regression: an active `direct` path learned from authenticated packets silently became
    // `signaling_then_direct` when a bootstrap peer's ENDPOINTS listed the same endpoint; the
    // operator's view then disagreed with the last logged path change.
    const sel = new PathSelector(BOTH, {}, seeded(3));
    sel.addPeer(P, { relayCapable: false }, 0);
    const sw = sel.onAuthenticated(P, { endpoint: E2 }, 10);
    expect(sw).toEqual([expect.objectContaining({ kind: "switch", to: expect.objectContaining({ cls: "direct", endpoint: E2 }) })]);
    sel.onSignaled(P, [E2, LAN], 20);
    expect(sel.view(P)).toMatchObject({ cls: "direct", endpoint: E2 });
    expect(sel.tick(30).some((a) => a.kind === "switch")).toBe(false);
    expect(sel.view(P).cls).toBe("direct");
  });

  test("lossy path (1 s of answers, 1 s of silence, repeated) over 60 s: at most a few switches", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, () => Math.floor(s.now / 1000) % 2 === 0);
    const mark = s.log.length;
    s.run(61_000);
    const sw = s.of("switch", mark);
    if (process.env.VINE_TEST_DEBUG) console.log(sw.map((a) => `${a.to.since} ${a.to.cls}`));
    // 30 on/off cycles; without hysteresis that is up to 60 switches. The hold-down doubles on each
    // flap (2, 4, 8, 16 s...), so about 9 here.
    expect(sw.length).toBeLessThanOrEqual(10);
    expect(s.sel.stats().promotions).toBeLessThanOrEqual(5);
    const promos = sw.filter((a) => a.to.cls === "direct").map((a) => a.to.since);
    const gaps = promos.slice(1).map((t, i) => t - promos[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThan(gaps[i - 1]!);
    expectContinuous(s, P, "direct");
  });

  test("lossy path (30 % random loss, seeded) over 60 s: at most a few switches", () => {
    let x = 0x9e3779b9;
    const lossy: Link = () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x % 100 >= 30;
    };
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link(E1, up);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(1000);
    s.link(E1, lossy);
    const mark = s.log.length;
    s.run(61_000);
    const sw = s.of("switch", mark);
    if (process.env.VINE_TEST_DEBUG) console.log(sw.map((a) => `${a.to.since} ${a.to.cls}`));
    // Four losses in a row kill a path under traffic (p = 0.3^4 per probe, ~300 probes): a few
    // fallbacks a minute are expected, each followed by a promotion at most.
    expect(sw.length).toBeLessThanOrEqual(10);
    expect(s.sel.stats().promotions).toBeLessThanOrEqual(s.sel.stats().fallbackTransitions);
    expectContinuous(s, P, "direct");
  });

  test("roaming: an authenticated packet from a new endpoint moves the active direct endpoint (returned by the event)", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.link(E1, up);
    s.run(1000);
    s.link(E1, down); // the peer's NAT rebinds: E1 falls silent...
    s.run(1400);
    const got = s.sel.onAuthenticated(P, { endpoint: E2 }, 1400); // ...and the next packet comes from E2
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ kind: "switch", from: { cls: "direct", endpoint: E1 }, to: { cls: "direct", endpoint: E2, since: 1400 } });
    expect(s.sel.view(P).endpoint).toEqual(E2);
    s.link(E2, up);
    s.log.push(...got);
    s.run(20_000);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E2 });
    expect(s.sel.stats()).toMatchObject({ fallbackTransitions: 0, promotions: 0 });
  });

  test("allowRelay=false never yields relay: no endpoint, live relays, 60 s", () => {
    const s = new Sim({ allowRelay: false, allowSignalingUpgrade: true });
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.addPeer("q", { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r", "relay-s"]);
    s.link("relay-r", up);
    s.link("relay-s", up);
    s.traffic = true;
    s.run(60_000);
    expect(s.sel.view(P).cls).toBe("none");
    expect(s.sel.view("q").cls).toBe("none");
    expect(s.log.some((a) => a.kind === "switch" && a.to.cls === "relay")).toBe(false);
    expect(s.log.some((a) => a.kind === "probe" && a.via !== null)).toBe(false);
    expect(s.sel.stats().relayUsage).toBe(0);
    // Relayed packets arriving anyway do not make it a path either.
    expect(s.sel.onAuthenticated(P, { via: "relay-r" }, 60_001)).toEqual([]);
    expect(s.sel.tick(60_002).some((a) => a.kind === "switch")).toBe(false);
  });

  test("an unproven path gets unprovenDeadAfterMs, a proven one deadAfterMs", () => {
    const t = { unprovenDeadAfterMs: 5000, deadAfterMs: 800 };
    const s = new Sim(BOTH, t);
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.traffic = true;
    s.run(4900);
    expect(s.sel.view(P).cls).toBe("direct"); // far beyond deadAfterMs, still tried
    s.run(5400);
    const sw = s.of("switch");
    expect(sw).toHaveLength(1);
    expect(sw[0]!.reason).toMatch(/^direct path never answered: \d+ probes unanswered over \d+ ms$/);
    expect(Number(/over (\d+) ms/.exec(sw[0]!.reason)![1])).toBeGreaterThanOrEqual(5000);
    expect(s.sel.stats().fallbackTransitions).toBe(0);
  });

  test("the only relay is kept when it goes silent: no relay↔none flapping over 60 s", () => {
    const s = new Sim();
    s.sel.addPeer(P, { relayCapable: false }, 0);
    s.sel.setRelays(["relay-r"]);
    s.link("relay-r", up);
    s.run(1000);
    expect(s.sel.view(P)).toMatchObject({ cls: "relay", via: "relay-r" });
    s.traffic = true;
    s.link("relay-r", down);
    s.run(61_000);
    expect(s.of("switch")).toHaveLength(1); // none → relay at the start, nothing after
    expect(s.sel.view(P)).toMatchObject({ cls: "relay", via: "relay-r", since: 50 });
    const late = s.of("probe").filter((p) => p.via === "relay-r" && s.log.indexOf(p) > s.log.length / 2);
    expect(late.length).toBeGreaterThan(10); // still probed
    // A relay that never answered at all is kept the same way.
    const u = new Sim();
    u.sel.addPeer(P, { relayCapable: false }, 0);
    u.sel.setRelays(["relay-r"]);
    u.run(60_000);
    expect(u.of("switch")).toHaveLength(1);
    expect(u.sel.view(P).cls).toBe("relay");
  });

  test("probe replies with unknown ids are ignored and counted; duplicates count once answered", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.run(50);
    const id = s.of("probe")[0]!.probeId;
    const before = s.sel.view(P);
    for (let i = 1; i <= 100; i++) expect(s.sel.onProbeReply(P, (id + i) >>> 0, 60)).toEqual([]);
    expect(s.sel.stats().unknownProbeReplies).toBe(100);
    expect(s.sel.view(P)).toEqual(before); // no RTT, not proven by garbage
    s.sel.onProbeReply(P, id, 80);
    expect(s.sel.view(P).rttMs).toBe(30);
    s.sel.onProbeReply(P, id, 90); // the same reply again
    expect(s.sel.stats().unknownProbeReplies).toBe(101);
    expect(s.sel.view(P).rttMs).toBe(30);
  });

  test("RTT is an EWMA with gain 1/8: 20, then 100 → 30, then 100 → 38.75", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.link(E1, up);
    s.traffic = true;
    s.rttMs = 20;
    s.run(100); // probe at 50, reply at 70
    expect(s.sel.view(P).rttMs).toBe(20);
    s.rttMs = 100;
    s.run(350); // probe at 250, reply at 350
    expect(s.sel.view(P).rttMs).toBe(30);
    s.run(550); // probe at 450, reply at 550
    expect(s.sel.view(P).rttMs).toBe(38.75);
  });

  test("candidates stay bounded: 40 signaled endpoints → punches and background probes reach at most MAX_CANDIDATES", () => {
    const s = new Sim();
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    const many = Array.from({ length: 40 }, (_, i) => ({ ip: 0xc6140000 + i, port: 5000 + i }));
    s.sel.onSignaled(P, many.slice(0, 20), 0);
    s.sel.onSignaled(P, many.slice(20), 10);
    s.run(30_000);
    const punches = s.of("punch");
    expect(punches.length).toBeGreaterThan(0);
    for (const p of punches) expect(p.endpoints.length).toBeLessThanOrEqual(MAX_CANDIDATES);
    const probed = new Set(s.of("probe").map((p) => `${p.endpoint?.ip}:${p.endpoint?.port}`));
    expect(probed.size).toBeLessThanOrEqual(MAX_CANDIDATES);
    expect(probed.has(`${E1.ip}:${E1.port}`)).toBe(true); // the configured endpoint is never evicted
  });

  test("property: random events never throw and keep the invariants", () => {
    const rnd = seeded(0xabcdef);
    const pick = <T,>(xs: readonly T[]) => xs[rnd() % xs.length]!;
    const eps: Endpoint[] = [E1, E2, LAN, { ip: 0xc6120064, port: 1 }, { ip: 0, port: 0 }, { ip: -1, port: 70000 }];
    const peers = ["a", "b", "c", "relay-r"];
    const vias = ["relay-r", "relay-s", "a", "nobody"];
    for (let round = 0; round < 40; round++) {
      const policy = { allowRelay: (round & 1) === 0, allowSignalingUpgrade: (round & 2) === 0 };
      const sel = new PathSelector(policy, { holdDownMs: rnd() % 3000, promoteAfterOk: 1 + (rnd() % 4) }, seeded(round + 1));
      for (const p of peers) sel.addPeer(p, { staticEndpoint: rnd() % 2 ? pick(eps) : null, relayCapable: p.startsWith("relay") }, 0);
      const ids: number[] = [];
      const last = new Map(peers.map((p) => [p, sel.view(p)]));
      let now = 0;
      for (let step = 0; step < 1500; step++) {
        now += rnd() % 120;
        const p = pick(peers);
        let acts: PathAction[] = [];
        switch (rnd() % 8) {
          case 0:
            acts = sel.onAuthenticated(p, rnd() % 3 ? { endpoint: pick(eps) } : { via: pick(vias) }, now);
            break;
          case 1:
            acts = sel.onProbeReply(p, rnd() % 4 && ids.length ? ids[rnd() % ids.length]! : rnd(), now);
            break;
          case 2:
            sel.onSignaled(p, [pick(eps), pick(eps)], now);
            break;
          case 3:
            sel.setRelays(vias.filter(() => rnd() % 2));
            break;
          case 4:
            sel.onTraffic(p, now);
            break;
          default:
            acts = sel.tick(now);
        }
        for (const a of acts) {
          if (a.kind === "probe") ids.push(a.probeId);
          if (a.kind === "punch") ids.push(...a.probeIds);
          if (a.kind === "switch") {
            expect(a.from.cls).toBe(last.get(a.peer)!.cls);
            last.set(a.peer, a.to);
            expect(a.to.since).toBe(now);
          }
          if (!policy.allowRelay) {
            expect(a.kind === "switch" && a.to.cls === "relay").toBe(false);
            expect(a.kind === "probe" && a.via !== null).toBe(false);
          }
          if (!policy.allowSignalingUpgrade) expect(a.kind === "lookup" || a.kind === "punch").toBe(false);
        }
        if (ids.length > 500) ids.splice(0, 250);
      }
      let onRelay = 0;
      for (const p of peers) {
        const v = sel.view(p);
        expect(v.cls).toBe(last.get(p)!.cls);
        if (v.cls === "relay") {
          onRelay++;
          expect(v.via).not.toBe(p);
          expect(v.endpoint).toBeNull();
        } else if (v.cls === "none") expect(v.endpoint === null && v.via === null).toBe(true);
        else expect(v.endpoint !== null && v.via === null && v.endpoint.ip > 0 && v.endpoint.port > 0 && v.endpoint.port < 65536).toBe(true);
      }
      expect(sel.stats().relayUsage).toBe(onRelay);
    }
  });
});

describe("revival after an outage of this host's own network", () => {
  // Two peers on direct paths; the host's router drops everything for `outageMs`, long enough for the
  // background probing of both candidates to back off towards candidateBackoffMaxMs (15 s).
  const Q = "peer-q";
  function outage(outageMs: number): { s: Sim; back: number } {
    const s = new Sim(BOTH);
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.addPeer(Q, { staticEndpoint: E2, relayCapable: false }, 0);
    s.link(E1, up);
    s.link(E2, up);
    s.traffic = true;
    s.run(1000);
    expect(s.sel.view(P).cls).toBe("direct");
    expect(s.sel.view(Q).cls).toBe("direct");
    s.link(E1, down);
    s.link(E2, down);
    s.run(1000 + outageMs);
    expect(s.sel.view(P).cls).toBe("none");
    expect(s.sel.view(Q).cls).toBe("none");
    s.link(E1, up);
    s.link(E2, up);
    return { s, back: s.now };
  }
  const firstProbeOf = (s: Sim, ep: Endpoint, from: number) => s.of("probe", from).find((p) => p.endpoint?.port === ep.port);

  test("without news from any peer, a backed-off candidate waits out its backoff (the baseline)", () => {
    const { s, back } = outage(20_000);
    const mark = s.log.length;
    s.run(back + 1000);
    expect(firstProbeOf(s, E1, mark)).toBeUndefined(); // the next background probe is seconds away
  });

  test("a dead path answering again (Q's packet arrives) probes every other peer's candidates at once and asks for endpoints", () => {
    const { s, back } = outage(20_000);
    const mark = s.log.length;
    // Q's own probe or keepalive gets through first: an authenticated packet on Q's dead endpoint.
    s.log.push(...s.sel.onAuthenticated(Q, { endpoint: E2 }, back + 10));
    expect(s.sel.view(Q)).toMatchObject({ cls: "direct", endpoint: E2 }); // Q itself: back at once
    s.run(back + 1000);
    const probe = firstProbeOf(s, E1, mark);
    expect(probe).toBeDefined();
    expect(s.when.get(probe!)! - back).toBeLessThanOrEqual(100); // on the next tick, not after the backoff
    expect(s.of("lookup", mark).filter((l) => l.peer === P).length).toBeGreaterThanOrEqual(1);
    expect(s.sel.view(P)).toMatchObject({ cls: "direct", endpoint: E1 }); // and P is back within the second
  });

  test("revival is rate-limited: a path that keeps answering and dying does not storm the other peers", () => {
    const { s, back } = outage(20_000);
    // P stays unreachable; Q's path flaps: it answers, dies, answers... every 300 ms.
    s.link(E1, down);
    s.log.push(...s.sel.onAuthenticated(Q, { endpoint: E2 }, back + 10));
    s.link(E2, down);
    const mark = s.log.length;
    for (let t = back + 300; t <= back + 10_000; t += 300) {
      s.run(t);
      s.log.push(...s.sel.onAuthenticated(Q, { endpoint: E2 }, t));
    }
    const probes = s.of("probe", mark).filter((p) => p.endpoint?.port === E1.port).length;
    const lookups = s.of("lookup", mark).filter((l) => l.peer === P).length;
    // At most one revival per lookupFirstRetryMs (1 s): about 10 over 10 s, each a probe and a lookup.
    expect(lookups).toBeLessThanOrEqual(11);
    expect(probes).toBeLessThanOrEqual(22);
  });

  test("a peer on a proven direct path is left alone by a revival", () => {
    const s = new Sim(BOTH);
    s.sel.addPeer(P, { staticEndpoint: E1, relayCapable: false }, 0);
    s.sel.addPeer(Q, { staticEndpoint: E2, relayCapable: false }, 0);
    s.link(E1, up);
    s.link(E2, down);
    s.run(10_000); // Q never answered: its unproven path died, so its endpoint is "dead"
    expect(s.sel.view(P).cls).toBe("direct");
    expect(s.sel.view(Q).cls).toBe("none");
    const mark = s.log.length;
    s.link(E2, up);
    s.log.push(...s.sel.onAuthenticated(Q, { endpoint: E2 }, 10_010));
    s.run(12_000);
    expect(s.of("lookup", mark).filter((l) => l.peer === P)).toHaveLength(0);
    expect(s.of("probe", mark).filter((p) => p.peer === P).length).toBeLessThanOrEqual(1); // its idle 5 s probe at most
  });
});
