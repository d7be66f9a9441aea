// Path selection per peer: a deterministic state machine driven by the daemon's clock. The daemon
// reports what happened (authenticated packets and where they came from, probe replies, signaled
// endpoints, outbound traffic) and carries out the actions returned: send a probe, ask bootstrap
// peers for endpoints, punch, or install a new path. tick(now) takes every decision; the good-news
// events (an authenticated packet, a probe reply) also return the switch they make possible at once
// (hole punched, roamed, promoted), so a caller may run those right away. No sockets, no timers.
//
// Classes, best first:
//   direct                 an endpoint known without help: static config, the last good endpoint
//                          from the database, or the source of an authenticated packet;
//   signaling_then_direct  an endpoint learned from a bootstrap peer's ENDPOINTS and reached by punching;
//   relay                  through a relay-capable peer with a live session (setRelays);
//   none.
// The behaviour and every timing are described for operators in book/src/paths.md.

import { isValidEndpoint, type Endpoint } from "./messages.ts";

export type { Endpoint };
export type PathClass = "direct" | "signaling_then_direct" | "relay" | "none";

/** What a peer's path is right now. */
export interface PathView {
  cls: PathClass;
  /** The UDP endpoint for direct classes, null otherwise. */
  endpoint: Endpoint | null;
  /** The relay peer for `relay`, null otherwise. */
  via: string | null;
  /** Smoothed probe round-trip time on this path (EWMA, 1/8), null before the first reply. */
  rttMs: number | null;
  /** When this path became the active one (the clock given to the selector). */
  since: number;
}

export interface PathPolicy {
  /** false: never choose a relay. */
  allowRelay: boolean;
  /** false: never ask bootstrap peers (no lookup, no punch); ENDPOINTS are ignored. */
  allowSignalingUpgrade: boolean;
}

export interface PathTimings {
  /** Probe period of the active path while traffic flows, while it is unproven or suspect, and of promising candidates. */
  probeIntervalMs: number;
  /** Probe period of a proven active path when no traffic flows. */
  probeIntervalIdleMs: number;
  /** A proven active path is dead when probes have gone unanswered this long (and nothing else authenticated arrived). */
  deadAfterMs: number;
  /** The same for a path that has not answered yet: a first handshake must fit in it. */
  unprovenDeadAfterMs: number;
  /** Consecutive probe replies a direct candidate needs before it replaces a relay after a fallback. */
  promoteAfterOk: number;
  /**
   * No promotion back to direct sooner than this after a fallback from direct. It doubles (up to
   * HOLD_DOWN_MAX_FACTOR times) each time a promoted path dies again within HOLD_DOWN_FLAP_FACTOR
   * hold-downs, and returns to this value after a promotion that lasts.
   */
  holdDownMs: number;
  /** First retry of a lookup (the first one may leave before any bootstrap session is up); doubles up to lookupRetryMs. */
  lookupFirstRetryMs: number;
  /** Period of lookups while no proven direct path exists. */
  lookupRetryMs: number;
  /** Period of punch bursts after ENDPOINTS arrived... */
  punchIntervalMs: number;
  /** ...for this long. */
  punchDurationMs: number;
  /** Background probes of a silent candidate back off exponentially up to this period. */
  candidateBackoffMaxMs: number;
  /** A probe not answered within this is lost; a later reply is ignored as unknown. */
  probeTimeoutMs: number;
  /** onTraffic() keeps the peer "busy" (fast probing) for this long. */
  trafficWindowMs: number;
}

export const DEFAULT_TIMINGS: Readonly<PathTimings> = {
  probeIntervalMs: 200,
  probeIntervalIdleMs: 10_000,
  deadAfterMs: 800,
  unprovenDeadAfterMs: 3_000,
  promoteAfterOk: 3,
  holdDownMs: 2_000,
  lookupFirstRetryMs: 1_000,
  lookupRetryMs: 10_000,
  punchIntervalMs: 200,
  punchDurationMs: 6_000,
  candidateBackoffMaxMs: 15_000,
  probeTimeoutMs: 2_000,
  trafficWindowMs: 2_000,
};

/** Probes that must go unanswered (besides the time) before a path is dead: one loss is not death. */
export const DEAD_AFTER_PROBES = 3;
/** The hold-down grows up to this multiple of holdDownMs for a path that keeps failing... */
export const HOLD_DOWN_MAX_FACTOR = 16;
/** ...which is one that dies within this many (current) hold-downs after being promoted. */
export const HOLD_DOWN_FLAP_FACTOR = 4;
/** Direct candidates remembered per peer; the oldest non-configured one makes room. */
export const MAX_CANDIDATES = 12;
const RTT_GAIN = 1 / 8;

export type PathAction =
  /** Send PROBE `probeId` to the peer on that path (endpoint, or through relay `via`); with no session yet, a handshake there. */
  | { kind: "probe"; peer: string; probeId: number; endpoint: Endpoint | null; via: string | null }
  /** Ask the bootstrap peers for the peer's endpoints (LOOKUP). */
  | { kind: "lookup"; peer: string }
  /** Send to every endpoint now (PROBE `probeIds[i]` to `endpoints[i]`, or a handshake): hole punching. */
  | { kind: "punch"; peer: string; endpoints: Endpoint[]; probeIds: number[] }
  /** Install `to` in the data plane and log the event. */
  | { kind: "switch"; peer: string; from: PathView; to: PathView; reason: string };

export interface PathStats {
  /** Switches forced by a proven path dying or its relay going away. */
  fallbackTransitions: number;
  /** Switches from relay up to a direct class. */
  promotions: number;
  /** Peers currently on relay. */
  relayUsage: number;
  /** Probe replies matching no outstanding probe of that peer (unknown, late or duplicate ids). */
  unknownProbeReplies: number;
}

export interface AddPeerOptions {
  staticEndpoint?: Endpoint | null;
  /** The path that worked last (from the state database): tried first on a warm restart. */
  lastGood?: { cls: PathClass; endpoint: Endpoint | null; via: string | null } | null;
  relayCapable: boolean;
}

/** How an endpoint became known; decides its class. */
type Origin = "static" | "stored" | "authenticated" | "signaled";

/** Liveness of one path (a direct endpoint or a relay) towards one peer. */
interface Liveness {
  lastHeard: number; // -Infinity: never
  deadAt: number; // last time this path was declared dead; evidence must be newer
  unanswered: number; // probes sent since lastHeard
  firstUnansweredAt: number;
  lastProbeAt: number;
  seq: number; // probes sent on this path
  lastReplySeq: number; // highest seq answered
  streak: number; // replies to consecutive probes, ending at lastReplySeq
  srtt: number | null;
}

interface Candidate extends Liveness {
  ep: Endpoint;
  origin: Origin;
  addedAt: number;
  failures: number; // background probes in a row that found the previous one unanswered
  nextProbeAt: number;
}

interface RelayPath extends Liveness {
  via: string;
  failedAt: number; // -Infinity: never
}

type Active = { kind: "none" } | { kind: "direct"; c: Candidate } | { kind: "relay"; r: RelayPath };

interface OutstandingProbe {
  path: Liveness;
  seq: number;
  sentAt: number;
}

interface PeerState {
  id: string;
  relayCapable: boolean;
  active: Active;
  since: number;
  /** The active path answered (or carried authenticated packets) since it became active. */
  proven: boolean;
  lastTraffic: number;
  /** Last fallback from a proven direct path: promotion back needs hysteresis after it. */
  demotedAt: number;
  /** The hold-down in force for this peer (grows while a path flaps). */
  holdDown: number;
  promotedAt: number;
  candidates: Map<string, Candidate>;
  relayPaths: Map<string, RelayPath>;
  probes: Map<number, OutstandingProbe>;
  lastLookup: number;
  lookups: number; // since the peer last had a proven direct path, for the retry backoff
  punchTargets: Candidate[];
  punchUntil: number;
  lastPunch: number;
}

const epKey = (e: Endpoint) => `${e.ip >>> 0}:${e.port}`;
const isDirectClass = (c: PathClass) => c === "direct" || c === "signaling_then_direct";
const classOf = (o: Origin): PathClass => (o === "signaled" ? "signaling_then_direct" : "direct");
const RANK: Record<PathClass, number> = { direct: 3, signaling_then_direct: 2, relay: 1, none: 0 };

function newLiveness(): Liveness {
  return {
    lastHeard: -Infinity,
    deadAt: -Infinity,
    unanswered: 0,
    firstUnansweredAt: -Infinity,
    lastProbeAt: -Infinity,
    seq: 0,
    lastReplySeq: 0,
    streak: 0,
    srtt: null,
  };
}

/** Default probe-id source: CSPRNG u32s, drawn in batches. */
function cryptoU32(): () => number {
  const pool = new Uint32Array(64);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      crypto.getRandomValues(pool);
      next = 0;
    }
    return pool[next++]!;
  };
}

export class PathSelector {
  private readonly peers = new Map<string, PeerState>();
  private relays: string[] = [];
  private readonly t: PathTimings;
  private readonly counters = { fallbackTransitions: 0, promotions: 0, unknownProbeReplies: 0 };
  /** Last time a dead path answering again woke every peer's background probing and lookups. */
  private lastRevival = -Infinity;

  /**
   * @param policy  what the operator allows
   * @param timings overrides of DEFAULT_TIMINGS
   * @param random  u32 source for probe ids (tests inject a seeded one); default: crypto.getRandomValues
   */
  constructor(
    private readonly policy: PathPolicy,
    timings: Partial<PathTimings> = {},
    private readonly random: () => number = cryptoU32(),
  ) {
    const t = { ...DEFAULT_TIMINGS };
    for (const k of Object.keys(DEFAULT_TIMINGS) as (keyof PathTimings)[]) {
      const v = timings[k];
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) t[k] = v;
    }
    t.promoteAfterOk = Math.max(1, Math.floor(t.promoteAfterOk));
    this.t = t;
  }

  /** The timings in force (defaults merged with overrides). */
  get timings(): Readonly<PathTimings> {
    return this.t;
  }

  // ------------------------------------------------------------------------------------- peers

  /**
   * Start tracking a peer. The best known endpoint is tried optimistically (its handshake proves it or
   * not): the last good direct endpoint, else the static one. A last good relay is resumed likewise.
   * A second call for the same peer is ignored.
   */
  addPeer(peer: string, opts: AddPeerOptions, now: number = Date.now()): void {
    if (this.peers.has(peer)) return;
    const st: PeerState = {
      id: peer,
      relayCapable: opts.relayCapable,
      active: { kind: "none" },
      since: now,
      proven: false,
      lastTraffic: -Infinity,
      demotedAt: -Infinity,
      holdDown: this.t.holdDownMs,
      promotedAt: -Infinity,
      candidates: new Map(),
      relayPaths: new Map(),
      probes: new Map(),
      lastLookup: -Infinity,
      lookups: 0,
      punchTargets: [],
      punchUntil: -Infinity,
      lastPunch: -Infinity,
    };
    this.peers.set(peer, st);
    const last = opts.lastGood ?? null;
    const stat = opts.staticEndpoint && isValidEndpoint(opts.staticEndpoint) ? this.candidate(st, opts.staticEndpoint, "static", now) : null;
    const stored =
      last && last.endpoint && isDirectClass(last.cls) && isValidEndpoint(last.endpoint)
        ? this.candidate(st, last.endpoint, last.cls === "signaling_then_direct" ? "signaled" : "stored", now)
        : null;
    if (stored) st.active = { kind: "direct", c: stored };
    else if (last && last.cls === "relay" && last.via && last.via !== peer && this.policy.allowRelay) st.active = { kind: "relay", r: this.relayPath(st, last.via) };
    else if (stat) st.active = { kind: "direct", c: stat };
  }

  removePeer(peer: string): void {
    this.peers.delete(peer);
    this.relays = this.relays.filter((r) => r !== peer);
  }

  has(peer: string): boolean {
    return this.peers.has(peer);
  }

  /** Relay-capable peers that have a live session with us, in preference order. Replaces the list. */
  setRelays(relays: string[]): void {
    this.relays = relays.filter((r, i) => relays.indexOf(r) === i);
  }

  /** The peer's current path. Throws for a peer never added (a programming error); see has(). */
  view(peer: string): PathView {
    return this.viewOf(this.state(peer));
  }

  stats(): PathStats {
    let relayUsage = 0;
    for (const st of this.peers.values()) if (st.active.kind === "relay") relayUsage++;
    return { ...this.counters, relayUsage };
  }

  // ------------------------------------------------------------------------------------- events

  /**
   * Any authenticated packet from the peer (data, keepalive, handshake, control), received directly
   * from `endpoint` or through relay `via`. A direct packet from a new endpoint makes it a candidate;
   * The path moves there when the old endpoint went quiet (roaming) or nothing better is active.
   * Returns the switch this makes possible now, if any (tick() would make it too).
   */
  onAuthenticated(peer: string, from: { endpoint: Endpoint } | { via: string }, now: number): PathAction[] {
    const st = this.peers.get(peer);
    if (!st) return [];
    if ("via" in from) {
      if (from.via === peer) return [];
      this.heard(st, this.relayPath(st, from.via), now);
    } else {
      if (!isValidEndpoint(from.endpoint)) return [];
      // During a punch window an unknown source is the NAT mapping the punch opened: a signaled path.
      const c = this.candidate(st, from.endpoint, now < st.punchUntil ? "signaled" : "authenticated", now);
      this.heard(st, c, now);
    }
    const out: PathAction[] = [];
    this.improve(st, now, out);
    return out;
  }

  /**
   * PROBE_REPLY `probeId` from the peer: RTT sample and liveness for the path it was sent on. Replies
   * to probes not outstanding for this peer (unknown, late, duplicate) are counted and ignored.
   * Returns the switch this makes possible now, if any (tick() would make it too).
   */
  onProbeReply(peer: string, probeId: number, now: number): PathAction[] {
    const st = this.peers.get(peer);
    const p = st?.probes.get(probeId);
    if (!st || !p || now - p.sentAt > this.t.probeTimeoutMs) {
      if (st && p) st.probes.delete(probeId);
      this.counters.unknownProbeReplies++;
      return [];
    }
    st.probes.delete(probeId);
    const l = p.path;
    const rtt = Math.max(0, now - p.sentAt);
    l.srtt = l.srtt === null ? rtt : l.srtt + (rtt - l.srtt) * RTT_GAIN;
    if (p.seq === l.lastReplySeq + 1) l.streak++;
    else if (p.seq > l.lastReplySeq) l.streak = 1; // probes in between were lost
    if (p.seq > l.lastReplySeq) l.lastReplySeq = p.seq;
    this.heard(st, l, now);
    const out: PathAction[] = [];
    this.improve(st, now, out);
    return out;
  }

  /** ENDPOINTS for the peer arrived from a bootstrap peer: remember them and punch for punchDurationMs. */
  onSignaled(peer: string, endpoints: Endpoint[], now: number): void {
    const st = this.peers.get(peer);
    if (!st || !this.policy.allowSignalingUpgrade) return;
    const targets: Candidate[] = [];
    for (const e of endpoints) {
      if (!isValidEndpoint(e)) continue;
      const c = this.candidate(st, e, "signaled", now);
      c.failures = 0;
      c.nextProbeAt = now;
      if (!targets.includes(c)) targets.push(c);
    }
    if (targets.length === 0 || this.onProvenDirect(st)) return;
    st.punchTargets = targets;
    st.punchUntil = now + this.t.punchDurationMs;
    st.lastPunch = -Infinity;
  }

  /** We sent data to the peer: its path is probed at the fast rate for trafficWindowMs. */
  onTraffic(peer: string, now: number): void {
    const st = this.peers.get(peer);
    if (st) st.lastTraffic = now;
  }

  // ------------------------------------------------------------------------------------- decisions

  /** Advance every peer to `now` and return what to do, in peer order. Call it often (every ~50–100 ms). */
  tick(now: number): PathAction[] {
    const out: PathAction[] = [];
    for (const st of this.peers.values()) this.tickPeer(st, now, out);
    return out;
  }

  private tickPeer(st: PeerState, now: number, out: PathAction[]): void {
    this.expireProbes(st, now);
    this.pruneCandidates(st, now);
    this.checkActive(st, now, out);
    this.improve(st, now, out);
    this.probeActive(st, now, out);
    if (this.onProvenDirect(st)) {
      st.lookups = 0;
      return;
    }
    this.punch(st, now, out);
    this.probeCandidates(st, now, out);
    this.lookup(st, now, out);
  }

  /** Is the active path dead, or its relay gone? Then fall back to the best remaining path. */
  private checkActive(st: PeerState, now: number, out: PathAction[]): void {
    const a = st.active;
    if (a.kind === "none") return;
    // An unproven relay (resumed on a warm restart before its session is up, hence not listed yet)
    // is judged by its probes below, not by the list.
    if (a.kind === "relay" && (!this.policy.allowRelay || (st.proven && !this.relays.includes(a.r.via)))) {
      const to = this.bestDirect(st, now, null) ?? this.bestRelay(st, now, a.r.via);
      this.fallBack(st, now, to, `relay ${a.r.via} is no longer available`, out);
      return;
    }
    const l = a.kind === "direct" ? a.c : a.r;
    const deadAfter = st.proven ? this.t.deadAfterMs : this.t.unprovenDeadAfterMs;
    if (l.unanswered < DEAD_AFTER_PROBES || now - l.firstUnansweredAt < deadAfter) return;
    const silent = Math.round(now - l.firstUnansweredAt);
    l.deadAt = now;
    const why = `${this.viewOf(st).cls} path ${st.proven ? "stopped answering" : "never answered"}: ${l.unanswered} probes unanswered over ${silent} ms`;
    if (a.kind === "direct") {
      a.c.failures = 1;
      a.c.nextProbeAt = now;
      a.c.streak = 0;
      if (st.proven) this.demote(st, now);
      this.fallBack(st, now, this.bestDirect(st, now, a.c) ?? this.bestRelay(st, now, null), why, out);
    } else {
      a.r.failedAt = now;
      const to = this.bestDirect(st, now, null) ?? this.bestRelay(st, now, a.r.via);
      if (!to) {
        // The only relay is still up: the far end may just not be there yet. Keep it, keep probing.
        a.r.unanswered = 0;
        a.r.firstUnansweredAt = -Infinity;
        return;
      }
      this.fallBack(st, now, to, why, out);
    }
    st.lookups = 0; // ask for fresh endpoints at once
  }

  /** Record a fallback from a proven direct path; a path that failed soon after its promotion waits longer next time. */
  private demote(st: PeerState, now: number): void {
    const flapped = now - st.promotedAt < st.holdDown * HOLD_DOWN_FLAP_FACTOR;
    st.holdDown = flapped ? Math.min(st.holdDown * 2, this.t.holdDownMs * HOLD_DOWN_MAX_FACTOR) : this.t.holdDownMs;
    st.demotedAt = now;
  }

  private fallBack(st: PeerState, now: number, to: Active | null, reason: string, out: PathAction[]): void {
    if (st.proven) this.counters.fallbackTransitions++;
    this.switchTo(st, to ?? { kind: "none" }, now, to ? reason : `${reason}; no other path`, out);
  }

  /** Take a better path when one is ready: roam, promote from relay (with hysteresis), leave none. */
  private improve(st: PeerState, now: number, out: PathAction[]): void {
    const a = st.active;
    if (a.kind === "direct") {
      // Roaming, as WireGuard: follow authenticated packets from a new endpoint once the old one went quiet.
      const c = this.bestDirect(st, now, a.c);
      if (c && c.c.lastHeard - a.c.lastHeard >= this.t.probeIntervalMs) {
        this.switchTo(st, c, now, `peer answers from ${fmt(c.c.ep)} while ${fmt(a.c.ep)} is quiet (roamed)`, out);
      }
      return;
    }
    const d = this.bestDirect(st, now, null);
    if (d && a.kind === "none") {
      this.switchTo(st, d, now, `authenticated packets from ${fmt(d.c.ep)}${d.c.origin === "signaled" ? " (hole punched)" : ""}`, out);
      return;
    }
    if (d && a.kind === "relay") {
      const afterFallback = st.demotedAt > -Infinity;
      if (!afterFallback) {
        this.counters.promotions++;
        st.promotedAt = now;
        this.switchTo(st, d, now, `direct path answers at ${fmt(d.c.ep)}${d.c.origin === "signaled" ? " (hole punched)" : ""}`, out);
        return;
      }
      // Only candidates with the reply streak compete: a fresh but lossy endpoint of a better class
      // must not hide one that answers every probe.
      const ready = now - st.demotedAt >= st.holdDown ? this.bestDirect(st, now, null, this.t.promoteAfterOk) : null;
      if (ready) {
        this.counters.promotions++;
        st.promotedAt = now;
        this.switchTo(st, ready, now, `direct path ${fmt(ready.c.ep)} answered ${ready.c.streak} consecutive probes, ${Math.round(now - st.demotedAt)} ms after the fallback`, out);
        return;
      }
    }
    if (a.kind === "none") {
      const r = this.bestRelay(st, now, null);
      if (r) this.switchTo(st, r, now, `no direct path answers; relay ${r.r.via} is live`, out);
    }
  }

  /**
   * The best direct candidate with fresh evidence (heard within probeTimeoutMs), excluding `skip`.
   * For promotion after a fallback a candidate must also carry a reply streak of `minStreak`: among
   * those heard, prefer the better class, then the longer streak, then the lower RTT.
   */
  private bestDirect(st: PeerState, now: number, skip: Candidate | null, minStreak = 0): { kind: "direct"; c: Candidate } | null {
    let best: Candidate | null = null;
    for (const c of st.candidates.values()) {
      if (c === skip || !this.fresh(c, now) || c.streak < minStreak) continue;
      if (!best || better(c, best)) best = c;
    }
    return best ? { kind: "direct", c: best } : null;
  }

  /** The first relay in preference order that is allowed, not the peer itself, not `skip`, and not failed within holdDownMs. */
  private bestRelay(st: PeerState, now: number, skip: string | null): { kind: "relay"; r: RelayPath } | null {
    if (!this.policy.allowRelay) return null;
    let fallback: RelayPath | null = null;
    for (const via of this.relays) {
      if (via === st.id || via === skip) continue;
      const r = this.relayPath(st, via);
      if (now - r.failedAt >= this.t.holdDownMs) return { kind: "relay", r };
      fallback ??= r;
    }
    // Every other relay failed recently: still better than nothing.
    return fallback ? { kind: "relay", r: fallback } : null;
  }

  private switchTo(st: PeerState, to: Active, now: number, reason: string, out: PathAction[]): void {
    const from = this.viewOf(st);
    st.active = to;
    st.since = now;
    const l = to.kind === "direct" ? to.c : to.kind === "relay" ? to.r : null;
    st.proven = l !== null && this.fresh(l, now);
    if (l) {
      // Liveness of the new active path starts now.
      l.unanswered = 0;
      l.firstUnansweredAt = -Infinity;
      l.lastProbeAt = -Infinity;
    }
    if (to.kind === "direct") st.punchUntil = -Infinity;
    out.push({ kind: "switch", peer: st.id, from, to: this.viewOf(st), reason });
  }

  // ------------------------------------------------------------------------------------- probing

  private probeActive(st: PeerState, now: number, out: PathAction[]): void {
    const a = st.active;
    if (a.kind === "none") return;
    const l = a.kind === "direct" ? a.c : a.r;
    const busy = now - st.lastTraffic < this.t.trafficWindowMs;
    const interval = busy || !st.proven || l.unanswered > 0 ? this.t.probeIntervalMs : this.t.probeIntervalIdleMs;
    if (now - l.lastProbeAt < interval) return;
    const id = this.sendProbe(st, l, now);
    out.push({ kind: "probe", peer: st.id, probeId: id, endpoint: a.kind === "direct" ? { ...a.c.ep } : null, via: a.kind === "relay" ? a.r.via : null });
  }

  /** Background probes of direct candidates while the peer is not on a proven direct path. */
  private probeCandidates(st: PeerState, now: number, out: PathAction[]): void {
    const active = st.active.kind === "direct" ? st.active.c : null;
    for (const c of st.candidates.values()) {
      if (c === active || now < c.nextProbeAt || now - c.lastProbeAt < this.t.probeIntervalMs) continue;
      if (c.seq > c.lastReplySeq && c.lastProbeAt > -Infinity) c.failures++;
      else c.failures = 0;
      const punching = now < st.punchUntil;
      const backoff = Math.min(this.t.candidateBackoffMaxMs, this.t.probeIntervalMs * 2 ** Math.max(0, c.failures - 2));
      c.nextProbeAt = now + (punching ? this.t.probeIntervalMs : backoff);
      const id = this.sendProbe(st, c, now);
      out.push({ kind: "probe", peer: st.id, probeId: id, endpoint: { ...c.ep }, via: null });
    }
  }

  private lookup(st: PeerState, now: number, out: PathAction[]): void {
    if (!this.policy.allowSignalingUpgrade) return;
    const first = Math.min(this.t.lookupFirstRetryMs, this.t.lookupRetryMs);
    const interval = st.lookups === 0 ? 0 : Math.min(this.t.lookupRetryMs, first * 2 ** (st.lookups - 1));
    if (now - st.lastLookup < interval) return;
    st.lastLookup = now;
    st.lookups++;
    out.push({ kind: "lookup", peer: st.id });
  }

  private punch(st: PeerState, now: number, out: PathAction[]): void {
    if (now >= st.punchUntil || now - st.lastPunch < this.t.punchIntervalMs) return;
    st.lastPunch = now;
    const endpoints: Endpoint[] = [];
    const probeIds: number[] = [];
    for (const c of st.punchTargets) {
      endpoints.push({ ...c.ep });
      probeIds.push(this.sendProbe(st, c, now));
      c.nextProbeAt = now + this.t.probeIntervalMs; // the punch is this round's probe
    }
    out.push({ kind: "punch", peer: st.id, endpoints, probeIds });
  }

  private sendProbe(st: PeerState, l: Liveness, now: number): number {
    let id = this.random() >>> 0;
    while (st.probes.has(id)) id = this.random() >>> 0;
    l.seq++;
    l.lastProbeAt = now;
    if (l.unanswered === 0) l.firstUnansweredAt = now;
    l.unanswered++;
    st.probes.set(id, { path: l, seq: l.seq, sentAt: now });
    return id;
  }

  /** Forget probes older than probeTimeoutMs; a lost one breaks its path's reply streak. */
  private expireProbes(st: PeerState, now: number): void {
    for (const [id, p] of st.probes) {
      if (now - p.sentAt <= this.t.probeTimeoutMs) continue;
      st.probes.delete(id);
      if (p.seq > p.path.lastReplySeq) p.path.streak = 0;
    }
  }

  /** Signaled endpoints that never answered are dropped once their punch window is long over. */
  private pruneCandidates(st: PeerState, now: number): void {
    const active = st.active.kind === "direct" ? st.active.c : null;
    const horizon = this.t.punchDurationMs + this.t.probeTimeoutMs;
    for (const [k, c] of st.candidates) {
      if (c !== active && c.origin === "signaled" && c.lastHeard === -Infinity && now - c.addedAt > horizon && now >= st.punchUntil) {
        st.candidates.delete(k);
      }
    }
    st.punchTargets = st.punchTargets.filter((c) => st.candidates.get(epKey(c.ep)) === c);
  }

  // ------------------------------------------------------------------------------------- helpers

  private heard(st: PeerState, l: Liveness, now: number): void {
    // A path declared dead answers again: this host's network is probably back (an outage of its own
    // router, a new lease). Candidates of every peer that backed off during the outage are probed at
    // once and fresh endpoints asked for, instead of waiting out their backoff.
    if (l.deadAt > l.lastHeard) this.revive(now);
    l.lastHeard = now;
    l.unanswered = 0;
    l.firstUnansweredAt = -Infinity;
    const a = st.active;
    if ((a.kind === "direct" && a.c === l) || (a.kind === "relay" && a.r === l)) st.proven = true;
    if ("failures" in l) {
      const c = l as Candidate;
      if (c.failures > 0) c.nextProbeAt = now; // it answers again: probe it at the fast rate
      c.failures = 0;
    }
  }

  /**
   * Connectivity came back: every peer not on a proven direct path probes its direct candidates on
   * the next tick and asks the bootstrap peers again. At most once per lookupFirstRetryMs, so a
   * flapping network cannot turn it into a storm.
   */
  private revive(now: number): void {
    if (now - this.lastRevival < this.t.lookupFirstRetryMs) return;
    this.lastRevival = now;
    for (const st of this.peers.values()) {
      if (this.onProvenDirect(st)) continue;
      for (const c of st.candidates.values()) {
        c.failures = 0;
        c.nextProbeAt = now;
      }
      st.lookups = 0;
      st.lastLookup = -Infinity;
    }
  }

  /** Authenticated evidence within probeTimeoutMs and since the path was last declared dead. */
  private fresh(l: Liveness, now: number): boolean {
    return now - l.lastHeard <= this.t.probeTimeoutMs && l.lastHeard > l.deadAt;
  }

  private onProvenDirect(st: PeerState): boolean {
    return st.active.kind === "direct" && st.proven;
  }

  /** The candidate for `ep`, created when new. A better-known origin upgrades a learned one. */
  private candidate(st: PeerState, ep: Endpoint, origin: Origin, now: number): Candidate {
    const k = epKey(ep);
    let c = st.candidates.get(k);
    if (c) {
      // Configured knowledge wins; a punch result is more precise than "some packet came from there".
      // The active path keeps its class (it changes only with a switch, which is logged).
      const isActive = st.active.kind === "direct" && st.active.c === c;
      if (!isActive && (origin === "static" || (origin === "signaled" && c.origin === "authenticated"))) c.origin = origin;
      return c;
    }
    if (st.candidates.size >= MAX_CANDIDATES) this.evictCandidate(st);
    c = { ...newLiveness(), ep: { ip: ep.ip >>> 0, port: ep.port }, origin, addedAt: now, failures: 0, nextProbeAt: now };
    st.candidates.set(k, c);
    return c;
  }

  private evictCandidate(st: PeerState): void {
    const active = st.active.kind === "direct" ? st.active.c : null;
    let victim: [string, Candidate] | null = null;
    for (const e of st.candidates) {
      if (e[1] === active || e[1].origin === "static") continue;
      if (!victim || e[1].lastHeard < victim[1].lastHeard) victim = e;
    }
    if (victim) st.candidates.delete(victim[0]);
  }

  private relayPath(st: PeerState, via: string): RelayPath {
    let r = st.relayPaths.get(via);
    if (!r) {
      r = { ...newLiveness(), via, failedAt: -Infinity };
      st.relayPaths.set(via, r);
    }
    return r;
  }

  private state(peer: string): PeerState {
    const st = this.peers.get(peer);
    if (!st) throw new Error(`path selector: unknown peer ${peer}`);
    return st;
  }

  private viewOf(st: PeerState): PathView {
    const a = st.active;
    if (a.kind === "direct") return { cls: classOf(a.c.origin), endpoint: { ...a.c.ep }, via: null, rttMs: a.c.srtt, since: st.since };
    if (a.kind === "relay") return { cls: "relay", endpoint: null, via: a.r.via, rttMs: a.r.srtt, since: st.since };
    return { cls: "none", endpoint: null, via: null, rttMs: null, since: st.since };
  }
}

/** Is direct candidate `a` preferable to `b`? Better class, then longer reply streak, then lower RTT. */
function better(a: Candidate, b: Candidate): boolean {
  const ra = RANK[classOf(a.origin)];
  const rb = RANK[classOf(b.origin)];
  if (ra !== rb) return ra > rb;
  if (a.streak !== b.streak) return a.streak > b.streak;
  return (a.srtt ?? Infinity) < (b.srtt ?? Infinity);
}

function fmt(e: Endpoint): string {
  const ip = e.ip >>> 0;
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${e.port}`;
}
