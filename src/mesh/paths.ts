// Path selection per peer: a deterministic state machine driven by the daemon's clock. The daemon
// feeds it what happened (authenticated packets and where they came from, probe replies, signaled
// endpoints, traffic) and carries out the actions it returns (probe, lookup, punch, switch).
//
// Classes, best first: direct (an endpoint known without help: static, last good, or the source of
// an authenticated packet) > signaling_then_direct (learned through a bootstrap peer and reached by
// punching) > relay (through a relay-capable peer with a live session) > none.
//
// Liveness: the active path is probed; it is dead when a probe stays unanswered for deadAfterMs and
// nothing authenticated arrived on it since. Then the best remaining path takes over (a "fallback").
// While on relay, direct candidates are probed in the background, and one is promoted back after
// promoteAfterOk consecutive answers and once holdDownMs has passed since the fallback — so a lossy
// path does not flap.

import type { Endpoint } from "./messages.ts";

export type PathClass = "direct" | "signaling_then_direct" | "relay" | "none";
export type { Endpoint };

export interface PathView {
  cls: PathClass;
  endpoint: Endpoint | null;
  via: string | null;
  rttMs: number | null;
  since: number;
}

export interface PathPolicy {
  allowRelay: boolean;
  allowSignalingUpgrade: boolean;
}

export interface PathTimings {
  probeIntervalMs: number; // active path, and background candidates while on relay
  probeIntervalIdleMs: number; // active path when no traffic flows
  deadAfterMs: number; // unanswered probe age that declares a working active path dead
  unprovenDeadAfterMs: number; // the same for a path that never answered yet (a handshake must fit)
  promoteAfterOk: number; // consecutive answers before a candidate is promoted
  holdDownMs: number; // no promotion this soon after a fallback
  lookupRetryMs: number; // how often to ask bootstrap peers while no direct path exists
  punchIntervalMs: number;
  punchDurationMs: number;
  candidateBackoffMaxMs: number; // background probing of failing candidates backs off to this
}

export const DEFAULT_TIMINGS: PathTimings = {
  probeIntervalMs: 200,
  probeIntervalIdleMs: 5_000,
  deadAfterMs: 700,
  unprovenDeadAfterMs: 3_000,
  promoteAfterOk: 3,
  holdDownMs: 2_000,
  lookupRetryMs: 10_000,
  punchIntervalMs: 200,
  punchDurationMs: 6_000,
  candidateBackoffMaxMs: 15_000,
};

export type PathAction =
  | { kind: "probe"; peer: string; probeId: number; endpoint: Endpoint | null; via: string | null }
  | { kind: "lookup"; peer: string }
  | { kind: "punch"; peer: string; endpoints: Endpoint[] }
  | { kind: "switch"; peer: string; from: PathView; to: PathView; reason: string };

type Origin = "static" | "last" | "roamed" | "signaled";

interface Candidate {
  ep: Endpoint;
  origin: Origin;
  okStreak: number;
  failures: number;
  nextProbe: number;
}

interface Probe {
  sentAt: number;
  endpoint: Endpoint | null;
  via: string | null;
  active: boolean;
}

interface PeerState {
  id: string;
  relayCapable: boolean;
  active: PathView;
  proven: boolean; // something authenticated arrived on the active path
  oldestUnanswered: number; // 0 when the active path has answered since its last probe
  lastActiveProbe: number;
  lastTraffic: number;
  demotedAt: number; // 0 = never fell back
  candidates: Map<string, Candidate>;
  probes: Map<number, Probe>;
  lastLookup: number;
  punchUntil: number;
  lastPunch: number;
}

const key = (e: Endpoint) => `${e.ip >>> 0}:${e.port}`;
const same = (a: Endpoint | null, b: Endpoint | null) => !!a && !!b && a.ip >>> 0 === b.ip >>> 0 && a.port === b.port;
const directClass = (o: Origin): PathClass => (o === "signaled" ? "signaling_then_direct" : "direct");
const isDirect = (c: PathClass) => c === "direct" || c === "signaling_then_direct";

export class PathSelector {
  private readonly peers = new Map<string, PeerState>();
  private relays: string[] = [];
  private readonly t: PathTimings;
  private counters = { fallbackTransitions: 0, promotions: 0, unknownProbeReplies: 0 };

  constructor(
    private readonly policy: PathPolicy,
    timings: Partial<PathTimings> = {},
    private readonly random: () => number = () => (Math.random() * 0x1_0000_0000) >>> 0,
  ) {
    this.t = { ...DEFAULT_TIMINGS, ...timings };
  }

  addPeer(peer: string, opts: { staticEndpoint?: Endpoint | null; lastGood?: { cls: PathClass; endpoint: Endpoint | null; via: string | null } | null; relayCapable: boolean }, now = 0): void {
    if (this.peers.has(peer)) return;
    const st: PeerState = {
      id: peer,
      relayCapable: opts.relayCapable,
      active: { cls: "none", endpoint: null, via: null, rttMs: null, since: now },
      proven: false,
      oldestUnanswered: 0,
      lastActiveProbe: 0,
      lastTraffic: 0,
      demotedAt: 0,
      candidates: new Map(),
      probes: new Map(),
      lastLookup: -Infinity,
      punchUntil: 0,
      lastPunch: 0,
    };
    if (opts.staticEndpoint) this.addCandidate(st, opts.staticEndpoint, "static", now);
    const last = opts.lastGood;
    if (last && last.endpoint && isDirect(last.cls)) this.addCandidate(st, last.endpoint, last.cls === "signaling_then_direct" ? "signaled" : "last", now);
    // Optimistic start: the best known endpoint is tried first (a handshake proves it or not).
    const first = opts.staticEndpoint ? st.candidates.get(key(opts.staticEndpoint)) : last?.endpoint ? st.candidates.get(key(last.endpoint)) : undefined;
    if (first) st.active = { cls: directClass(first.origin), endpoint: first.ep, via: null, rttMs: null, since: now };
    this.peers.set(peer, st);
  }

  removePeer(peer: string): void {
    this.peers.delete(peer);
    this.relays = this.relays.filter((r) => r !== peer);
  }

  has(peer: string): boolean {
    return this.peers.has(peer);
  }

  /** Relay-capable peers with live sessions, in preference order. */
  setRelays(relays: string[]): void {
    this.relays = relays.slice();
  }

  view(peer: string): PathView {
    const st = this.peers.get(peer);
    if (!st) throw new Error(`unknown peer ${peer}`);
    return { ...st.active };
  }

  stats(): { fallbackTransitions: number; promotions: number; relayUsage: number; unknownProbeReplies: number } {
    let relayUsage = 0;
    for (const st of this.peers.values()) if (st.active.cls === "relay") relayUsage++;
    return { ...this.counters, relayUsage };
  }

  private addCandidate(st: PeerState, ep: Endpoint, origin: Origin, now: number): Candidate {
    const k = key(ep);
    let c = st.candidates.get(k);
    if (!c) {
      c = { ep: { ip: ep.ip >>> 0, port: ep.port }, origin, okStreak: 0, failures: 0, nextProbe: now };
      st.candidates.set(k, c);
      // Bound the set: keep the most recent few.
      if (st.candidates.size > 12) st.candidates.delete(st.candidates.keys().next().value!);
    } else if (origin === "static" || (origin === "signaled" && c.origin === "roamed")) {
      c.origin = origin;
    }
    return c;
  }

  // ------------------------------------------------------------------ inputs

  onSignaled(peer: string, endpoints: Endpoint[], now: number): void {
    const st = this.peers.get(peer);
    if (!st || !this.policy.allowSignalingUpgrade) return;
    for (const e of endpoints) {
      const c = this.addCandidate(st, e, "signaled", now);
      c.failures = 0;
      c.nextProbe = now;
    }
    st.punchUntil = now + this.t.punchDurationMs;
    st.lastPunch = 0;
  }

  onTraffic(peer: string, now: number): void {
    const st = this.peers.get(peer);
    if (st) st.lastTraffic = now;
  }

  /** Any authenticated packet from the peer, directly from an endpoint or through a relay. */
  onAuthenticated(peer: string, from: { endpoint: Endpoint } | { via: string }, now: number): PathAction[] {
    const st = this.peers.get(peer);
    if (!st) return [];
    const out: PathAction[] = [];
    if ("via" in from) {
      if (st.active.cls === "relay" && st.active.via === from.via) this.activeAlive(st);
      else if (st.active.cls === "none" && this.policy.allowRelay && this.relays.includes(from.via) && from.via !== peer) {
        out.push(this.switchTo(st, { cls: "relay", endpoint: null, via: from.via }, now, "the peer reached us through the relay"));
        this.activeAlive(st);
      }
      return out;
    }
    const ep = from.endpoint;
    if (isDirect(st.active.cls) && same(st.active.endpoint, ep)) {
      this.activeAlive(st);
      const c = st.candidates.get(key(ep));
      if (c) c.failures = 0;
      return out;
    }
    // A direct packet from an endpoint that is not the active one.
    const punching = now < st.punchUntil;
    const known = st.candidates.get(key(ep));
    const c = known ?? this.addCandidate(st, ep, punching ? "signaled" : "roamed", now);
    if (isDirect(st.active.cls)) {
      // Roaming (as WireGuard): the peer's address or NAT mapping changed; follow authenticated packets.
      out.push(this.switchTo(st, { cls: st.active.cls, endpoint: c.ep, via: null }, now, "the peer roamed to a new endpoint"));
      this.activeAlive(st);
      return out;
    }
    c.okStreak++;
    c.failures = 0;
    const canPromote = st.demotedAt === 0 || (c.okStreak >= this.t.promoteAfterOk && now - st.demotedAt >= this.t.holdDownMs);
    if (canPromote) {
      out.push(this.switchTo(st, { cls: directClass(c.origin), endpoint: c.ep, via: null }, now, st.active.cls === "relay" ? "a direct path answers again" : "direct path established"));
      this.counters.promotions++;
      this.activeAlive(st);
      st.punchUntil = 0;
    }
    return out;
  }

  onProbeReply(peer: string, probeId: number, now: number): PathAction[] {
    const st = this.peers.get(peer);
    const p = st?.probes.get(probeId);
    if (!st || !p) {
      this.counters.unknownProbeReplies++;
      return [];
    }
    st.probes.delete(probeId);
    const rtt = now - p.sentAt;
    const activeMatches = p.via !== null ? st.active.cls === "relay" && st.active.via === p.via : isDirect(st.active.cls) && same(st.active.endpoint, p.endpoint);
    if (activeMatches) {
      st.active.rttMs = st.active.rttMs === null ? rtt : st.active.rttMs * 0.7 + rtt * 0.3;
      this.activeAlive(st);
      return [];
    }
    if (p.endpoint) return this.onAuthenticated(peer, { endpoint: p.endpoint }, now);
    return [];
  }

  private activeAlive(st: PeerState): void {
    st.proven = true;
    st.oldestUnanswered = 0;
  }

  private switchTo(st: PeerState, to: Omit<PathView, "rttMs" | "since">, now: number, reason: string): PathAction {
    const from = { ...st.active };
    st.active = { ...to, rttMs: null, since: now };
    st.proven = false;
    st.oldestUnanswered = 0;
    st.lastActiveProbe = 0;
    for (const c of st.candidates.values()) c.okStreak = 0;
    return { kind: "switch", peer: st.id, from, to: { ...st.active }, reason };
  }

  // ------------------------------------------------------------------ timers

  tick(now: number): PathAction[] {
    const out: PathAction[] = [];
    for (const st of this.peers.values()) this.tickPeer(st, now, out);
    return out;
  }

  private probe(st: PeerState, now: number, endpoint: Endpoint | null, via: string | null, active: boolean, out: PathAction[]): void {
    let id = this.random();
    while (st.probes.has(id)) id = (id + 1) >>> 0;
    st.probes.set(id, { sentAt: now, endpoint, via, active });
    // Forget probes nobody will answer.
    if (st.probes.size > 64) for (const [pid, p] of st.probes) if (now - p.sentAt > 10_000) st.probes.delete(pid);
    out.push({ kind: "probe", peer: st.id, probeId: id, endpoint, via });
  }

  private tickPeer(st: PeerState, now: number, out: PathAction[]): void {
    const busy = now - st.lastTraffic < 2_000;
    const a = st.active;

    // 1. Liveness of the active path.
    if (a.cls !== "none") {
      const interval = busy || !st.proven ? this.t.probeIntervalMs : this.t.probeIntervalIdleMs;
      if (now - st.lastActiveProbe >= interval) {
        st.lastActiveProbe = now;
        if (st.oldestUnanswered === 0) st.oldestUnanswered = now;
        this.probe(st, now, a.endpoint, a.via, true, out);
      }
      const deadAfter = st.proven ? this.t.deadAfterMs : this.t.unprovenDeadAfterMs;
      if (st.oldestUnanswered !== 0 && now - st.oldestUnanswered > deadAfter) {
        this.fallBack(st, now, out);
      }
    }

    // 2. No usable path: take a relay when one is live.
    if (st.active.cls === "none" && this.policy.allowRelay) {
      const relay = this.relays.find((r) => r !== st.id);
      if (relay) out.push(this.switchTo(st, { cls: "relay", endpoint: null, via: relay }, now, "no direct path known: using the relay"));
    }

    // 3. Not direct: probe direct candidates in the background, ask bootstrap peers, punch.
    if (!isDirect(st.active.cls)) {
      for (const c of st.candidates.values()) {
        if (now < c.nextProbe) continue;
        c.failures++;
        const backoff = Math.min(this.t.candidateBackoffMaxMs, this.t.probeIntervalMs * 2 ** Math.max(0, c.failures - 3));
        c.nextProbe = now + (now < st.punchUntil ? this.t.probeIntervalMs : backoff);
        this.probe(st, now, c.ep, null, false, out);
      }
      if (this.policy.allowSignalingUpgrade && now - st.lastLookup >= this.t.lookupRetryMs && !st.relayCapable) {
        st.lastLookup = now;
        out.push({ kind: "lookup", peer: st.id });
      }
      if (now < st.punchUntil && now - st.lastPunch >= this.t.punchIntervalMs) {
        st.lastPunch = now;
        const eps = [...st.candidates.values()].filter((c) => c.origin === "signaled").map((c) => c.ep);
        if (eps.length > 0) out.push({ kind: "punch", peer: st.id, endpoints: eps });
      }
    }
  }

  private fallBack(st: PeerState, now: number, out: PathAction[]): void {
    const was = st.active;
    const wasProven = st.proven;
    const silent = now - st.oldestUnanswered;
    if (isDirect(was.cls) && was.endpoint) {
      const c = st.candidates.get(key(was.endpoint));
      if (c) {
        c.failures = 1;
        c.nextProbe = now;
      }
    }
    const relay = this.policy.allowRelay ? this.relays.find((r) => r !== st.id && r !== was.via) : undefined;
    if (!relay && was.cls === "relay" && was.via && this.relays.includes(was.via)) {
      // The only relay is still up: the far end may simply not be there yet. Keep it, keep asking.
      st.oldestUnanswered = 0;
      return;
    }
    const to: Omit<PathView, "rttMs" | "since"> = relay ? { cls: "relay", endpoint: null, via: relay } : { cls: "none", endpoint: null, via: null };
    out.push(this.switchTo(st, to, now, `${was.cls} path silent for ${silent} ms`));
    if (wasProven) this.counters.fallbackTransitions++;
    // Hysteresis applies only after a path that worked failed; an unproven first try may be
    // promoted as soon as anything answers.
    if (wasProven && isDirect(was.cls)) st.demotedAt = now;
    st.lastLookup = -Infinity;
  }
}
