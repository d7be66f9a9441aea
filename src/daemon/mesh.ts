// Mesh glue: connects the path selector and the control messages to the daemon's sessions and
// data-plane tables. Decisions live in src/mesh (pure, tested with a fake clock); this file only
// feeds them events and carries out the actions they return.

import {
  CTRL,
  decodeControl,
  encodeClaim,
  encodeEndpoints,
  encodeLookup,
  encodeProbe,
  encodeProbeReply,
  encodeRegister,
  encodeRelayRefused,
  relayRefusedReasonName,
  type ControlMessage,
} from "../mesh/messages.ts";
import { signClaim, verifyClaim } from "../mesh/claims.ts";
import { EndpointRegistry } from "../mesh/registry.ts";
import { PathSelector, type PathAction, type PathView } from "../mesh/paths.ts";
import {
  P_EP_IP,
  P_EP_PORT,
  P_RX_SRC_IP,
  P_RX_SRC_PORT,
  P_RX_VIA,
  P_VIA,
  PC_RX_DIRECT,
  PC_RX_RELAYED,
  PC_STRIDE,
  PC_TX_PACKETS,
} from "../dataplane/tables.ts";
import type { Daemon } from "./daemon.ts";
import type { Endpoint, PeerRecord } from "./peer-set.ts";
import { fmtOrigin, type Origin } from "./sessions.ts";
import { monoNow } from "../clock.ts";

const REGISTER_EVERY_MS = 15_000;
const BOOTSTRAP_KEEPALIVE_MS = 15_000; // keeps NAT mappings towards bootstrap/relay peers open
/**
 * A handshake completes on the main thread, but the data-plane worker installs the keypair a moment
 * later (a message to its thread), and a responder's keypair is usable only once the initiator's first
 * packet confirms it. For this long after a handshake, a probe finding no usable session is simply
 * lost: starting yet another handshake would only churn keypairs.
 */
const SESSION_SETTLE_MS = 1_000;

interface Seen {
  rxDirect: number;
  rxRelayed: number;
  tx: number;
  /** Last direct source seen (bootstrap role: the registry follows a registered peer's NAT mapping). */
  srcIp: number;
  srcPort: number;
}

export class Mesh {
  readonly paths: PathSelector;
  readonly registry = new EndpointRegistry({ ttlMs: 90_000 });
  private readonly seen = new Map<number, Seen>();
  private lastRegister = 0;
  /** Peers (by index) whose session came up but whose greeting (claim, registration) waits for it to be usable. */
  private readonly greet = new Set<number>();
  /** The relay list last given to the selector (ids joined), to pass it only when it changes. */
  private relaysKey = "";

  constructor(private readonly d: Daemon) {
    const pol = d.config.policy;
    this.paths = new PathSelector({ allowRelay: pol.allowRelay, allowSignalingUpgrade: pol.allowSignalingUpgrade }, timingsFromEnv());
  }

  private get now(): number {
    return monoNow();
  }

  start(now: number): void {
    const last = this.d.persistence;
    const lastPaths = last.lastPaths();
    for (const peer of this.d.peers.all()) this.addPeer(peer, lastPaths.get(peer.id) ?? null);
    this.updateRelays();
    // Sessions with bootstrap and relay peers are kept up from the start: registration,
    // lookups and relaying all ride on them. Others start on first packet, or now when we have a
    // last good path from a previous run (warm restart).
    for (const peer of this.d.peers.all()) {
      if (peer.bootstrap || peer.relayCapable || lastPaths.has(peer.id)) {
        this.d.sessions.want(peer, now);
        if (peer.bootstrap || peer.relayCapable) this.d.sessions.setPersistentKeepalive(peer, BOOTSTRAP_KEEPALIVE_MS);
      }
    }
  }

  /**
   * Plain WireGuard peers speak no vine control messages: no probes, no signaling, no relay. Their
   * path is their endpoint (static, then wherever authenticated packets come from), as in WireGuard.
   */
  private readonly wireguardPaths = new Map<number, PathView>();

  private addWireguardPeer(peer: PeerRecord, last: { endpoint: string | null } | null): void {
    const ep = peer.staticEndpoint ?? parseEndpoint(last?.endpoint ?? null);
    const view: PathView = { cls: ep ? "direct" : "none", endpoint: ep, via: null, rttMs: null, since: this.now };
    this.wireguardPaths.set(peer.index, view);
    this.apply(peer, view);
  }

  private roamWireguardPeer(peer: PeerRecord, ep: { ip: number; port: number }): void {
    const cur = this.wireguardPaths.get(peer.index);
    if (!cur || (cur.endpoint && cur.endpoint.ip === ep.ip && cur.endpoint.port === ep.port)) return;
    const next: PathView = { cls: "direct", endpoint: ep, via: null, rttMs: null, since: this.now };
    this.wireguardPaths.set(peer.index, next);
    this.apply(peer, next);
    this.d.log.info("path change", { peer: peer.name, from: cur.cls, to: "direct", reason: "authenticated packets from a new endpoint", endpoint: fmtEp(ep) });
    this.d.persistence.event("path_change", peer.id, cur.cls, "direct", { reason: "roamed", endpoint: fmtEp(ep) });
  }

  private addPeer(peer: PeerRecord, last: { cls: string; endpoint: string | null; via: string | null } | null): void {
    if (peer.wireguardOnly) {
      this.addWireguardPeer(peer, last);
      return;
    }
    const lastGood = last && last.cls !== "none" ? { cls: last.cls as PathView["cls"], endpoint: parseEndpoint(last.endpoint), via: last.via } : null;
    this.paths.addPeer(peer.id, { staticEndpoint: peer.staticEndpoint, lastGood, relayCapable: peer.relayCapable }, this.now);
    this.apply(peer, this.paths.view(peer.id));
  }

  removePeer(peer: PeerRecord): void {
    this.wireguardPaths.delete(peer.index);
    this.paths.removePeer(peer.id);
    this.seen.delete(peer.index);
    this.greet.delete(peer.index);
    this.updateRelays();
  }

  onReload(now: number): void {
    for (const peer of this.d.peers.all()) {
      if (!this.seen.has(peer.index) && !this.pathsHas(peer) && !this.wireguardPaths.has(peer.index)) {
        this.addPeer(peer, null);
        if (peer.bootstrap || peer.relayCapable) this.d.sessions.want(peer, now);
      }
    }
    this.updateRelays();
  }

  private pathsHas(peer: PeerRecord): boolean {
    return this.paths.has(peer.id);
  }

  // ------------------------------------------------------------------ events from sessions/worker

  onSession(peer: PeerRecord, _role: "initiator" | "responder", origin: Origin): void {
    const now = this.now;
    if (peer.wireguardOnly) {
      if (origin.via < 0) this.roamWireguardPeer(peer, { ip: origin.ip, port: origin.port });
      this.d.log.info("session up", { peer: peer.name, from: fmtOrigin(origin) });
      return;
    }
    this.runActions(this.paths.onAuthenticated(peer.id, origin.via >= 0 ? { via: this.idOf(origin.via) } : { endpoint: { ip: origin.ip, port: origin.port } }, now));
    this.d.log.info("session up", { peer: peer.name, from: fmtOrigin(origin) });
    // The new keypair is not usable yet (see SESSION_SETTLE_MS): the claim and the registration, and
    // the relay list, follow in tick() once it is.
    this.greet.add(peer.index);
    this.greetReady();
    this.updateRelays();
    this.runActions(this.paths.tick(now));
  }

  /** Send the claim (and, to a bootstrap peer, the registration) to every peer whose new session is now usable. */
  private greetReady(): void {
    for (const index of this.greet) {
      const peer = this.d.peers.get(index);
      if (!peer) {
        this.greet.delete(index);
        continue;
      }
      if (!this.d.sessions.hasSession(peer)) continue;
      this.greet.delete(index);
      this.sendClaim(peer);
      if (peer.bootstrap) this.register(peer);
    }
  }

  onGiveUp(peer: PeerRecord): void {
    this.d.log.warn("handshake gave up", { peer: peer.name });
    this.d.persistence.event("handshake_gave_up", peer.id, null, null, null);
  }

  onNeedSession(peer: PeerRecord, now: number): void {
    this.d.sessions.want(peer, now);
  }

  onRelayRefused(from: number, dest: Uint8Array, reason: number): void {
    const peer = this.d.peers.get(from);
    if (!peer) return;
    const to = this.d.peers.byX25519(dest);
    this.d.log.rateLimited(`relay-refused-${from}-${reason}`, "relay request refused", {
      from: peer.name,
      to: to ? to.name : `unknown key ${Buffer.from(dest).toString("base64")}`,
      reason: relayRefusedReasonName(reason),
    });
    this.d.sendPayload(peer, encodeRelayRefused(dest, reason));
  }

  onControl(peer: PeerRecord, data: Uint8Array, origin: Origin, now: number): void {
    const msg = decodeControl(data);
    if (!msg) {
      this.d.counters.inc("drop_control_malformed", peer.id);
      return;
    }
    this.d.counters.inc(`control_${msg.type}_in`);
    this.handle(peer, msg, origin, now);
  }

  private handle(peer: PeerRecord, msg: ControlMessage, origin: Origin, now: number): void {
    switch (msg.type) {
      case "claim": {
        const r = verifyClaim(msg.bytes, {
          networkId: this.d.config.node.networkId,
          nowMs: Date.now(), // claims carry wall-clock time; `now` is the monotonic timer clock
          lookup: (pub) => {
            const p = this.d.peers.all().find((x) => x.ed25519 && Buffer.compare(Buffer.from(x.ed25519), Buffer.from(pub)) === 0);
            return p ? { prefix: p.prefix } : null;
          },
        });
        if (!r.ok) {
          this.d.counters.inc(`claim_rejected_${r.reason}`, peer.id);
          this.d.log.rateLimited(`claim-${peer.index}`, "membership claim rejected", { peer: peer.name, reason: r.reason });
          return;
        }
        if (peer.ed25519 && Buffer.compare(Buffer.from(peer.ed25519), Buffer.from(r.publicKey)) !== 0) {
          this.d.counters.inc("claim_rejected_wrong_sender", peer.id);
          return;
        }
        this.d.counters.inc("claims_accepted", peer.id);
        return;
      }
      case "register": {
        if (origin.via >= 0) return; // a reflexive endpoint is only meaningful when seen directly
        this.registry.register(peer.x25519, { ip: origin.ip, port: origin.port }, msg.endpoints, now);
        this.d.counters.inc("registrations", peer.id);
        return;
      }
      case "lookup": {
        const target = this.d.peers.byX25519(msg.target);
        const eps = target ? this.registry.lookup(target.x25519, now) : [];
        this.d.sendPayload(peer, encodeEndpoints(msg.requestId, msg.target, false, eps));
        if (target && eps.length > 0) {
          // Tell the target about the requester at the same time, so both sides punch together.
          const mine = this.registry.lookup(peer.x25519, now);
          if (mine.length > 0) this.d.sendPayload(target, encodeEndpoints(msg.requestId, peer.x25519, true, mine));
          this.d.counters.inc("punch_coordinations");
        }
        return;
      }
      case "endpoints": {
        const subject = this.d.peers.byX25519(msg.subject);
        if (!subject || subject.index === peer.index) return;
        if (!peer.bootstrap) {
          this.d.counters.inc("drop_endpoints_from_non_bootstrap", peer.id);
          return;
        }
        if (msg.endpoints.length === 0) return;
        this.paths.onSignaled(subject.id, msg.endpoints, now);
        this.runActions(this.paths.tick(now));
        return;
      }
      case "probe": {
        const route = origin.via >= 0 ? { ip: 0, port: 0, via: origin.via } : { ip: origin.ip, port: origin.port, via: -1 };
        this.d.sendPayload(peer, encodeProbeReply(msg.probeId, msg.sentAt), route);
        return;
      }
      case "probe_reply": {
        const waiter = this.pingWaiters.get(msg.probeId);
        if (waiter) waiter(now);
        else this.runActions(this.paths.onProbeReply(peer.id, msg.probeId, now));
        return;
      }
      case "relay_refused": {
        // Counted against the peer we could not reach (the relay's own scope when the key is not one of ours).
        const dest = this.d.peers.byX25519(msg.peer);
        this.d.counters.inc("relay_refused_received", dest ? dest.id : peer.id);
        this.d.log.rateLimited(`relay-refused-in-${peer.index}-${dest?.index ?? -1}-${msg.reason}`, "relay refused our packet", {
          relay: peer.name,
          to: dest ? dest.name : `unknown key ${Buffer.from(msg.peer).toString("base64")}`,
          reason: relayRefusedReasonName(msg.reason),
        });
        return;
      }
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ timers

  tick(now: number): void {
    const v = this.d.views;
    for (const peer of this.d.peers.all()) {
      const c = peer.index * PC_STRIDE;
      let s = this.seen.get(peer.index);
      if (!s) {
        s = { rxDirect: 0, rxRelayed: 0, tx: 0, srcIp: 0, srcPort: 0 };
        this.seen.set(peer.index, s);
      }
      const rxDirect = v.peerCounters[c + PC_RX_DIRECT]!;
      const rxRelayed = v.peerCounters[c + PC_RX_RELAYED]!;
      const tx = v.peerCounters[c + PC_TX_PACKETS]!;
      if (rxDirect !== s.rxDirect) {
        const ip = v.peer(peer.index, P_RX_SRC_IP) >>> 0;
        const port = v.peer(peer.index, P_RX_SRC_PORT);
        if (peer.wireguardOnly) this.roamWireguardPeer(peer, { ip, port });
        else this.runActions(this.paths.onAuthenticated(peer.id, { endpoint: { ip, port } }, now));
        if (ip !== s.srcIp || port !== s.srcPort) {
          s.srcIp = ip;
          s.srcPort = port;
          // Bootstrap role: a registered peer whose NAT mapping moved is found at its new one at once,
          // not only after its next REGISTER.
          this.registry.follow(peer.x25519, { ip, port });
        }
      }
      if (rxRelayed !== s.rxRelayed) {
        const via = v.peer(peer.index, P_RX_VIA);
        if (via >= 0) this.runActions(this.paths.onAuthenticated(peer.id, { via: this.idOf(via) }, now));
      }
      if (tx !== s.tx && !peer.wireguardOnly) this.paths.onTraffic(peer.id, now);
      s.rxDirect = rxDirect;
      s.rxRelayed = rxRelayed;
      s.tx = tx;
    }
    // Session state lives in the data-plane tables: poll it rather than trust the moment a handshake
    // completed (the keypair is installed asynchronously, a relay's session may come and go).
    if (this.greet.size > 0) this.greetReady();
    this.updateRelays();
    if (now - this.lastRegister >= REGISTER_EVERY_MS) {
      this.lastRegister = now;
      for (const peer of this.d.peers.all()) if (peer.bootstrap && this.d.sessions.hasSession(peer)) this.register(peer);
      this.registry.expire(now);
    }
    this.runActions(this.paths.tick(now));
  }

  /** Events may return actions (or leave every decision to tick): run whatever comes back. */
  private runActions(actions: PathAction[] | void): void {
    if (!actions) return;
    const now = this.now;
    for (const a of actions) {
      const peer = this.d.peers.byPeerId(a.peer);
      if (!peer) continue;
      switch (a.kind) {
        case "probe": {
          const route = a.via !== null ? { ip: 0, port: 0, via: this.indexOf(a.via) } : a.endpoint ? { ip: a.endpoint.ip, port: a.endpoint.port, via: -1 } : undefined;
          if (route && route.via === -2) break;
          // Without a session a handshake is the probe; with one, a failed send is just a lost probe.
          // A session that completed a moment ago is being installed: the probe is lost, not a reason
          // for another handshake.
          if (!this.d.sessions.hasSession(peer)) {
            if (now - this.d.sessions.lastHandshakeAt(peer) < SESSION_SETTLE_MS) break;
            if (route) this.d.sessions.initiate(peer, now, route);
            else this.d.sessions.want(peer, now);
          } else this.d.sendPayload(peer, encodeProbe(a.probeId, now), route);
          break;
        }
        case "lookup": {
          const target = peer.x25519;
          for (const b of this.d.peers.all()) {
            if (b.bootstrap && b.index !== peer.index && this.d.sessions.hasSession(b)) {
              this.d.sendPayload(b, encodeLookup((Math.random() * 0xffffffff) >>> 0, target));
              this.d.counters.inc("lookups_sent");
            }
          }
          break;
        }
        case "punch": {
          this.d.counters.inc("punch_attempts", peer.id);
          a.endpoints.forEach((ep, i) => {
            const route = { ip: ep.ip, port: ep.port, via: -1 };
            // The selector's probe ids, so that replies to punches count as probe replies.
            const id = a.probeIds?.[i] ?? (Math.random() * 0xffffffff) >>> 0;
            if (this.d.sessions.hasSession(peer)) this.d.sendPayload(peer, encodeProbe(id, now), route);
            else this.d.sessions.initiate(peer, now, route);
          });
          break;
        }
        case "switch": {
          this.apply(peer, a.to);
          this.d.log.info("path change", { peer: peer.name, from: a.from.cls, to: a.to.cls, reason: a.reason, endpoint: fmtEp(a.to.endpoint), via: a.to.via });
          this.d.persistence.event("path_change", peer.id, a.from.cls, a.to.cls, { reason: a.reason, endpoint: fmtEp(a.to.endpoint), via: a.to.via });
          if (a.from.cls !== "none" && rank(a.to.cls) < rank(a.from.cls)) this.d.counters.inc("fallback_transitions", peer.id);
          if (a.to.cls === "relay") this.d.counters.inc("relay_usage", peer.id);
          if (peer.relayCapable) this.updateRelays();
          break;
        }
      }
    }
  }

  /** Install a path view in the data-plane table. */
  private apply(peer: PeerRecord, view: PathView): void {
    const v = this.d.views;
    if (view.cls === "relay" && view.via) {
      const relay = this.indexOf(view.via);
      if (relay >= 0) {
        v.setPeer(peer.index, P_VIA, relay);
        this.d.setRelayedRoute(peer, true);
        return;
      }
    }
    v.setPeer(peer.index, P_VIA, -1);
    this.d.setRelayedRoute(peer, false);
    if (view.endpoint) {
      v.setPeer(peer.index, P_EP_IP, view.endpoint.ip);
      v.setPeer(peer.index, P_EP_PORT, view.endpoint.port);
    }
  }

  /** Relay-capable peers we can use right now: a usable session on a direct path. */
  private updateRelays(): void {
    const relays = this.d.peers
      .all()
      .filter((p) => p.relayCapable && this.d.sessions.hasSession(p) && this.d.views.peer(p.index, P_VIA) < 0)
      .map((p) => p.id);
    const key = relays.join(",");
    if (key === this.relaysKey) return;
    this.relaysKey = key;
    this.paths.setRelays(relays);
  }

  private sendClaim(peer: PeerRecord): void {
    const id = this.d.identity;
    const claim = signClaim(id.seed, id.publicKey, this.d.config.node.networkId, this.d.config.tun.prefix, Date.now());
    this.d.sendPayload(peer, encodeClaim(claim));
  }

  private register(peer: PeerRecord): void {
    this.d.sendPayload(peer, encodeRegister(this.d.localEndpoints()));
  }

  private idOf(index: number): string {
    return this.d.peers.get(index)?.id ?? `#${index}`;
  }

  private indexOf(id: string): number {
    return this.d.peers.byPeerId(id)?.index ?? -2;
  }

  private readonly pingWaiters = new Map<number, (now: number) => void>();

  /**
   * `vine ping`: real PROBE messages through the path the data plane would use for `ipText`,
   * each answered by the peer's daemon with a PROBE_REPLY on the same path.
   */
  async ping(ipText: string, count: number, intervalMs: number, timeoutMs: number) {
    const ip = parseEndpoint(`${ipText}:0`)?.ip;
    if (ip === undefined) throw new Error(`not an IPv4 address: ${JSON.stringify(ipText)}`);
    const peer = this.d.peers.all().filter((p) => prefixHas(p.prefix, ip)).sort((a, b) => b.prefix.len - a.prefix.len)[0];
    if (!peer) throw new Error(`no route to ${ipText}: no allowed peer owns it`);
    const replies: { seq: number; rtt_ms: number | null; path: string; via: string | null }[] = [];
    for (let seq = 1; seq <= Math.max(1, Math.min(count, 1000)); seq++) {
      if (!this.d.sessions.hasSession(peer)) {
        this.d.sessions.want(peer, monoNow());
        await waitUntil(() => this.d.sessions.hasSession(peer), timeoutMs);
      }
      const view = this.pathOf(peer);
      const probeId = (Math.random() * 0xffffffff) >>> 0;
      const sentAt = performance.now();
      const got = new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          this.pingWaiters.delete(probeId);
          resolve(null);
        }, timeoutMs);
        this.pingWaiters.set(probeId, () => {
          clearTimeout(t);
          this.pingWaiters.delete(probeId);
          resolve(performance.now() - sentAt);
        });
      });
      const sent = this.d.sendPayload(peer, encodeProbe(probeId, monoNow()));
      const rtt = sent ? await got : null;
      if (!sent) this.pingWaiters.delete(probeId);
      replies.push({ seq, rtt_ms: rtt === null ? null : Math.round(rtt * 1000) / 1000, path: view.cls, via: view.cls === "relay" ? view.via : null });
      if (seq < count) await Bun.sleep(intervalMs);
    }
    const ok = replies.filter((r) => r.rtt_ms !== null);
    return {
      target: ipText,
      peer_id: peer.id,
      name: peer.name,
      sent: replies.length,
      received: ok.length,
      replies,
    };
  }

  /** What the operator sees for a peer's path. */
  pathOf(peer: PeerRecord): PathView {
    const wg = this.wireguardPaths.get(peer.index);
    if (wg) return { ...wg };
    if (!this.paths.has(peer.id)) return { cls: "none", endpoint: null, via: null, rttMs: null, since: 0 };
    return this.paths.view(peer.id);
  }

  stats(): { fallbackTransitions: number; promotions: number; relayUsage: number } {
    return this.paths.stats();
  }
}

function prefixHas(p: { addr: number; len: number }, ip: number): boolean {
  const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
  return ((ip & mask) >>> 0) === p.addr >>> 0;
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = monoNow() + timeoutMs;
  while (monoNow() < end) {
    if (cond()) return true;
    await Bun.sleep(20);
  }
  return cond();
}

function rank(c: string): number {
  return c === "direct" ? 3 : c === "signaling_then_direct" ? 2 : c === "relay" ? 1 : 0;
}

function fmtEp(e: Endpoint | null): string | null {
  if (!e) return null;
  return `${(e.ip >>> 24) & 255}.${(e.ip >>> 16) & 255}.${(e.ip >>> 8) & 255}.${e.ip & 255}:${e.port}`;
}

function parseEndpoint(s: string | null): Endpoint | null {
  if (!s) return null;
  const m = /^(?:udp:\/\/)?(\d+)\.(\d+)\.(\d+)\.(\d+):(\d+)$/.exec(s);
  if (!m) return null;
  return { ip: ((+m[1]! << 24) | (+m[2]! << 16) | (+m[3]! << 8) | +m[4]!) >>> 0, port: +m[5]! };
}

/** Path timings may be tightened by tests through VINE_TEST_PATH_TIMINGS (JSON). */
function timingsFromEnv(): Record<string, number> | undefined {
  const raw = process.env.VINE_TEST_PATH_TIMINGS;
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as Record<string, number>;
  } catch {
    return undefined;
  }
}

export { fmtEp };
