// WireGuard sessions on the main thread: handshakes (as initiator and responder), cookies under
// load, keypair lifetimes, rekeying and keepalives. Transport data itself never comes here: the
// data-plane worker encrypts and decrypts it with the keys this module publishes.

import { InitiationTimestamps } from "../wg/initiation-timestamps.ts";
import { SUITES, type Suite } from "../crypto/aead.ts";
import { Handshaker, type InitiatorPending, type SessionKeys } from "../wg/handshake.ts";
import { CookieChecker, CookieJar } from "../wg/cookie.ts";
import { RecentInitiations } from "../wg/recent-initiations.ts";
import { tai64nCompare } from "../wg/tai64n.ts";
import {
  KEEPALIVE_TIMEOUT,
  rekeyTimeout,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ATTEMPT_TIME,
  scaled,
} from "../wg/constants.ts";
import {
  K_PEER,
  K_STATE,
  K_SUITE,
  K_STRIDE,
  KS_ACTIVE,
  KS_FREE,
  KS_RECV_ONLY,
  P_CURRENT,
  P_WANT_HANDSHAKE,
  PC_LAST_RX_MS,
  PC_LAST_TX_MS,
  PC_STRIDE,
  type TableViews,
} from "../dataplane/tables.ts";
import { SlotAllocator } from "./slots.ts";
import type { PeerRecord, PeerSet } from "./peer-set.ts";
import type { Counters } from "./counters.ts";
import type { Log } from "./log.ts";

/** Where a handshake message came from, and so where its answer goes. */
export interface Origin {
  ip: number;
  port: number;
  via: number; // relay peer index, -1 when direct
}

/** What the session layer needs from the daemon: sending bytes and hearing about session events. */
export interface SessionIo {
  /** Send a complete WireGuard message to a peer on its current path. */
  sendToPeer(peer: PeerRecord, msg: Uint8Array): boolean;
  /**
   * Send a complete WireGuard message to an explicit origin (answers go back where questions came
   * from). `peer` is null for a cookie reply to a sender not yet known.
   */
  sendToOrigin(peer: PeerRecord | null, origin: Origin, msg: Uint8Array): boolean;
  /** Send an encrypted keepalive (empty transport payload) to a peer, on a given keypair slot if named. */
  sendKeepalive(peer: PeerRecord, keypair?: number): boolean;
  post(cmd: import("../dataplane/tables.ts").WorkerCommand): void;
  /** A handshake completed (either role); `origin` is where the peer's message came from. */
  onSession(peer: PeerRecord, role: "initiator" | "responder", origin: Origin): void;
  /** The handshake gave up after REKEY_ATTEMPT_TIME. */
  onGiveUp(peer: PeerRecord): void;
}

interface Pending {
  pending: InitiatorPending;
  message: Uint8Array;
  slot: number;
  localIndex: number;
  sentAt: number;
}

/**
 * Initiations superseded by a retransmission stay answerable, at most this many per peer: a
 * response that comes back later than REKEY_TIMEOUT (a loaded host, a slow path) still completes
 * the handshake instead of being refused as unexpected while the next retry meets the same fate.
 */
export const MAX_SUPERSEDED_INITIATIONS = 3;

/**
 * Responder keypairs still waiting for the initiator's first packet, at most this many per peer.
 * Each answers one of the initiator's (re)transmissions, and the initiator may complete any of
 * them; once it uses one, the others are expired.
 */
export const MAX_UNCONFIRMED_KEYPAIRS = MAX_SUPERSEDED_INITIATIONS + 1;

interface PeerSessionState {
  pending: Pending | null; // the newest initiation in flight
  superseded: Pending[]; // older initiations of the same attempt, oldest first, still answerable
  firstAttemptAt: number; // 0 when not trying
  lastTimestamp: Uint8Array | null; // newest accepted TAI64N from this peer (replay protection)
  lastHandshakeAt: number; // monotonic ms (src/clock.ts), 0 never
  lastInitiationSentAt: number;
  lastInitiationReceivedAt: number; // an initiation from the peer was accepted (wall ms, 0 never)
  keypairs: Map<number, { createdAt: number; initiator: boolean }>;
  jar: CookieJar;
  persistentKeepaliveMs: number; // 0 = off
  rekeyRequested: boolean;
}

export interface SessionOptions {
  psk: Uint8Array;
  /** Above this many handshake messages per second the responder demands cookies (mac2). */
  underLoadPerSecond: number;
  /** Transport suites beyond WireGuard's offered to (and accepted from) other vine hosts: offer bits. */
  suites: number;
  /** The TAI64N timestamps initiations carry (durable in the daemon); default: in memory only. */
  timestamps?: InitiationTimestamps;
}

export class SessionManager {
  private readonly hs: Handshaker;
  private readonly timestamps: InitiationTimestamps;
  private readonly cookies: CookieChecker;
  /** Initiations authenticated lately (by mac1): byte-identical copies are dropped before any DH. */
  private readonly recent = new RecentInitiations();
  private readonly slots: SlotAllocator;
  private readonly state = new Map<number, PeerSessionState>();
  private readonly pendingByIndex = new Map<number, { peer: PeerRecord; p: Pending }>();
  private handshakeWindowStart = 0;
  private handshakesInWindow = 0;

  constructor(
    private readonly v: TableViews,
    private readonly peers: PeerSet,
    private readonly local: { privateKey: Uint8Array; publicKey: Uint8Array },
    private readonly opts: SessionOptions,
    private readonly io: SessionIo,
    private readonly counters: Counters,
    private readonly log: Log,
  ) {
    this.hs = new Handshaker(local, { accept: opts.suites });
    this.timestamps = opts.timestamps ?? new InitiationTimestamps();
    this.cookies = new CookieChecker(local.publicKey);
    this.slots = new SlotAllocator(v);
  }

  private st(peer: PeerRecord): PeerSessionState {
    let s = this.state.get(peer.index);
    if (!s) {
      s = {
        pending: null,
        superseded: [],
        firstAttemptAt: 0,
        lastTimestamp: null,
        lastHandshakeAt: 0,
        lastInitiationSentAt: 0,
        lastInitiationReceivedAt: 0,
        keypairs: new Map(),
        jar: new CookieJar(peer.x25519),
        persistentKeepaliveMs: 0,
        rekeyRequested: false,
      };
      this.state.set(peer.index, s);
    }
    return s;
  }

  lastHandshakeAt(peer: PeerRecord): number {
    return this.state.get(peer.index)?.lastHandshakeAt ?? 0;
  }

  hasSession(peer: PeerRecord): boolean {
    const slot = this.v.peer(peer.index, P_CURRENT);
    return slot >= 0 && Atomics.load(this.v.keypairs, slot * K_STRIDE + K_STATE) === KS_ACTIVE;
  }

  /** The transport suite of the peer's current keypair (call only when hasSession). */
  cipherOf(peer: PeerRecord): Suite {
    const slot = this.v.peer(peer.index, P_CURRENT);
    return SUITES[this.v.keypair(slot, K_SUITE)] ?? SUITES[0];
  }

  setPersistentKeepalive(peer: PeerRecord, ms: number): void {
    this.st(peer).persistentKeepaliveMs = ms;
  }

  /** Start (or keep) trying to reach a peer. */
  want(peer: PeerRecord, now: number): void {
    const s = this.st(peer);
    if (s.firstAttemptAt === 0) s.firstAttemptAt = now;
    if (!s.pending || now - s.pending.sentAt >= rekeyTimeout()) this.initiate(peer, now);
  }

  /**
   * Send an initiation now. Within REKEY_TIMEOUT of the last one, the same initiation is sent again
   * (to another path, when punching or probing) rather than replaced, so that whichever copy
   * arrives first can be answered.
   */
  initiate(peer: PeerRecord, now: number, origin?: Origin): void {
    const s = this.st(peer);
    if (s.pending && now - s.pending.sentAt < rekeyTimeout()) {
      const msg = s.pending.message;
      if (origin ? this.io.sendToOrigin(peer, origin, msg) : this.io.sendToPeer(peer, msg)) this.counters.inc("handshake_initiations_resent", peer.id);
      return;
    }
    // WireGuard's rule: at most one new initiation per REKEY_TIMEOUT per peer. Whatever goes wrong
    // elsewhere, a peer is never flooded with handshakes (and neither is this host's CPU).
    if (now - s.lastInitiationSentAt < rekeyTimeout()) {
      this.counters.inc("handshake_initiations_rate_limited", peer.id);
      return;
    }
    const r = this.slots.reserve();
    if (!r) {
      this.counters.inc("handshake_slots_exhausted");
      return;
    }
    if (s.pending) {
      // Keep the unanswered initiation answerable: its response may just be late.
      s.superseded.push(s.pending);
      while (s.superseded.length > MAX_SUPERSEDED_INITIATIONS) this.dropPending(s.superseded.shift()!);
    }
    // Stock WireGuard peers get exactly WireGuard: no suite offer.
    const offer = peer.wireguardOnly ? 0 : this.opts.suites;
    const ts = this.timestamps.next(peer.x25519);
    if (ts.behindMs > 0) {
      // The wall clock reads earlier than an initiation already sent to this peer (it was set back,
      // perhaps before a restart): send the next timestamp after that one, which the peer accepts.
      this.counters.inc("handshake_timestamp_clock_behind", peer.id);
      this.log.rateLimited(`clock-behind-${peer.index}`, "wall clock is behind the last handshake timestamp sent to this peer: sending the next one after it", {
        peer: peer.name,
        behind_s: Math.round(ts.behindMs / 1000),
      });
    }
    const { message, pending } = this.hs.createInitiation(peer.x25519, this.opts.psk, r.localIndex, s.jar.cookie(now), offer, ts.timestamp);
    const p: Pending = { pending, message, slot: r.slot, localIndex: r.localIndex, sentAt: now };
    s.pending = p;
    s.lastInitiationSentAt = now;
    if (s.firstAttemptAt === 0) s.firstAttemptAt = now;
    this.pendingByIndex.set(r.localIndex, { peer, p });
    const sent = origin ? this.io.sendToOrigin(peer, origin, message) : this.io.sendToPeer(peer, message);
    if (sent) this.counters.inc("handshake_initiations_sent", peer.id);
  }

  private dropPending(p: Pending): void {
    this.pendingByIndex.delete(p.localIndex);
    this.slots.release(p.slot);
  }

  /** End the handshake attempt: every initiation in flight (except `keep`, which completed) is dropped. */
  private dropAllPending(s: PeerSessionState, keep?: Pending): void {
    if (s.pending && s.pending !== keep) this.dropPending(s.pending);
    for (const p of s.superseded) if (p !== keep) this.dropPending(p);
    s.pending = null;
    s.superseded = [];
  }

  /** A handshake message (type 1, 2 or 3) handed over by the worker. */
  onHandshakeMessage(msg: Uint8Array, origin: Origin, srcAddr: Uint8Array, now: number): void {
    const type = msg[0];
    if (type === 1) this.onInitiation(msg, origin, srcAddr, now);
    else if (type === 2) this.onResponse(msg, origin, srcAddr, now);
    else if (type === 3) this.onCookieReply(msg, now);
  }

  private underLoad(now: number): boolean {
    if (now - this.handshakeWindowStart >= 1000) {
      this.handshakeWindowStart = now;
      this.handshakesInWindow = 0;
    }
    this.handshakesInWindow++;
    return this.handshakesInWindow > this.opts.underLoadPerSecond;
  }

  /** mac1 always; mac2 (a cookie bound to the source address) when under load. */
  private admitMacs(msg: Uint8Array, origin: Origin, srcAddr: Uint8Array, now: number): boolean {
    return this.mac1Ok(msg) && this.admitLoad(msg, origin, srcAddr, now);
  }

  private mac1Ok(msg: Uint8Array): boolean {
    if (this.cookies.checkMac1(msg)) return true;
    this.counters.inc("handshake_bad_mac1");
    return false;
  }

  /** Under load, mac2 (a cookie bound to the source address) or a cookie reply instead of an answer. */
  private admitLoad(msg: Uint8Array, origin: Origin, srcAddr: Uint8Array, now: number): boolean {
    if (this.underLoad(now) && !this.cookies.checkMac2(msg, srcAddr, now)) {
      const senderIndex = new DataView(msg.buffer, msg.byteOffset).getUint32(4, true);
      const reply = this.cookies.createReply(msg, srcAddr, senderIndex, now);
      this.io.sendToOrigin(null, origin, reply);
      this.counters.inc("handshake_cookie_replies_sent");
      return false;
    }
    return true;
  }

  private onInitiation(msg: Uint8Array, origin: Origin, srcAddr: Uint8Array, now: number): void {
    if (!this.mac1Ok(msg)) return;
    // A byte-identical copy of an initiation already authenticated (the initiator sent it to several
    // paths at once): it was answered, or refused as a replay, the first time. Dropped before the
    // load check and any DH work; it can only ever be refused, never admitted, by being dropped here.
    const seen = this.recent.lookup(msg);
    if (seen >= 0) {
      const from = this.peers.get(seen);
      this.counters.inc("handshake_duplicates", from ? from.id : undefined);
      return;
    }
    if (!this.admitLoad(msg, origin, srcAddr, now)) return;
    const init = this.hs.consumeInitiation(msg);
    if (!init) {
      this.counters.inc("handshake_failed");
      return;
    }
    const peer = this.peers.byX25519(init.peerPublic);
    if (!peer) {
      this.counters.inc("drop_unauthorized_peer");
      this.log.rateLimited("unauthorized", `handshake from an identity that is not allow-listed (x25519 ${Buffer.from(init.peerPublic).toString("base64")}) from ${fmtOrigin(origin)}`);
      return;
    }
    const s = this.st(peer);
    if (s.lastTimestamp && tai64nCompare(init.timestamp, s.lastTimestamp) <= 0) {
      // Every later copy of it would be refused the same way (timestamps only move forward).
      this.recent.add(msg, peer.index);
      this.counters.inc("handshake_replayed", peer.id);
      return;
    }
    const r = this.slots.reserve();
    if (!r) {
      // Not remembered: a copy arriving once a slot is free is still answered.
      this.counters.inc("handshake_slots_exhausted");
      return;
    }
    this.recent.add(msg, peer.index);
    s.lastTimestamp = init.timestamp;
    s.lastInitiationReceivedAt = now;
    this.capUnconfirmed(peer, s, MAX_UNCONFIRMED_KEYPAIRS - 1);
    const { message, keys } = this.hs.createResponse(init.state, this.opts.psk, r.localIndex, s.jar.cookie(now));
    this.slots.publish(r.slot, peer.index, keys.localIndex, keys.remoteIndex, keys.sendKey, keys.recvKey, KS_RECV_ONLY, keys.suite);
    this.trackKeypair(peer, r.slot, now, false);
    this.io.post({ op: "install", peer: peer.index, slot: r.slot, role: "responder" });
    this.io.sendToOrigin(peer, origin, message);
    this.counters.inc("handshakes_completed", peer.id);
    s.lastHandshakeAt = now;
    this.io.onSession(peer, "responder", origin);
  }

  private onResponse(msg: Uint8Array, origin: Origin, srcAddr: Uint8Array, now: number): void {
    if (!this.admitMacs(msg, origin, srcAddr, now)) return;
    const receiver = new DataView(msg.buffer, msg.byteOffset).getUint32(8, true);
    const entry = this.pendingByIndex.get(receiver);
    if (!entry) {
      this.counters.inc("handshake_unexpected_response");
      return;
    }
    const keys: SessionKeys | null = this.hs.consumeResponse(entry.p.pending, this.opts.psk, msg);
    if (!keys) {
      this.counters.inc("handshake_failed", entry.peer.id);
      return;
    }
    const { peer, p } = entry;
    const s = this.st(peer);
    if (p !== s.pending) this.counters.inc("handshake_late_responses", peer.id);
    this.pendingByIndex.delete(receiver);
    this.dropAllPending(s, p);
    s.firstAttemptAt = 0;
    s.lastHandshakeAt = now;
    s.rekeyRequested = false;
    this.slots.publish(p.slot, peer.index, keys.localIndex, keys.remoteIndex, keys.sendKey, keys.recvKey, KS_ACTIVE, keys.suite);
    this.trackKeypair(peer, p.slot, now, true);
    this.io.post({ op: "install", peer: peer.index, slot: p.slot, role: "initiator" });
    // Confirm the new keypair to the responder at once (WireGuard does the same): it may not send
    // on it until it has received something, and it may have nothing to say first.
    this.io.sendKeepalive(peer, p.slot);
    this.counters.inc("handshakes_completed", peer.id);
    this.io.onSession(peer, "initiator", origin);
  }

  private onCookieReply(msg: Uint8Array, now: number): void {
    const receiver = new DataView(msg.buffer, msg.byteOffset).getUint32(4, true);
    const entry = this.pendingByIndex.get(receiver);
    if (!entry) return;
    const s = this.st(entry.peer);
    if (s.jar.consumeReply(msg, entry.p.pending.mac1, now)) this.counters.inc("handshake_cookie_replies_received", entry.peer.id);
  }

  private trackKeypair(peer: PeerRecord, slot: number, now: number, initiator: boolean): void {
    this.st(peer).keypairs.set(slot, { createdAt: now, initiator });
  }

  /**
   * The worker confirmed responder keypair `slot` (the initiator's first packet on it arrived):
   * the initiator chose it, so the other unconfirmed responder keypairs made before it (answers
   * to its retransmissions) will never be used.
   */
  onConfirmed(peer: PeerRecord, slot?: number): void {
    const s = this.st(peer);
    s.firstAttemptAt = 0;
    s.rekeyRequested = false;
    // The peer's handshake won the race; ours is redundant.
    this.dropAllPending(s);
    const confirmed = slot === undefined ? undefined : s.keypairs.get(slot);
    if (confirmed) {
      for (const [other, kp] of s.keypairs) {
        if (other === slot || kp.initiator || kp.createdAt > confirmed.createdAt || !this.unconfirmed(peer, other)) continue;
        this.io.post({ op: "expire", slot: other });
        s.keypairs.delete(other);
      }
    }
  }

  private unconfirmed(peer: PeerRecord, slot: number): boolean {
    const k = slot * K_STRIDE;
    return Atomics.load(this.v.keypairs, k + K_STATE) === KS_RECV_ONLY && this.v.keypairs[k + K_PEER] === peer.index;
  }

  /** Keep at most `max` unconfirmed responder keypairs for a peer: the oldest go first. */
  private capUnconfirmed(peer: PeerRecord, s: PeerSessionState, max: number): void {
    const waiting = [...s.keypairs].filter(([slot, kp]) => !kp.initiator && this.unconfirmed(peer, slot)).sort((x, y) => x[1].createdAt - y[1].createdAt);
    for (let i = 0; i < waiting.length - max; i++) {
      this.io.post({ op: "expire", slot: waiting[i]![0] });
      s.keypairs.delete(waiting[i]![0]);
    }
  }

  /** Timers, run every ~50 ms. */
  tick(now: number): void {
    for (const peer of this.peers.all()) {
      const s = this.state.get(peer.index);
      const want = this.v.peer(peer.index, P_WANT_HANDSHAKE) === 1;
      if (!s && !want) continue;
      const st = this.st(peer);
      this.expireKeypairs(peer, st, now);
      const current = this.v.peer(peer.index, P_CURRENT);
      const haveSession = this.hasSession(peer);
      if (want && !haveSession) {
        if (st.firstAttemptAt === 0) st.firstAttemptAt = now;
        if (now - st.firstAttemptAt > scaled(REKEY_ATTEMPT_TIME)) {
          this.giveUp(peer, st);
          continue;
        }
        if (!st.pending || now - st.pending.sentAt >= rekeyTimeout()) this.initiate(peer, now);
        continue;
      }
      if (st.pending && now - st.pending.sentAt >= rekeyTimeout()) {
        if (haveSession && !st.rekeyRequested) {
          // An initiation sent only as a probe of another path while a session runs: let it lapse.
          this.dropAllPending(st);
          st.firstAttemptAt = 0;
          continue;
        }
        // A rekey or a first contact is in flight: retransmit until REKEY_ATTEMPT_TIME.
        if (st.firstAttemptAt !== 0 && now - st.firstAttemptAt > scaled(REKEY_ATTEMPT_TIME)) this.giveUp(peer, st);
        else this.initiate(peer, now);
        continue;
      }
      if (!haveSession) continue;
      const kp = st.keypairs.get(current);
      const c = peer.index * PC_STRIDE;
      const lastRx = this.v.peerCounters[c + PC_LAST_RX_MS]!;
      const lastTx = this.v.peerCounters[c + PC_LAST_TX_MS]!;
      // Rekey (WireGuard §6.2): the initiator of the current keypair renews it after
      // REKEY_AFTER_TIME while it is in use. The responder waits for that handshake; it initiates
      // only as a fallback when the keypair nears REJECT_AFTER_TIME and the peer has not sent a
      // single initiation since this keypair was made (rekeying from both ends at once makes
      // crossing handshakes and extra keypairs, for nothing).
      if (kp && !st.pending) {
        const age = now - kp.createdAt;
        const inUse = now - lastTx < scaled(KEEPALIVE_TIMEOUT) || now - lastRx < scaled(KEEPALIVE_TIMEOUT);
        const due = kp.initiator
          ? age >= scaled(REKEY_AFTER_TIME)
          : age >= scaled(REJECT_AFTER_TIME) - scaled(KEEPALIVE_TIMEOUT) - rekeyTimeout() && st.lastInitiationReceivedAt <= kp.createdAt;
        if (inUse && due) {
          st.firstAttemptAt = now;
          st.rekeyRequested = true;
          this.initiate(peer, now);
          continue;
        }
      }
      // Passive keepalive: we received data but sent nothing for KEEPALIVE_TIMEOUT.
      if (lastRx > lastTx && now - lastTx >= scaled(KEEPALIVE_TIMEOUT) && now - lastRx < scaled(KEEPALIVE_TIMEOUT) * 2) {
        if (this.io.sendKeepalive(peer)) this.v.peerCounters[c + PC_LAST_TX_MS] = now;
      } else if (st.persistentKeepaliveMs > 0 && now - lastTx >= st.persistentKeepaliveMs) {
        if (this.io.sendKeepalive(peer)) this.v.peerCounters[c + PC_LAST_TX_MS] = now;
      }
    }
  }

  private giveUp(peer: PeerRecord, st: PeerSessionState): void {
    this.dropAllPending(st);
    st.firstAttemptAt = 0;
    this.io.post({ op: "discard", peer: peer.index });
    this.counters.inc("handshake_gave_up", peer.id);
    this.io.onGiveUp(peer);
  }

  private expireKeypairs(peer: PeerRecord, st: PeerSessionState, now: number): void {
    for (const [slot, kp] of st.keypairs) {
      const shared = Atomics.load(this.v.keypairs, slot * K_STRIDE + K_STATE);
      const stillOurs = shared !== KS_FREE && this.v.keypairs[slot * K_STRIDE + K_PEER] === peer.index;
      if (!stillOurs) {
        st.keypairs.delete(slot);
        continue;
      }
      if (now - kp.createdAt >= scaled(REJECT_AFTER_TIME) * 3 || now - kp.createdAt >= scaled(REJECT_AFTER_TIME)) {
        this.io.post({ op: "expire", slot });
        st.keypairs.delete(slot);
      }
    }
  }

  /** Forget a removed peer: expire its keypairs and any handshake in flight. */
  forget(peer: PeerRecord): void {
    this.recent.forgetPeer(peer.index);
    const st = this.state.get(peer.index);
    if (!st) return;
    this.dropAllPending(st);
    for (const slot of st.keypairs.keys()) this.io.post({ op: "expire", slot });
    this.state.delete(peer.index);
  }

}

export function fmtOrigin(o: Origin): string {
  if (o.via >= 0) return `relay #${o.via}`;
  return `${(o.ip >>> 24) & 255}.${(o.ip >>> 16) & 255}.${(o.ip >>> 8) & 255}.${o.ip & 255}:${o.port}`;
}
