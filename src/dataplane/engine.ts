// The packet engine: WireGuard transport messages in and out, cryptokey routing, relay envelopes.
//
// It owns no file descriptors: the worker hands it packets and gives it functions to send UDP
// datagrams and write to the TUN. That keeps the packet logic testable without privileges and
// lets a fuzzer feed it arbitrary datagrams. Per packet it allocates nothing: buffers belong to
// the caller, counters and keys live in the shared tables.

import type { Aead } from "../crypto/aead.ts";
import { ReplayWindow } from "../wg/replay.ts";
import { RouteTable } from "../overlay/routes.ts";
import { SUITE_BYTE_MAX } from "../wg/messages.ts";
import {
  K_GENERATION,
  K_PEER,
  K_LOCAL_INDEX,
  K_REMOTE_INDEX,
  K_STATE,
  K_STRIDE,
  K_SUITE,
  KS_ACTIVE,
  KS_FREE,
  KS_RECV_ONLY,
  MAX_KEYPAIRS,
  MAX_PEERS,
  NC,
  P_ACTIVE,
  P_CURRENT,
  P_EP_IP,
  P_EP_PORT,
  P_KEY_HASH,
  P_NEXT,
  P_PREFIX,
  P_PREFIX_LEN,
  P_PREVIOUS,
  P_RX_SRC_IP,
  P_RX_SRC_PORT,
  P_RX_VIA,
  P_STRIDE,
  P_VIA,
  P_WANT_HANDSHAKE,
  PC_DROP_NO_SESSION,
  PC_DROP_REPLAY,
  PC_DROP_SPOOFED,
  PC_LAST_RX_MS,
  PC_LAST_TX_MS,
  PC_RELAY_BYTES_FOR,
  PC_RELAYED_FOR,
  PC_RX_BYTES,
  PC_RX_DIRECT,
  PC_RX_PACKETS,
  PC_RX_RELAYED,
  PC_STRIDE,
  PC_TX_BYTES,
  PC_TX_PACKETS,
  PC_TX_RELAYED,
  RELAY_SERVICE,
  REGION_MAIN,
  SLOT_MASK,
  type CounterRegion,
  TableViews,
  type WorkerCommand,
  type WorkerEvent,
} from "./tables.ts";
import { monoNow } from "../clock.ts";

/** WireGuard transport header: type(1) reserved(3) receiver(4) counter(8). */
export const TRANSPORT_HEADER = 16;
export const TAG = 16;
/** Relay envelope inside a transport payload: type(1) peer key(32). */
export const RELAY_HEADER = 33;
/** Space callers must leave before an outbound IP packet: a relayed packet carries two headers. */
export const HEADROOM = TRANSPORT_HEADER + RELAY_HEADER + TRANSPORT_HEADER; // 65
/** Space callers must leave after a packet: two tags plus padding to 16. */
export const TAILROOM = 2 * TAG + 16;

export const CTRL_RELAY = 0x07; // sender → relay: key = destination
export const CTRL_RELAY_REFUSED = 0x08;
export const CTRL_RELAY_DELIVER = 0x09; // relay → destination: key = original source

/** Keypairs older than this many packets are refused for sending (u32 counters). */
const SEND_LIMIT = 0xffff_e000;
const QUEUE_DEPTH = 16;
const QUEUE_SLOT = 2048;
const KEY_CACHE_MASK = 63; // peerByKey's table of recent hits

/** An explicit path: a UDP endpoint, or a relay peer index (via >= 0). */
export interface Route {
  ip: number;
  port: number;
  via: number;
}

export interface EngineIo {
  sendUdp(buf: Uint8Array, off: number, len: number, ip: number, port: number): boolean;
  writeTun(buf: Uint8Array, off: number, len: number): boolean;
  emit(ev: WorkerEvent): void;
}

/** Packets waiting for a session: a small ring per peer, allocated on first use. */
class PendingQueue {
  readonly buf = new Uint8Array(QUEUE_DEPTH * QUEUE_SLOT);
  readonly lens = new Int32Array(QUEUE_DEPTH);
  head = 0;
  count = 0;
}

export class PacketEngine {
  private readonly v: TableViews;
  private readonly peers: Int32Array;
  private readonly pc: Float64Array;
  private readonly node: Float64Array;
  private readonly kp: Int32Array;
  private readonly routes = new RouteTable();
  private readonly replay: ReplayWindow[] = [];
  private readonly seenGeneration = new Int32Array(MAX_KEYPAIRS).fill(-1);
  private readonly queues: (PendingQueue | undefined)[] = [];
  private readonly keyCache = new Int32Array(KEY_CACHE_MASK + 1).fill(-1);
  private now = monoNow(); // monotonic (src/clock.ts): last-rx/last-tx times the control plane compares

  constructor(
    views: TableViews,
    /** One AEAD per transport suite, indexed by the suite number a keypair records. */
    private readonly aeads: readonly Aead[],
    private readonly io: EngineIo,
    private readonly mtu: number,
    region: CounterRegion = REGION_MAIN,
  ) {
    this.v = views;
    this.peers = views.peers;
    this.pc = views.peerCounters;
    this.node = views.nodeRegion(region);
    this.kp = views.keypairs;
  }

  /** The AEAD of keypair `slot`'s suite (an unknown number falls back to WireGuard's, and fails to open). */
  private aeadOf(slot: number): Aead {
    return this.aeads[this.kp[slot * K_STRIDE + K_SUITE]!] ?? this.aeads[0]!;
  }

  /** Refresh the clock once per batch rather than per packet. */
  tick(): void {
    this.now = monoNow();
  }

  command(cmd: WorkerCommand): void {
    switch (cmd.op) {
      case "routes":
        this.routes.replace(cmd.routes);
        return;
      case "install":
        this.install(cmd.peer, cmd.slot, cmd.role);
        return;
      case "expire":
        this.expire(cmd.slot);
        return;
      case "flush":
        this.flushQueue(cmd.peer);
        return;
      case "discard":
        this.discardQueue(cmd.peer);
        return;
      case "stop":
        return;
    }
  }

  // ------------------------------------------------------------------ outbound (TUN → UDP)

  /**
   * An IP packet read from the TUN sits at buf[off, off+len), with HEADROOM bytes free before it
   * and TAILROOM after it. Encrypts it in place and sends it on the peer's path.
   */
  fromTun(buf: Uint8Array, off: number, len: number): void {
    if (len < 20 || buf[off]! >> 4 !== 4) {
      this.node[NC.drop_not_ipv4]!++;
      return;
    }
    const dst = ((buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!) >>> 0;
    const peer = this.routes.lookup(dst);
    if (peer < 0) {
      this.node[NC.drop_unknown_route]!++;
      return;
    }
    const slot = this.peers[peer * P_STRIDE + P_CURRENT]!;
    if (slot < 0 || this.kp[slot * K_STRIDE + K_STATE] !== KS_ACTIVE) {
      this.enqueue(peer, buf, off, len);
      return;
    }
    // WireGuard pads the plaintext to a multiple of 16, never beyond the MTU.
    let padded = (len + 15) & ~15;
    if (padded > this.mtu) padded = len > this.mtu ? len : this.mtu;
    buf.fill(0, off + len, off + padded);
    this.sendTransport(peer, slot, buf, off, padded, len);
  }

  /** Seal payload buf[off, off+plen) for `peer` on keypair `slot` and send it on the peer's path. */
  private sendTransport(peer: number, slot: number, buf: Uint8Array, off: number, plen: number, ipLen: number): boolean {
    const counter = this.v.nextSendCounter(slot);
    if (counter >= SEND_LIMIT) {
      this.peers[peer * P_STRIDE + P_WANT_HANDSHAKE] = 1;
      this.pc[peer * PC_STRIDE + PC_DROP_NO_SESSION]!++;
      this.node[NC.drop_no_session]!++;
      return false;
    }
    const h = off - TRANSPORT_HEADER;
    writeTransportHeader(buf, h, this.kp[slot * K_STRIDE + K_REMOTE_INDEX]!, counter);
    this.aeadOf(slot).seal(this.v.sendKey(slot), counter, buf, off, plen);
    const total = TRANSPORT_HEADER + plen + TAG;
    const ok = this.sendOnPath(peer, buf, h, total);
    const c = peer * PC_STRIDE;
    if (ok) {
      this.pc[c + PC_TX_PACKETS]!++;
      this.pc[c + PC_TX_BYTES]! += ipLen;
      this.pc[c + PC_LAST_TX_MS] = this.now;
      this.node[NC.tx_packets]!++;
      this.node[NC.tx_bytes]! += ipLen;
    }
    return ok;
  }

  /**
   * Control plane: seal the payload buf[off, off+len) (HEADROOM before it, TAILROOM after it) on
   * the peer's current keypair and send it on the peer's path, or on an explicit route (probes
   * test a path other than the one in use). False when there is no session.
   */
  sendPayload(peer: number, buf: Uint8Array, off: number, len: number, route?: Route, keypair?: number): boolean {
    // `keypair`: a specific keypair (the one a handshake just made, before the worker rotates to it).
    const slot = keypair ?? this.peers[peer * P_STRIDE + P_CURRENT]!;
    if (slot < 0 || this.kp[slot * K_STRIDE + K_STATE] !== KS_ACTIVE) return false;
    const counter = this.v.nextSendCounter(slot);
    if (counter >= SEND_LIMIT) return false;
    const h = off - TRANSPORT_HEADER;
    writeTransportHeader(buf, h, this.kp[slot * K_STRIDE + K_REMOTE_INDEX]!, counter);
    this.aeadOf(slot).seal(this.v.sendKey(slot), counter, buf, off, len);
    const total = TRANSPORT_HEADER + len + TAG;
    if (route) return this.sendOn(peer, buf, h, total, route.ip, route.port, route.via);
    return this.sendOnPath(peer, buf, h, total);
  }

  /** Send a finished WireGuard message (any type) at buf[off, off+len) to `peer`, directly or relayed. */
  sendOnPath(peer: number, buf: Uint8Array, off: number, len: number): boolean {
    const p = peer * P_STRIDE;
    return this.sendOn(peer, buf, off, len, this.peers[p + P_EP_IP]! >>> 0, this.peers[p + P_EP_PORT]!, this.peers[p + P_VIA]!);
  }

  /** Send a finished message for `peer` to ip:port, or through relay `via` when via >= 0. */
  sendOn(peer: number, buf: Uint8Array, off: number, len: number, ip: number, port: number, via: number): boolean {
    if (via < 0) {
      if (port === 0) {
        this.node[NC.drop_no_session]!++;
        return false;
      }
      if (!this.io.sendUdp(buf, off, len, ip, port)) {
        this.node[NC.drop_udp_send]!++;
        return false;
      }
      return true;
    }
    // Relayed: wrap the end-to-end message in a relay envelope on our session with the relay.
    const rslot = this.peers[via * P_STRIDE + P_CURRENT]!;
    if (rslot < 0 || this.kp[rslot * K_STRIDE + K_STATE] !== KS_ACTIVE) {
      this.peers[via * P_STRIDE + P_WANT_HANDSHAKE] = 1;
      this.node[NC.drop_no_session]!++;
      return false;
    }
    const e = off - RELAY_HEADER;
    buf[e] = CTRL_RELAY;
    this.writePeerKey(buf, e + 1, peer);
    const counter = this.v.nextSendCounter(rslot);
    const h = e - TRANSPORT_HEADER;
    writeTransportHeader(buf, h, this.kp[rslot * K_STRIDE + K_REMOTE_INDEX]!, counter);
    this.aeadOf(rslot).seal(this.v.sendKey(rslot), counter, buf, e, RELAY_HEADER + len);
    const ok = this.sendDirect(via, buf, h, TRANSPORT_HEADER + RELAY_HEADER + len + TAG);
    if (ok) this.pc[peer * PC_STRIDE + PC_TX_RELAYED]!++;
    return ok;
  }

  private sendDirect(peer: number, buf: Uint8Array, off: number, len: number): boolean {
    const p = peer * P_STRIDE;
    const port = this.peers[p + P_EP_PORT]!;
    if (port === 0) {
      this.node[NC.drop_no_session]!++;
      return false;
    }
    if (!this.io.sendUdp(buf, off, len, this.peers[p + P_EP_IP]! >>> 0, port)) {
      this.node[NC.drop_udp_send]!++;
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ inbound (UDP → TUN)

  /**
   * A datagram received from UDP at buf[off, off+len) from ip:port. Never throws: anything that is
   * not an authentic, fresh transport message from an admitted peer is counted and dropped.
   */
  fromUdp(buf: Uint8Array, off: number, len: number, ip: number, port: number): void {
    this.receive(buf, off, len, ip, port, -1);
  }

  private receive(buf: Uint8Array, off: number, len: number, ip: number, port: number, via: number): void {
    if (len < 4 || buf[off + 2] !== 0 || buf[off + 3] !== 0) {
      this.node[NC.drop_malformed]!++;
      return;
    }
    const type = buf[off]!;
    const b1 = buf[off + 1]!;
    if (type === 4 && b1 === 0) {
      this.receiveTransport(buf, off, len, ip, port, via);
      return;
    }
    // Byte 1 of messages 1 and 2 may carry a transport suite (src/wg/messages.ts); the handshake checks it.
    if ((type === 1 && len === 148 && b1 <= SUITE_BYTE_MAX) || (type === 2 && len === 92 && b1 <= SUITE_BYTE_MAX) || (type === 3 && len === 64 && b1 === 0)) {
      this.node[NC.handshake_messages_in]!++;
      this.io.emit({ ev: "handshake", data: buf.slice(off, off + len), ip, port, via });
      return;
    }
    this.node[NC.drop_malformed]!++;
  }

  private receiveTransport(buf: Uint8Array, off: number, len: number, ip: number, port: number, via: number): void {
    if (len < TRANSPORT_HEADER + TAG) {
      this.node[NC.drop_malformed]!++;
      return;
    }
    const idx = (buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24)) >>> 0;
    const slot = idx & SLOT_MASK;
    const k = slot * K_STRIDE;
    const state = this.kp[k + K_STATE]!;
    if (state === KS_FREE || this.kp[k + K_LOCAL_INDEX]! >>> 0 !== idx) {
      this.node[NC.drop_unknown_index]!++;
      return;
    }
    const lo = (buf[off + 8]! | (buf[off + 9]! << 8) | (buf[off + 10]! << 16) | (buf[off + 11]! << 24)) >>> 0;
    const hi = buf[off + 12]! | buf[off + 13]! | buf[off + 14]! | buf[off + 15]!;
    const peer = this.kp[k + K_PEER]!;
    const window = this.windowFor(slot);
    if (hi !== 0 || !window.check(lo)) {
      this.countReplay(peer);
      return;
    }
    const body = off + TRANSPORT_HEADER;
    const blen = len - TRANSPORT_HEADER;
    if (!this.aeadOf(slot).open(this.v.recvKey(slot), lo, buf, body, blen)) {
      this.node[NC.drop_decrypt_failed]!++;
      return;
    }
    if (!window.accept(lo)) {
      this.countReplay(peer);
      return;
    }
    const plen = blen - TAG;
    const p = peer * P_STRIDE;
    if (state === KS_RECV_ONLY) this.confirm(peer, slot);
    // Authentic: remember where it came from (roaming and path liveness read this).
    const c = peer * PC_STRIDE;
    this.pc[c + PC_LAST_RX_MS] = this.now;
    if (via < 0) {
      this.peers[p + P_RX_SRC_IP] = ip | 0;
      this.peers[p + P_RX_SRC_PORT] = port;
      this.pc[c + PC_RX_DIRECT]!++;
    } else {
      this.peers[p + P_RX_VIA] = via;
      this.pc[c + PC_RX_RELAYED]!++;
    }
    if (plen === 0) {
      this.node[NC.keepalives_in]!++;
      return;
    }
    const first = buf[body]!;
    if (first >> 4 === 4) {
      this.deliverIPv4(peer, buf, body, plen);
      return;
    }
    if (first >= 0x40) {
      this.node[NC.drop_not_ipv4]!++;
      return;
    }
    if (first === CTRL_RELAY) {
      this.forwardRelay(peer, buf, body, plen);
      return;
    }
    if (first === CTRL_RELAY_DELIVER) {
      this.receiveRelayed(peer, buf, body, plen, via);
      return;
    }
    this.node[NC.control_messages_in]!++;
    this.io.emit({ ev: "control", peer, data: buf.slice(body, body + plen), ip, port, via });
  }

  private deliverIPv4(peer: number, buf: Uint8Array, off: number, plen: number): void {
    const total = (buf[off + 2]! << 8) | buf[off + 3]!;
    if (plen < 20 || total < 20 || total > plen) {
      this.node[NC.drop_malformed]!++;
      return;
    }
    const src = ((buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!) >>> 0;
    const p = peer * P_STRIDE;
    const plenBits = this.peers[p + P_PREFIX_LEN]!;
    const mask = plenBits === 0 ? 0 : (0xffffffff << (32 - plenBits)) >>> 0;
    if (((src & mask) >>> 0) !== this.peers[p + P_PREFIX]! >>> 0) {
      this.pc[peer * PC_STRIDE + PC_DROP_SPOOFED]!++;
      this.node[NC.drop_spoofed_source]!++;
      return;
    }
    if (!this.io.writeTun(buf, off, total)) {
      this.node[NC.drop_tun_write]!++;
      return;
    }
    const c = peer * PC_STRIDE;
    this.pc[c + PC_RX_PACKETS]!++;
    this.pc[c + PC_RX_BYTES]! += total;
    this.node[NC.rx_packets]!++;
    this.node[NC.rx_bytes]! += total;
  }

  /** Relay role: `from` asks us to forward an end-to-end message to the peer named in the envelope. */
  private forwardRelay(from: number, buf: Uint8Array, off: number, plen: number): void {
    const innerLen = plen - RELAY_HEADER;
    if (innerLen < 32) {
      this.node[NC.drop_malformed]!++;
      return;
    }
    const dest = this.peerByKey(buf, off + 1);
    let reason = 0;
    if (this.v.misc[RELAY_SERVICE] !== 1) reason = 3;
    else if (dest < 0) reason = 2;
    else if (dest === from || this.peers[dest * P_STRIDE + P_VIA]! >= 0) reason = 4;
    const dslot = dest >= 0 ? this.peers[dest * P_STRIDE + P_CURRENT]! : -1;
    if (reason === 0 && (dslot < 0 || this.kp[dslot * K_STRIDE + K_STATE] !== KS_ACTIVE)) {
      this.peers[dest * P_STRIDE + P_WANT_HANDSHAKE] = 1;
      reason = 4;
    }
    if (reason !== 0) {
      this.node[NC.drop_relay_refused]!++;
      this.io.emit({ ev: "relay-refused", from, dest: buf.slice(off + 1, off + 33), reason });
      return;
    }
    // Same layout on the way out: swap the key for the source's and re-seal for the destination.
    buf[off] = CTRL_RELAY_DELIVER;
    this.writePeerKey(buf, off + 1, from);
    const counter = this.v.nextSendCounter(dslot);
    const h = off - TRANSPORT_HEADER;
    writeTransportHeader(buf, h, this.kp[dslot * K_STRIDE + K_REMOTE_INDEX]!, counter);
    this.aeadOf(dslot).seal(this.v.sendKey(dslot), counter, buf, off, plen);
    if (this.sendDirect(dest, buf, h, TRANSPORT_HEADER + plen + TAG)) {
      this.pc[from * PC_STRIDE + PC_RELAYED_FOR]!++;
      this.pc[from * PC_STRIDE + PC_RELAY_BYTES_FOR]! += innerLen;
      this.node[NC.relay_forwarded_packets]!++;
      this.node[NC.relay_forwarded_bytes]! += innerLen;
    }
  }

  /** Destination role: an end-to-end message arrived inside our session with relay `relay`. */
  private receiveRelayed(relay: number, buf: Uint8Array, off: number, plen: number, via: number): void {
    if (via >= 0 || plen < RELAY_HEADER + 4) {
      // never nest relays
      this.node[NC.drop_malformed]!++;
      return;
    }
    const src = this.peerByKey(buf, off + 1);
    if (src < 0) {
      this.node[NC.drop_relay_refused]!++;
      return;
    }
    this.receive(buf, off + RELAY_HEADER, plen - RELAY_HEADER, 0, 0, relay);
  }

  /** Copy peer's X25519 key to buf[at, at+32) (relay envelopes). */
  private writePeerKey(buf: Uint8Array, at: number, peer: number): void {
    const keys = this.v.peerKeys;
    const k = peer * 32;
    for (let i = 0; i < 32; i++) buf[at + i] = keys[k + i]!;
  }

  /**
   * Peer index whose X25519 key equals buf[off, off+32), or -1. Every relayed packet names a key
   * (a relay looks up the destination, a destination the source), so hits are remembered in a small
   * table indexed by the key's first bits; a miss scans the peer table.
   */
  private peerByKey(buf: Uint8Array, off: number): number {
    const hash = buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24);
    const cached = this.keyCache[hash & KEY_CACHE_MASK]!;
    if (cached >= 0 && this.keyIs(cached, hash, buf, off)) return cached;
    for (let p = 0; p < MAX_PEERS; p++) {
      if (this.keyIs(p, hash, buf, off)) {
        this.keyCache[hash & KEY_CACHE_MASK] = p;
        return p;
      }
    }
    return -1;
  }

  private keyIs(p: number, hash: number, buf: Uint8Array, off: number): boolean {
    const base = p * P_STRIDE;
    if (this.peers[base + P_ACTIVE] !== 1 || this.peers[base + P_KEY_HASH] !== hash) return false;
    const keys = this.v.peerKeys;
    for (let i = 4; i < 32; i++) if (keys[p * 32 + i] !== buf[off + i]) return false;
    return true;
  }

  private countReplay(peer: number): void {
    this.pc[peer * PC_STRIDE + PC_DROP_REPLAY]!++;
    this.node[NC.drop_replay]!++;
  }

  private windowFor(slot: number): ReplayWindow {
    let w = this.replay[slot];
    if (w === undefined) {
      w = new ReplayWindow();
      this.replay[slot] = w;
    }
    const gen = this.kp[slot * K_STRIDE + K_GENERATION]!;
    if (this.seenGeneration[slot] !== gen) {
      w.reset();
      this.seenGeneration[slot] = gen;
    }
    return w;
  }

  // ------------------------------------------------------------------ keypair rotation (worker-owned pointers)

  private install(peer: number, slot: number, role: "initiator" | "responder"): void {
    const p = peer * P_STRIDE;
    if (role === "responder") {
      // The initiator's first packet can arrive before this command and confirm the keypair
      // already; then it is current, and must not be parked (and later freed) as "next".
      if (this.peers[p + P_CURRENT] === slot || Atomics.load(this.kp, slot * K_STRIDE + K_STATE) === KS_ACTIVE) return;
      // Not usable for sending until the initiator proves it has the keys (its first packet).
      // An older unconfirmed keypair stays too (the initiator may complete either handshake);
      // main expires the one it does not choose.
      this.peers[p + P_NEXT] = slot;
      return;
    }
    this.rotate(peer, slot);
    this.io.emit({ ev: "rotated", peer });
    this.flushQueue(peer);
  }

  private confirm(peer: number, slot: number): void {
    const p = peer * P_STRIDE;
    if (this.peers[p + P_NEXT] === slot) this.peers[p + P_NEXT] = -1;
    Atomics.store(this.kp, slot * K_STRIDE + K_STATE, KS_ACTIVE);
    this.rotate(peer, slot);
    this.io.emit({ ev: "confirmed", peer, slot });
    this.flushQueue(peer);
  }

  private rotate(peer: number, slot: number): void {
    const p = peer * P_STRIDE;
    const cur = this.peers[p + P_CURRENT]!;
    if (cur === slot) return;
    const prev = this.peers[p + P_PREVIOUS]!;
    if (prev >= 0 && prev !== slot) this.free(prev);
    this.peers[p + P_PREVIOUS] = cur;
    this.peers[p + P_CURRENT] = slot;
    this.peers[p + P_WANT_HANDSHAKE] = 0;
  }

  private expire(slot: number): void {
    const peer = this.kp[slot * K_STRIDE + K_PEER]!;
    if (peer >= 0 && peer < MAX_PEERS) {
      const p = peer * P_STRIDE;
      for (const f of [P_CURRENT, P_PREVIOUS, P_NEXT]) if (this.peers[p + f] === slot) this.peers[p + f] = -1;
    }
    this.free(slot);
  }

  private free(slot: number): void {
    Atomics.store(this.kp, slot * K_STRIDE + K_STATE, KS_FREE);
  }

  // ------------------------------------------------------------------ pending queue

  private enqueue(peer: number, buf: Uint8Array, off: number, len: number): void {
    const c = peer * PC_STRIDE;
    if (len > QUEUE_SLOT - TAILROOM) {
      this.pc[c + PC_DROP_NO_SESSION]!++;
      this.node[NC.drop_no_session]!++;
      return;
    }
    let q = this.queues[peer];
    if (q === undefined) {
      q = new PendingQueue();
      this.queues[peer] = q;
    }
    if (q.count === QUEUE_DEPTH) {
      // Oldest out: the newest packets are the ones a retrying application still cares about.
      q.head = (q.head + 1) % QUEUE_DEPTH;
      q.count--;
      this.node[NC.drop_queue_full]!++;
    }
    const i = (q.head + q.count) % QUEUE_DEPTH;
    q.buf.set(buf.subarray(off, off + len), i * QUEUE_SLOT);
    q.lens[i] = len;
    q.count++;
    const p = peer * P_STRIDE;
    if (this.peers[p + P_WANT_HANDSHAKE] !== 1) {
      this.peers[p + P_WANT_HANDSHAKE] = 1;
      this.io.emit({ ev: "need-session", peer });
    }
  }

  /** Scratch packet buffer for flushing queued packets with the headroom the send path needs. */
  private readonly flushBuf = new Uint8Array(HEADROOM + QUEUE_SLOT + TAILROOM);

  private flushQueue(peer: number): void {
    const q = this.queues[peer];
    if (q === undefined || q.count === 0) return;
    while (q.count > 0) {
      const i = q.head;
      const len = q.lens[i]!;
      this.flushBuf.set(q.buf.subarray(i * QUEUE_SLOT, i * QUEUE_SLOT + len), HEADROOM);
      q.head = (q.head + 1) % QUEUE_DEPTH;
      q.count--;
      this.fromTun(this.flushBuf, HEADROOM, len);
    }
  }

  private discardQueue(peer: number): void {
    const q = this.queues[peer];
    if (q === undefined) return;
    this.pc[peer * PC_STRIDE + PC_DROP_NO_SESSION]! += q.count;
    this.node[NC.drop_no_session]! += q.count;
    q.count = 0;
    q.head = 0;
    this.peers[peer * P_STRIDE + P_WANT_HANDSHAKE] = 0;
  }
}

export function writeTransportHeader(buf: Uint8Array, h: number, receiver: number, counter: number): void {
  buf[h] = 4;
  buf[h + 1] = 0;
  buf[h + 2] = 0;
  buf[h + 3] = 0;
  buf[h + 4] = receiver & 0xff;
  buf[h + 5] = (receiver >>> 8) & 0xff;
  buf[h + 6] = (receiver >>> 16) & 0xff;
  buf[h + 7] = (receiver >>> 24) & 0xff;
  buf[h + 8] = counter & 0xff;
  buf[h + 9] = (counter >>> 8) & 0xff;
  buf[h + 10] = (counter >>> 16) & 0xff;
  buf[h + 11] = (counter >>> 24) & 0xff;
  buf[h + 12] = 0;
  buf[h + 13] = 0;
  buf[h + 14] = 0;
  buf[h + 15] = 0;
}
