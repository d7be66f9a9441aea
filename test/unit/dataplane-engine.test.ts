// The packet engine without privileges: engines wired together in memory, exercising transport
// encryption, cryptokey routing, replay rejection, the pending queue, relay envelopes, and a fuzz
// run in which random and mutated datagrams never throw and are always counted.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { createAead, createAeads, SUITE_AES_GCM, SUITE_CHACHA } from "../../src/crypto/aead.ts";
import { HEADROOM, PacketEngine, TAILROOM } from "../../src/dataplane/engine.ts";
import {
  allocateTables,
  KS_ACTIVE,
  NODE_COUNTERS,
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
  P_RX_VIA,
  P_VIA,
  PC_RX_PACKETS,
  PC_STRIDE,
  RELAY_SERVICE,
  TableViews,
  type WorkerEvent,
} from "../../src/dataplane/tables.ts";
import { SlotAllocator } from "../../src/daemon/slots.ts";

interface Sent {
  bytes: Uint8Array;
  ip: number;
  port: number;
}

class Node {
  readonly v = new TableViews(allocateTables());
  readonly sent: Sent[] = [];
  readonly tun: Uint8Array[] = [];
  readonly events: WorkerEvent[] = [];
  readonly engine: PacketEngine;
  readonly slots: SlotAllocator;
  readonly key = new Uint8Array(randomBytes(32));

  constructor(
    readonly name: string,
    readonly ip: number,
    readonly prefix: number,
  ) {
    this.engine = new PacketEngine(
      this.v,
      createAeads(),
      {
        sendUdp: (buf, off, len, ip, port) => {
          this.sent.push({ bytes: buf.slice(off, off + len), ip, port });
          return true;
        },
        writeTun: (buf, off, len) => {
          this.tun.push(buf.slice(off, off + len));
          return true;
        },
        emit: (ev) => this.events.push(ev),
      },
      1420,
    );
    this.slots = new SlotAllocator(this.v);
  }

  addPeer(index: number, peer: Node, opts: { direct?: boolean; via?: number } = {}): void {
    const v = this.v;
    v.peerKeys.set(peer.key, index * 32);
    v.setPeer(index, P_KEY_HASH, peer.key[0]! | (peer.key[1]! << 8) | (peer.key[2]! << 16) | (peer.key[3]! << 24));
    v.setPeer(index, P_PREFIX, peer.prefix);
    v.setPeer(index, P_PREFIX_LEN, 24);
    for (const f of [P_CURRENT, P_PREVIOUS, P_NEXT, P_RX_VIA]) v.setPeer(index, f, -1);
    v.setPeer(index, P_VIA, opts.via ?? -1);
    v.setPeer(index, P_EP_IP, opts.direct === false ? 0 : peer.ip);
    v.setPeer(index, P_EP_PORT, opts.direct === false ? 0 : 4100);
    v.setPeer(index, P_ACTIVE, 1);
  }

  drop(name: (typeof NODE_COUNTERS)[number]): number {
    return this.v.node[NC[name]]!;
  }
}

/** Give nodes x (peer index px on y's side... ) a shared session: x as initiator, y as responder already confirmed. */
function session(x: Node, xIdx: number, y: Node, yIdx: number, suites: [number, number] = [0, 0]): void {
  const k1 = new Uint8Array(randomBytes(32));
  const k2 = new Uint8Array(randomBytes(32));
  const rx = x.slots.reserve()!;
  const ry = y.slots.reserve()!;
  x.slots.publish(rx.slot, xIdx, rx.localIndex, ry.localIndex, k1, k2, KS_ACTIVE, suites[0]);
  y.slots.publish(ry.slot, yIdx, ry.localIndex, rx.localIndex, k2, k1, KS_ACTIVE, suites[1]);
  x.engine.command({ op: "install", peer: xIdx, slot: rx.slot, role: "initiator" });
  y.engine.command({ op: "install", peer: yIdx, slot: ry.slot, role: "initiator" });
}

const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

/** A minimal IPv4/UDP packet from src to dst with `payload` bytes of body. */
function ipPacket(src: number, dst: number, payload: number): Uint8Array {
  const len = 28 + payload;
  const p = new Uint8Array(len);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, len);
  p[8] = 64;
  p[9] = 17;
  dv.setUint32(12, src);
  dv.setUint32(16, dst);
  for (let i = 28; i < len; i++) p[i] = i & 0xff;
  return p;
}

function fromTun(n: Node, pkt: Uint8Array): void {
  const buf = new Uint8Array(HEADROOM + pkt.length + TAILROOM + 16);
  buf.set(pkt, HEADROOM);
  n.engine.fromTun(buf, HEADROOM, pkt.length);
}

function deliver(to: Node, s: Sent, fromIp: number): void {
  const buf = new Uint8Array(s.bytes.length + 64);
  buf.set(s.bytes, 0);
  to.engine.fromUdp(buf, 0, s.bytes.length, fromIp, 4100);
}

function pair(suites: [number, number] = [0, 0]): { a: Node; b: Node } {
  const a = new Node("a", ip4(198, 18, 0, 1), ip4(10, 42, 0, 0));
  const b = new Node("b", ip4(198, 18, 0, 2), ip4(10, 42, 1, 0));
  a.addPeer(0, b);
  b.addPeer(0, a);
  a.engine.command({ op: "routes", routes: [{ addr: b.prefix, len: 24, peer: 0 }] });
  b.engine.command({ op: "routes", routes: [{ addr: a.prefix, len: 24, peer: 0 }] });
  session(a, 0, b, 0, suites);
  return { a, b };
}

describe("packet engine", () => {
  test("a packet crosses intact, encrypted on the wire, and is counted", () => {
    const { a, b } = pair();
    const pkt = ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 100);
    fromTun(a, pkt);
    expect(a.sent.length).toBe(1);
    const wire = a.sent[0]!;
    expect(wire.ip).toBe(b.ip);
    expect(wire.bytes[0]).toBe(4);
    expect(wire.bytes.length % 16).toBe(0); // 16-byte header + padded payload + 16-byte tag
    expect(Buffer.from(wire.bytes).includes(Buffer.from(pkt.subarray(28, 60)))).toBe(false);
    deliver(b, wire, a.ip);
    expect(b.tun.length).toBe(1);
    expect([...b.tun[0]!]).toEqual([...pkt]);
    expect(b.v.peerCounters[0 * PC_STRIDE + PC_RX_PACKETS]).toBe(1);
  });

  test("an AES-256-GCM keypair carries packets both ways; the wire differs from ChaCha's for the same key", () => {
    const { a, b } = pair([SUITE_AES_GCM, SUITE_AES_GCM]);
    const pkt = ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 300);
    fromTun(a, pkt);
    deliver(b, a.sent[0]!, a.ip);
    expect([...b.tun[0]!]).toEqual([...pkt]);
    const back = ipPacket(ip4(10, 42, 1, 1), ip4(10, 42, 0, 1), 40);
    fromTun(b, back);
    deliver(a, b.sent[0]!, b.ip);
    expect([...a.tun[0]!]).toEqual([...back]);
  });

  test("keypairs whose suites disagree never deliver: decrypt_failed, nothing on the TUN", () => {
    const { a, b } = pair([SUITE_AES_GCM, SUITE_CHACHA]);
    fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 64));
    deliver(b, a.sent[0]!, a.ip);
    expect(b.tun.length).toBe(0);
    expect(b.drop("drop_decrypt_failed")).toBe(1);
  });

  test("a replayed datagram is dropped as replay", () => {
    const { a, b } = pair();
    fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 10));
    deliver(b, a.sent[0]!, a.ip);
    deliver(b, a.sent[0]!, a.ip);
    expect(b.tun.length).toBe(1);
    expect(b.drop("drop_replay")).toBe(1);
  });

  test("out-of-order delivery within the window is accepted", () => {
    const { a, b } = pair();
    for (let i = 0; i < 50; i++) fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), i));
    const order = [...a.sent].reverse();
    for (const s of order) deliver(b, s, a.ip);
    expect(b.tun.length).toBe(50);
    expect(b.drop("drop_replay")).toBe(0);
  });

  test("a source outside the sender's prefix is dropped as spoofed_source", () => {
    const { a, b } = pair();
    fromTun(a, ipPacket(ip4(10, 42, 9, 9), ip4(10, 42, 1, 1), 10));
    deliver(b, a.sent[0]!, a.ip);
    expect(b.tun.length).toBe(0);
    expect(b.drop("drop_spoofed_source")).toBe(1);
  });

  test("no route → unknown_route; not IPv4 → not_ipv4", () => {
    const { a } = pair();
    fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 99, 0, 1), 10));
    expect(a.drop("drop_unknown_route")).toBe(1);
    const v6 = new Uint8Array(60);
    v6[0] = 0x60;
    fromTun(a, v6);
    expect(a.drop("drop_not_ipv4")).toBe(1);
    expect(a.sent.length).toBe(0);
  });

  test("without a session packets wait, the control plane is asked once, and they leave on install", () => {
    const a = new Node("a", ip4(198, 18, 0, 1), ip4(10, 42, 0, 0));
    const b = new Node("b", ip4(198, 18, 0, 2), ip4(10, 42, 1, 0));
    a.addPeer(3, b);
    b.addPeer(5, a);
    a.engine.command({ op: "routes", routes: [{ addr: b.prefix, len: 24, peer: 3 }] });
    for (let i = 0; i < 3; i++) fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 7), i));
    expect(a.sent.length).toBe(0);
    expect(a.events.filter((e) => e.ev === "need-session").length).toBe(1);
    session(a, 3, b, 5);
    expect(a.sent.length).toBe(3);
    for (const s of a.sent) deliver(b, s, a.ip);
    expect(b.tun.length).toBe(3);
  });

  test("a responder keypair is confirmed by the initiator's first packet", () => {
    const { a, b } = pair();
    // New keypair where b is the responder: b may not send on it until a uses it.
    const k1 = new Uint8Array(randomBytes(32));
    const k2 = new Uint8Array(randomBytes(32));
    const ra = a.slots.reserve()!;
    const rb = b.slots.reserve()!;
    b.slots.publish(rb.slot, 0, rb.localIndex, ra.localIndex, k2, k1, 1);
    b.engine.command({ op: "install", peer: 0, slot: rb.slot, role: "responder" });
    expect(b.v.peer(0, P_NEXT)).toBe(rb.slot);
    a.slots.publish(ra.slot, 0, ra.localIndex, rb.localIndex, k1, k2, KS_ACTIVE);
    a.engine.command({ op: "install", peer: 0, slot: ra.slot, role: "initiator" });
    fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 10));
    deliver(b, a.sent[0]!, a.ip);
    expect(b.tun.length).toBe(1);
    expect(b.v.peer(0, P_CURRENT)).toBe(rb.slot);
    expect(b.events.some((e) => e.ev === "confirmed")).toBe(true);
  });

  test("relay: A → R → C end to end, the relay never decrypts the inner packet", () => {
    const A = new Node("A", ip4(198, 18, 0, 1), ip4(10, 42, 0, 0));
    const R = new Node("R", ip4(198, 18, 0, 40), ip4(10, 42, 254, 0));
    const C = new Node("C", ip4(198, 18, 0, 3), ip4(10, 42, 2, 0));
    // A: 0 = R, 1 = C (via R). R: 0 = A, 1 = C. C: 0 = R, 1 = A.
    A.addPeer(0, R);
    A.addPeer(1, C, { direct: false, via: 0 });
    R.addPeer(0, A);
    R.addPeer(1, C);
    C.addPeer(0, R);
    C.addPeer(1, A, { direct: false, via: 0 });
    A.engine.command({ op: "routes", routes: [{ addr: C.prefix, len: 24, peer: 1 }] });
    Atomics.store(R.v.misc, RELAY_SERVICE, 1);
    session(A, 0, R, 0);
    session(R, 1, C, 0);
    session(A, 1, C, 1);
    const pkt = ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 2, 1), 200);
    fromTun(A, pkt);
    expect(A.sent.length).toBe(1);
    expect(A.sent[0]!.ip).toBe(R.ip);
    deliver(R, A.sent[0]!, A.ip);
    expect(R.tun.length).toBe(0);
    expect(R.sent.length).toBe(1);
    expect(R.sent[0]!.ip).toBe(C.ip);
    expect(R.drop("relay_forwarded_packets")).toBe(1);
    deliver(C, R.sent[0]!, R.ip);
    expect(C.tun.length).toBe(1);
    expect([...C.tun[0]!]).toEqual([...pkt]);
    expect(C.v.peer(1, P_RX_VIA)).toBe(0);
  });

  test("relay service off: the envelope is refused and counted", () => {
    const A = new Node("A", ip4(198, 18, 0, 1), ip4(10, 42, 0, 0));
    const R = new Node("R", ip4(198, 18, 0, 40), ip4(10, 42, 254, 0));
    const C = new Node("C", ip4(198, 18, 0, 3), ip4(10, 42, 2, 0));
    A.addPeer(0, R);
    A.addPeer(1, C, { direct: false, via: 0 });
    R.addPeer(0, A);
    R.addPeer(1, C);
    A.engine.command({ op: "routes", routes: [{ addr: C.prefix, len: 24, peer: 1 }] });
    session(A, 0, R, 0);
    session(R, 1, C, 0);
    session(A, 1, C, 1);
    fromTun(A, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 2, 1), 20));
    deliver(R, A.sent[0]!, A.ip);
    expect(R.sent.length).toBe(0);
    expect(R.drop("drop_relay_refused")).toBe(1);
    expect(R.events.some((e) => e.ev === "relay-refused")).toBe(true);
  });

  test("fuzz: random and mutated datagrams never throw and every one is accounted for", () => {
    const { a, b } = pair();
    for (let i = 0; i < 20; i++) fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), i * 7));
    const valid = a.sent.map((s) => s.bytes);
    const buf = new Uint8Array(2048);
    const rnd = new Uint8Array(randomBytes(1 << 20));
    let r = 0;
    const N = 200_000;
    const countAll = () => NODE_COUNTERS.reduce((s, n) => s + (n.startsWith("drop_") || n === "handshake_messages_in" || n === "keepalives_in" || n === "control_messages_in" ? b.v.node[NC[n]]! : 0), 0) + b.tun.length;
    const before = countAll();
    for (let i = 0; i < N; i++) {
      let len: number;
      if (i % 2 === 0) {
        len = rnd[r++ % rnd.length]! * 6;
        for (let j = 0; j < len; j++) buf[j] = rnd[(r + j * 7) % rnd.length]!;
        if (i % 4 === 0 && len >= 1) buf[0] = (i >> 2) % 6; // valid-looking types
        r += len;
      } else {
        const v = valid[i % valid.length]!;
        len = v.length;
        buf.set(v);
        const flips = 1 + (rnd[r++ % rnd.length]! % 4);
        for (let f = 0; f < flips; f++) buf[rnd[r++ % rnd.length]! % len] ^= 1 << rnd[r++ % rnd.length]! % 8;
      }
      b.engine.fromUdp(buf, 0, len, a.ip, 4100);
    }
    expect(countAll() - before).toBe(N);
    // Mutations never produce a forged delivery: everything delivered is one of the 20 originals.
    expect(b.tun.length).toBeLessThanOrEqual(20);
  });
});

describe("packet engine: command races", () => {
  test("a responder keypair confirmed before its install command stays current", () => {
    const { a, b } = pair();
    const k1 = new Uint8Array(randomBytes(32));
    const k2 = new Uint8Array(randomBytes(32));
    const ra = a.slots.reserve()!;
    const rb = b.slots.reserve()!;
    b.slots.publish(rb.slot, 0, rb.localIndex, ra.localIndex, k2, k1, 1);
    a.slots.publish(ra.slot, 0, ra.localIndex, rb.localIndex, k1, k2, KS_ACTIVE);
    a.engine.command({ op: "install", peer: 0, slot: ra.slot, role: "initiator" });
    // The initiator's first packet reaches b before b's install command.
    fromTun(a, ipPacket(ip4(10, 42, 0, 1), ip4(10, 42, 1, 1), 10));
    deliver(b, a.sent.at(-1)!, a.ip);
    expect(b.v.peer(0, P_CURRENT)).toBe(rb.slot);
    b.engine.command({ op: "install", peer: 0, slot: rb.slot, role: "responder" });
    expect(b.v.peer(0, P_CURRENT)).toBe(rb.slot);
    expect(b.v.peer(0, P_NEXT)).toBe(-1);
    // A later responder keypair must not free the current one.
    const r2 = b.slots.reserve()!;
    b.slots.publish(r2.slot, 0, r2.localIndex, 77, k2, k1, 1);
    b.engine.command({ op: "install", peer: 0, slot: r2.slot, role: "responder" });
    expect(Atomics.load(b.v.keypairs, rb.slot * 8)).toBe(KS_ACTIVE);
  });
});
