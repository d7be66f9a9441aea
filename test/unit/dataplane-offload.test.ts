// TUN offloads without a TUN: the checksum helpers against a byte-by-byte reference, TSO super-packets
// cut into segments (every checksum verified independently, payload reassembled), GRO merging those
// segments back into the same super-packet, and the cases GRO must leave alone.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { finish, fold, sumBytes } from "../../src/dataplane/checksum.ts";
import { TcpCoalescer } from "../../src/dataplane/gro.ts";
import { completeChecksum, splitTcp4, splitUdp4, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, VnetHeader, writeVnetHeader } from "../../src/dataplane/tso.ts";

/** RFC 1071 the slow obvious way. */
function refSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
const ipChecksumOk = (p: Uint8Array) => refSum(p.subarray(0, (p[0]! & 15) * 4)) === 0xffff;
function tcpChecksumOk(p: Uint8Array): boolean {
  const ihl = (p[0]! & 15) * 4;
  const l4 = p.length - ihl;
  const pseudo = new Uint8Array(12 + l4);
  pseudo.set(p.subarray(12, 20), 0);
  pseudo[9] = 6;
  pseudo[10] = l4 >> 8;
  pseudo[11] = l4 & 0xff;
  pseudo.set(p.subarray(ihl), 12);
  return refSum(pseudo) === 0xffff;
}

interface Flow {
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
}
const FLOW: Flow = { src: [10, 42, 0, 1], dst: [10, 42, 1, 1], sport: 40000, dport: 5201 };

/** An IPv4/TCP packet with a 12-byte timestamp option (thl 32); checksums complete. */
function tcpPacket(seq: number, payload: Uint8Array, o: { flow?: Flow; flags?: number; ack?: number; id?: number; tsval?: number } = {}): Uint8Array {
  const f = o.flow ?? FLOW;
  const thl = 32;
  const p = new Uint8Array(20 + thl + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  dv.setUint16(4, o.id ?? 0x1000);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = 6;
  p.set(f.src, 12);
  p.set(f.dst, 16);
  dv.setUint16(20, f.sport);
  dv.setUint16(22, f.dport);
  dv.setUint32(24, seq >>> 0);
  dv.setUint32(28, o.ack ?? 777);
  p[32] = (thl / 4) << 4;
  p[33] = o.flags ?? 0x10;
  dv.setUint16(34, 501);
  p.set([1, 1, 8, 10], 40);
  dv.setUint32(44, o.tsval ?? 12345);
  dv.setUint32(48, 678);
  p.set(payload, 52);
  dv.setUint16(10, 0);
  dv.setUint16(10, finish(sumBytes(p, 0, 20)));
  const ps = [...p.subarray(12, 20), 0, 6, (p.length - 20) >> 8, (p.length - 20) & 0xff];
  dv.setUint16(36, 0);
  dv.setUint16(36, finish(refSum(new Uint8Array(ps)) + sumBytes(p, 20, p.length - 20)));
  return p;
}

/** What the kernel hands a TUN with TSO4: a super-packet with a partial (pseudo-header) checksum. */
function superPacket(seq: number, payload: Uint8Array, mss: number, flags = 0x18): { buf: Uint8Array; pkt: number; len: number; h: VnetHeader } {
  const whole = tcpPacket(seq, payload, { flags });
  const l4 = whole.length - 20;
  const pseudo = fold(sumBytes(whole, 12, 8) + 6 + l4);
  whole[36] = pseudo >> 8;
  whole[37] = pseudo & 0xff;
  const pkt = 2048 + 68;
  const buf = new Uint8Array(pkt + whole.length + 64);
  buf.set(whole, pkt);
  writeVnetHeader(buf, pkt - VNET_HDR_LEN, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 52, mss, 20, 16);
  const h = new VnetHeader();
  h.read(buf, pkt - VNET_HDR_LEN);
  return { buf, pkt, len: whole.length, h };
}

function split(sp: ReturnType<typeof superPacket>): Uint8Array[] {
  const out: Uint8Array[] = [];
  const words = new Uint32Array(sp.buf.buffer, 0, sp.buf.byteLength >>> 2);
  const n = splitTcp4(sp.buf, sp.pkt, sp.len, sp.h, 68, words, (b, off, len) => out.push(b.slice(off, off + len)));
  expect(n).toBe(out.length);
  return out;
}

describe("checksum", () => {
  test("sumBytes equals the reference at every alignment, with and without 32-bit words", () => {
    const ab = new ArrayBuffer(4096);
    const all = new Uint8Array(ab);
    all.set(randomBytes(4096));
    const words = new Uint32Array(ab);
    for (let round = 0; round < 400; round++) {
      const off = Math.floor(Math.random() * 64);
      const len = Math.floor(Math.random() * 2000);
      const ref = refSum(all.subarray(off, off + len));
      expect(fold(sumBytes(all, off, len))).toBe(ref === 0 && len > 0 ? 0 : ref);
      const w = fold(sumBytes(all, off, len, words));
      expect(w === ref || (w === 0xffff && ref === 0) || (w === 0 && ref === 0xffff)).toBe(true);
    }
  });
});

describe("TSO: super-packets cut into segments", () => {
  test.each([
    [1380, 64000],
    [1380, 1380 * 3],
    [1380, 1381],
    [536, 5000],
    [1448, 1],
  ])("mss %d, payload %d: valid checksums, consecutive sequence numbers, payload intact", (mss, size) => {
    const payload = new Uint8Array(randomBytes(size));
    const seq0 = 0xffff_f000; // wraps within the super-packet
    const segs = split(superPacket(seq0, payload, mss));
    expect(segs.length).toBe(Math.ceil(size / mss));
    let got: number[] = [];
    segs.forEach((s, i) => {
      const dv = new DataView(s.buffer);
      expect(dv.getUint16(2)).toBe(s.length);
      expect(dv.getUint16(4)).toBe((0x1000 + i) & 0xffff);
      expect(ipChecksumOk(s)).toBe(true);
      expect(tcpChecksumOk(s)).toBe(true);
      expect(dv.getUint32(24)).toBe((seq0 + i * mss) >>> 0);
      const last = i === segs.length - 1;
      expect(s[33]! & 0x08).toBe(last ? 0x08 : 0); // PSH only on the last
      got = got.concat([...s.subarray(52)]);
    });
    expect(Buffer.from(got).equals(Buffer.from(payload))).toBe(true);
  });

  test("FIN only on the last segment, CWR only on the first", () => {
    const segs = split(superPacket(1, new Uint8Array(3000), 1000, 0x10 | 0x01 | 0x80));
    expect(segs.map((s) => s[33]! & 0x81)).toEqual([0x80, 0, 0x01]);
  });

  test("a malformed super-packet is refused, not split", () => {
    const sp = superPacket(1, new Uint8Array(3000), 1000);
    const bad = [
      () => (sp.h.csumStart = 24),
      () => (sp.h.gsoSize = 0),
      () => (sp.buf[sp.pkt + 9] = 17),
      () => (sp.buf[sp.pkt] = 0x65),
    ];
    for (const spoil of bad) {
      const fresh = superPacket(1, new Uint8Array(3000), 1000);
      Object.assign(sp, fresh);
      spoil();
      expect(splitTcp4(sp.buf, sp.pkt, sp.len, sp.h, 68, null, () => {})).toBe(-1);
    }
  });

  test("completeChecksum finishes a partial TCP or UDP checksum; offsets outside the packet are refused", () => {
    const whole = tcpPacket(5, new Uint8Array(randomBytes(700)));
    const expected = [whole[36], whole[37]];
    const pseudo = fold(sumBytes(whole, 12, 8) + 6 + whole.length - 20);
    whole[36] = pseudo >> 8;
    whole[37] = pseudo & 0xff;
    const h = new VnetHeader();
    const hb = new Uint8Array(10);
    writeVnetHeader(hb, 0, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, 0, 0, 20, 16);
    h.read(hb, 0);
    expect(completeChecksum(whole, 0, whole.length, h, null)).toBe(true);
    expect([whole[36], whole[37]]).toEqual(expected);
    h.csumStart = whole.length;
    expect(completeChecksum(whole, 0, whole.length, h, null)).toBe(false);
  });
});

/** A coalescer writing into a list: each entry is [vnet header, packet]. */
function coalescer() {
  const written: { hdr: VnetHeader; pkt: Uint8Array }[] = [];
  const take = (buf: Uint8Array, off: number, len: number) => {
    const hdr = new VnetHeader();
    hdr.read(buf, off);
    written.push({ hdr, pkt: buf.slice(off + VNET_HDR_LEN, off + len) });
    return true;
  };
  const g = new TcpCoalescer(
    take,
    (dst, d, src, s, n) => dst.set(src.subarray(s, s + n), d),
    (buf, off, len) => {
      buf.fill(0, off - VNET_HDR_LEN, off);
      return take(buf, off - VNET_HDR_LEN, len + VNET_HDR_LEN);
    },
  );
  const add = (p: Uint8Array) => {
    const b = new Uint8Array(p.length + 32);
    b.set(p, 16);
    return g.add(b, 16, p.length);
  };
  return { g, written, add };
}

describe("GRO: a batch's segments merged per flow", () => {
  test("segments of one flow become one super-packet that TSO cuts back into the same segments", () => {
    const payload = new Uint8Array(randomBytes(1380 * 10 + 500));
    const segs = split(superPacket(1000, payload, 1380));
    const { g, written, add } = coalescer();
    for (const s of segs) add(s);
    g.flushAll();
    expect(written.length).toBe(1);
    const { hdr, pkt } = written[0]!;
    expect(hdr).toMatchObject({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, gsoSize: 1380, csumStart: 20, csumOffset: 16, hdrLen: 52 });
    expect(new DataView(pkt.buffer).getUint16(2)).toBe(pkt.length);
    expect(ipChecksumOk(pkt)).toBe(true);
    expect(g.merged).toBe(1);
    expect(g.mergedSegments).toBe(11);
    // Cut it again as a TSO super-packet: the same segments (ids aside) come out.
    const buf = new Uint8Array(2116 + pkt.length + 64);
    buf.set(pkt, 2116);
    const again: Uint8Array[] = [];
    splitTcp4(buf, 2116, pkt.length, hdr, 68, null, (b, o, l) => again.push(b.slice(o, o + l)));
    expect(again.length).toBe(segs.length);
    again.forEach((s, i) => {
      expect(tcpChecksumOk(s)).toBe(true);
      expect(Buffer.from(s.subarray(20)).equals(Buffer.from(segs[i]!.subarray(20)))).toBe(true);
    });
  });

  test("a single segment is written as received, with a zero header", () => {
    const p = tcpPacket(1, new Uint8Array(100));
    const { g, written, add } = coalescer();
    add(p);
    g.flushAll();
    expect(written.length).toBe(1);
    expect(written[0]!.hdr.gsoType).toBe(VNET_GSO_NONE);
    expect(written[0]!.hdr.flags).toBe(0);
    expect(Buffer.from(written[0]!.pkt).equals(Buffer.from(p))).toBe(true);
  });

  test("what must not merge is kept apart, and each flow's order is kept", () => {
    const other: Flow = { ...FLOW, sport: 40001 };
    const d = (n: number) => new Uint8Array(n).fill(n & 0xff);
    const { g, written, add } = coalescer();
    add(tcpPacket(0, d(1000)));
    add(tcpPacket(1000, d(1000), { flow: other })); // another flow: its own super-packet
    add(tcpPacket(1000, d(1000))); // merges with the first
    add(tcpPacket(5000, d(1000))); // a gap: starts a new one
    add(tcpPacket(6000, d(1000), { ack: 999 })); // another ACK number: starts a new one
    add(tcpPacket(7000, d(1000), { ack: 999, tsval: 1 })); // other options: new
    add(tcpPacket(8000, d(0), { ack: 999, tsval: 1 })); // pure ACK: flushes its flow, then passes
    add(tcpPacket(8000, d(1000), { flags: 0x12 })); // SYN+ACK: passes
    g.flushAll();
    const seqs = written.map((w) => [new DataView(w.pkt.buffer).getUint16(20), new DataView(w.pkt.buffer).getUint32(24), w.pkt.length - 52]);
    expect(seqs).toEqual([
      [40000, 0, 2000],
      [40000, 5000, 1000],
      [40000, 6000, 1000],
      [40000, 7000, 1000],
      [40000, 8000, 0],
      [40000, 8000, 1000],
      [40001, 1000, 1000],
    ]);
  });

  test("a short or PSH segment ends a super-packet; a larger one after it starts another", () => {
    const { g, written, add } = coalescer();
    add(tcpPacket(0, new Uint8Array(1000)));
    add(tcpPacket(1000, new Uint8Array(500)));
    add(tcpPacket(1500, new Uint8Array(1000)));
    add(tcpPacket(2500, new Uint8Array(1000), { flags: 0x18 }));
    add(tcpPacket(3500, new Uint8Array(1000)));
    g.flushAll();
    expect(written.map((w) => [new DataView(w.pkt.buffer).getUint32(24), w.pkt.length - 52, w.pkt[33]])).toEqual([
      [0, 1500, 0x10],
      [1500, 2000, 0x18],
      [3500, 1000, 0x10],
    ]);
  });

  test("non-TCP, fragments and IP options pass through untouched", () => {
    const { g, written, add } = coalescer();
    const udp = tcpPacket(0, new Uint8Array(100));
    udp[9] = 17;
    const frag = tcpPacket(0, new Uint8Array(100));
    frag[6] = 0x20; // MF
    add(udp);
    add(frag);
    g.flushAll();
    expect(written.length).toBe(2);
    expect(written.every((w) => w.hdr.gsoType === VNET_GSO_NONE)).toBe(true);
  });

  test("random bytes never throw and are always written (the kernel judges them)", () => {
    const { g, written, add } = coalescer();
    let n = 0;
    for (let i = 0; i < 5000; i++) {
      const len = 20 + Math.floor(Math.random() * 1500);
      const p = new Uint8Array(randomBytes(len));
      p[0] = 0x45;
      p[9] = i % 3 === 0 ? 6 : p[9]!;
      new DataView(p.buffer).setUint16(2, len);
      add(p);
      n++;
    }
    g.flushAll();
    const segs = written.reduce((a, w) => a + (w.hdr.gsoType === VNET_GSO_TCPV4 ? 0 : 1), 0) + g.mergedSegments;
    expect(segs).toBe(n);
  });
});

/** An IPv4/UDP datagram with a complete checksum. */
function udpPacket(payload: Uint8Array, sport = 5000): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[6] = 0x40;
  p[8] = 64;
  p[9] = 17;
  p.set(FLOW.src, 12);
  p.set(FLOW.dst, 16);
  dv.setUint16(20, sport);
  dv.setUint16(22, 5201);
  dv.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  dv.setUint16(10, finish(sumBytes(p, 0, 20)));
  const ps = [...p.subarray(12, 20), 0, 17, (p.length - 20) >> 8, (p.length - 20) & 0xff];
  dv.setUint16(26, finish(refSum(new Uint8Array(ps)) + sumBytes(p, 20, p.length - 20)) || 0xffff);
  return p;
}

describe("UDP (TUN_F_USO4): datagrams merged into GSO_UDP_L4 and cut back", () => {
  test("a run of equal datagrams becomes one super-packet; splitUdp4 gives the same datagrams back", () => {
    const { g, written, add } = coalescer();
    g.udp = true;
    const dgrams = [0, 1, 2, 3].map((i) => udpPacket(new Uint8Array(randomBytes(i === 3 ? 500 : 1200))));
    for (const d of dgrams) add(d);
    g.flushAll();
    expect(written.length).toBe(1);
    const { hdr, pkt } = written[0]!;
    expect(hdr).toMatchObject({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, hdrLen: 28, csumStart: 20, csumOffset: 6 });
    expect(pkt.length).toBe(28 + 3 * 1200 + 500);
    expect(ipChecksumOk(pkt)).toBe(true);
    const buf = new Uint8Array(2116 + pkt.length + 64);
    buf.set(pkt, 2116);
    const back: Uint8Array[] = [];
    expect(splitUdp4(buf, 2116, pkt.length, hdr, 68, null, (b, o, l) => back.push(b.slice(o, o + l)))).toBe(4);
    back.forEach((d, i) => {
      expect(ipChecksumOk(d)).toBe(true);
      expect(tcpChecksumOkProto(d, 17)).toBe(true);
      expect(Buffer.from(d.subarray(20)).equals(Buffer.from(dgrams[i]!.subarray(20)))).toBe(true);
    });
  });

  test("without USO, or across sizes and ports, datagrams pass through one by one", () => {
    const off = coalescer();
    for (let i = 0; i < 3; i++) off.add(udpPacket(new Uint8Array(100)));
    off.g.flushAll();
    expect(off.written.length).toBe(3);
    const on = coalescer();
    on.g.udp = true;
    on.add(udpPacket(new Uint8Array(100)));
    on.add(udpPacket(new Uint8Array(200))); // larger than the run's size: a new run
    on.add(udpPacket(new Uint8Array(200), 5001)); // another port: its own run
    on.g.flushAll();
    expect(on.written.length).toBe(3);
    expect(on.written.every((w) => w.hdr.gsoType === VNET_GSO_NONE)).toBe(true);
  });
});

function tcpChecksumOkProto(p: Uint8Array, proto: number): boolean {
  const l4 = p.length - 20;
  const pseudo = new Uint8Array(12 + l4);
  pseudo.set(p.subarray(12, 20), 0);
  pseudo[9] = proto;
  pseudo[10] = l4 >> 8;
  pseudo[11] = l4 & 0xff;
  pseudo.set(p.subarray(20), 12);
  return refSum(pseudo) === 0xffff;
}
