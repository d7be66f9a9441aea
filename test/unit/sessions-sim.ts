// A two-host simulation of the session layer on a fake clock: each host has a SessionManager (the
// daemon's main thread), a TX and an RX PacketEngine (the data-plane workers) and a main-thread
// engine (keepalives), wired like src/daemon/daemon.ts does it. Every hop has a delay: the wire,
// main → worker commands, worker → main events, and — the knob that matters — the time the main
// thread takes to get to a handshake message (a loaded machine). Used by the sessions-*.test.ts files.

import { setSystemTime } from "bun:test";
import { setMonoClockForTests } from "../../src/clock.ts";
import { createAeads, OFFER_AES_GCM } from "../../src/crypto/aead.ts";
import { generateX25519KeyPair } from "../../src/crypto/x25519.ts";
import { HEADROOM, PacketEngine, TAILROOM } from "../../src/dataplane/engine.ts";
import {
  allocateTables,
  commandTarget,
  P_ACTIVE,
  P_CURRENT,
  P_EP_IP,
  P_EP_PORT,
  P_KEY_HASH,
  P_NEXT,
  P_PREFIX,
  P_PREFIX_LEN,
  P_PREVIOUS,
  P_RX_VIA,
  P_VIA,
  P_WANT_HANDSHAKE,
  REGION_MAIN,
  REGION_RX,
  REGION_TX,
  TableViews,
  type WorkerCommand,
  type WorkerEvent,
} from "../../src/dataplane/tables.ts";
import { Counters } from "../../src/daemon/counters.ts";
import { Log } from "../../src/daemon/log.ts";
import { PeerSet, type PeerRecord } from "../../src/daemon/peer-set.ts";
import { SessionManager, type Origin } from "../../src/daemon/sessions.ts";

export interface Delays {
  wire: number; // one way, ms
  command: number; // main → worker
  event: number; // worker → main (other than handshakes)
  handshake: () => number; // worker → main for a handshake message: main-thread load
}

type Job = { at: number; seq: number; fn: () => void };

/** Discrete-event clock. Date.now() follows it (handshake timestamps, the engines' clocks). */
export class Clock {
  now = Date.UTC(2026, 0, 1);
  private jobs: Job[] = [];
  private seq = 0;

  after(ms: number, fn: () => void): void {
    const job = { at: this.now + Math.max(0, ms), seq: this.seq++, fn };
    // Insert keeping (at, seq) order; the queue stays short.
    let i = this.jobs.length;
    while (i > 0 && (this.jobs[i - 1]!.at > job.at || (this.jobs[i - 1]!.at === job.at && this.jobs[i - 1]!.seq > job.seq))) i--;
    this.jobs.splice(i, 0, job);
  }

  runUntil(t: number): void {
    while (this.jobs.length > 0 && this.jobs[0]!.at <= t) {
      const job = this.jobs.shift()!;
      this.now = job.at;
      setSystemTime(new Date(this.now));
      job.fn();
    }
    this.now = t;
    setSystemTime(new Date(this.now));
  }
}

const PSK = new Uint8Array(32).fill(7);

export class SimHost {
  readonly v = new TableViews(allocateTables());
  readonly peers = new PeerSet();
  readonly counters = new Counters();
  readonly keys = generateX25519KeyPair();
  readonly sessions: SessionManager;
  readonly main: PacketEngine;
  readonly tx: PacketEngine;
  readonly rx: PacketEngine;
  readonly logLines: string[] = [];
  other!: SimHost;
  peer!: PeerRecord;
  /** Sequence numbers of echo replies received (pings this host sent that came back). */
  readonly replies = new Set<number>();
  sessionsUp = 0;
  gaveUp = 0;
  /** The network drops every datagram this host sends while this returns true. */
  dropOut: (bytes: Uint8Array) => boolean = () => false;
  private readonly scratch = new Uint8Array(HEADROOM + 2048 + TAILROOM);
  private readonly tunBuf = new Uint8Array(HEADROOM + 2048 + TAILROOM);

  constructor(
    readonly clock: Clock,
    readonly name: string,
    readonly ip: number, // underlay
    readonly overlay: number, // overlay address; the host owns overlay/24
    readonly delays: Delays,
  ) {
    const aeads = createAeads();
    const io = (region: 0 | 1 | 2) => ({
      sendUdp: (buf: Uint8Array, off: number, len: number, ip: number, port: number) => this.wire(buf.slice(off, off + len), ip, port),
      writeTun: (buf: Uint8Array, off: number, len: number) => {
        this.fromTunDevice(buf.slice(off, off + len));
        return true;
      },
      emit: (ev: WorkerEvent) => this.clock.after(ev.ev === "handshake" ? this.delays.handshake() : this.delays.event, () => this.onWorkerEvent(ev)),
      region,
    });
    const mk = (region: 0 | 1 | 2) => {
      const i = io(region);
      return new PacketEngine(this.v, aeads, i, 1420, region);
    };
    this.main = mk(REGION_MAIN);
    this.tx = mk(REGION_TX);
    this.rx = mk(REGION_RX);
    this.counters.attach(this.v, () => this.peers.all().map((p) => ({ index: p.index, id: p.id })));
    this.sessions = new SessionManager(
      this.v,
      this.peers,
      this.keys,
      { psk: PSK, underLoadPerSecond: 1000, suites: OFFER_AES_GCM },
      {
        sendToPeer: (peer, msg) => this.sendMessage(peer, msg, null),
        sendToOrigin: (peer, origin, msg) => this.sendMessage(peer, msg, origin),
        sendKeepalive: (peer, keypair) => {
          this.main.tick();
          return this.main.sendPayload(peer.index, this.scratch, HEADROOM, 0, undefined, keypair);
        },
        post: (cmd) => this.post(cmd),
        onSession: () => this.sessionsUp++,
        onGiveUp: () => this.gaveUp++,
      },
      this.counters,
      new Log("text", (l) => this.logLines.push(l)),
    );
  }

  connect(other: SimHost): void {
    this.other = other;
    this.peer = this.peers.add({
      id: other.name,
      name: other.name,
      x25519: other.keys.publicKey,
      ed25519: null,
      prefix: { addr: other.overlay & 0xffffff00, len: 24, text: "" } as PeerRecord["prefix"],
      relayCapable: false,
      wireguardOnly: false,
      staticEndpoint: { ip: other.ip, port: 4100 },
      staticEndpointText: null,
      bootstrap: false,
    });
    const i = this.peer.index;
    const v = this.v;
    v.peerKeys.set(other.keys.publicKey, i * 32);
    const k = other.keys.publicKey;
    v.setPeer(i, P_KEY_HASH, k[0]! | (k[1]! << 8) | (k[2]! << 16) | (k[3]! << 24));
    v.setPeer(i, P_PREFIX, other.overlay & 0xffffff00);
    v.setPeer(i, P_PREFIX_LEN, 24);
    for (const f of [P_CURRENT, P_PREVIOUS, P_NEXT, P_VIA, P_RX_VIA]) v.setPeer(i, f, -1);
    v.setPeer(i, P_EP_IP, other.ip);
    v.setPeer(i, P_EP_PORT, 4100);
    v.setPeer(i, P_WANT_HANDSHAKE, 0);
    v.setPeer(i, P_ACTIVE, 1);
    this.post({ op: "routes", routes: [{ addr: other.overlay & 0xffffff00, len: 24, peer: i }] });
  }

  /** The daemon's 50 ms control-plane tick, forever. */
  startTicking(period = 50): void {
    const loop = () => {
      this.sessions.tick(this.clock.now);
      this.clock.after(period, loop);
    };
    this.clock.after(period, loop);
  }

  private post(cmd: WorkerCommand): void {
    const t = commandTarget(cmd);
    for (const e of t === "both" ? [this.tx, this.rx] : t === "tx" ? [this.tx] : [this.rx]) {
      this.clock.after(this.delays.command, () => {
        e.tick();
        e.command(cmd);
      });
    }
  }

  private onWorkerEvent(ev: WorkerEvent): void {
    const now = this.clock.now;
    switch (ev.ev) {
      case "handshake": {
        const origin: Origin = { ip: ev.ip, port: ev.port, via: ev.via };
        const src = new Uint8Array(6);
        new DataView(src.buffer).setUint32(0, ev.ip);
        new DataView(src.buffer).setUint16(4, ev.port);
        this.sessions.onHandshakeMessage(ev.data, origin, src, now);
        return;
      }
      case "need-session":
        this.sessions.want(this.peer, now);
        return;
      case "confirmed":
        this.sessions.onConfirmed(this.peer, ev.slot);
        this.post({ op: "flush", peer: ev.peer });
        return;
      case "rotated":
        this.post({ op: "flush", peer: ev.peer });
        return;
      default:
        return;
    }
  }

  private sendMessage(peer: PeerRecord | null, msg: Uint8Array, origin: Origin | null): boolean {
    this.scratch.set(msg, HEADROOM);
    this.main.tick();
    if (origin && origin.via < 0) return this.wire(msg.slice(), origin.ip, origin.port);
    if (!peer) return false;
    return this.main.sendOnPath(peer.index, this.scratch, HEADROOM, msg.length);
  }

  private wire(bytes: Uint8Array, ip: number, port: number): boolean {
    if (ip !== this.other.ip || port !== 4100) return true;
    if (this.dropOut(bytes)) return true;
    const to = this.other;
    this.clock.after(this.delays.wire, () => {
      to.rx.tick();
      const buf = new Uint8Array(bytes.length + 64);
      buf.set(bytes, 0);
      to.rx.fromUdp(buf, 0, bytes.length, this.ip, 4100);
    });
    return true;
  }

  /** Send one echo request (a minimal IPv4 packet carrying `seq`) to the other host. */
  ping(seq: number): void {
    this.sendIp(this.overlay, this.other.overlay, 8, seq);
  }

  private sendIp(src: number, dst: number, type: number, seq: number): void {
    const b = this.tunBuf;
    const o = HEADROOM;
    b.fill(0, o, o + 28);
    b[o] = 0x45;
    b[o + 3] = 28;
    b[o + 9] = 1;
    new DataView(b.buffer).setUint32(o + 12, src);
    new DataView(b.buffer).setUint32(o + 16, dst);
    b[o + 20] = type;
    new DataView(b.buffer).setUint32(o + 24, seq);
    this.tx.tick();
    this.tx.fromTun(b, o, 28);
  }

  /** The kernel behind the TUN: answers echo requests, records echo replies. */
  private fromTunDevice(p: Uint8Array): void {
    const dv = new DataView(p.buffer, p.byteOffset);
    const type = p[20]!;
    const seq = dv.getUint32(24);
    if (type === 8) {
      const src = dv.getUint32(12);
      this.clock.after(0, () => this.sendIp(this.overlay, src, 0, seq));
    } else if (type === 0) this.replies.add(seq);
  }
}

/** Two connected hosts on one clock, ticking. */
export function simPair(delays: Delays): { clock: Clock; a: SimHost; b: SimHost } {
  const clock = new Clock();
  setSystemTime(new Date(clock.now));
  // The engines' monotonic clock (last-rx/last-tx times) follows the simulated one too.
  setMonoClockForTests(() => clock.now);
  const a = new SimHost(clock, "a", 0xc6120801, 0x0a2a0001, delays);
  const b = new SimHost(clock, "b", 0xc6120802, 0x0a2a0101, delays);
  a.connect(b);
  b.connect(a);
  a.startTicking();
  b.startTicking();
  clock.runUntil(clock.now + 100); // routes reach the workers
  return { clock, a, b };
}

/** Ping until one echo comes back (a first session), within `limitMs`; true when it did. */
export function warmUp(clock: Clock, a: SimHost, limitMs = 60_000): boolean {
  const end = clock.now + limitMs;
  for (let seq = 1_000_000; clock.now < end; seq++) {
    a.ping(seq);
    clock.runUntil(clock.now + 200);
    if (a.replies.has(seq)) return true;
  }
  return false;
}

/**
 * Ping from a every `intervalMs` for `durationMs`; returns the sequence numbers that never came
 * back (within `graceMs` of the end).
 */
export function pingRun(clock: Clock, a: SimHost, durationMs: number, intervalMs = 100, graceMs = 3000): number[] {
  const start = clock.now;
  const n = Math.floor(durationMs / intervalMs);
  for (let i = 0; i < n; i++) clock.after(i * intervalMs, () => a.ping(i));
  clock.runUntil(start + durationMs + graceMs);
  const lost: number[] = [];
  for (let i = 0; i < n; i++) if (!a.replies.has(i)) lost.push(i);
  return lost;
}

/** Lost sequence numbers as runs, for a readable failure message: "120-181 (62), 950 (1)". */
export function runsOf(lost: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < lost.length; ) {
    let j = i;
    while (j + 1 < lost.length && lost[j + 1] === lost[j]! + 1) j++;
    out.push(i === j ? `${lost[i]}` : `${lost[i]}-${lost[j]} (${j - i + 1})`);
    i = j + 1;
  }
  return out.join(", ");
}
