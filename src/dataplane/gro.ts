// Receive offload: consecutive TCP segments of one flow, decrypted from one batch of datagrams, are
// merged into a single super-packet and written to the TUN once, with a virtio_net_hdr asking the
// kernel for GSO (TCPv4) and a partial checksum. The kernel's TCP stack then handles one 64 KiB
// packet instead of ~45 (and sends far fewer ACKs): the receive half of what TSO does for transmit.
//
// Only what the kernel's own GRO would merge is merged: IPv4 without options or fragments, TCP
// with only ACK/PSH set, the same ACK number, header options, TOS, TTL and DF, contiguous
// sequence numbers, equal-sized segments (the last may be shorter). Anything else passes through
// unchanged — after the flow's pending super-packet, so a flow's order is kept.

import { fold, pseudoHeaderSum, put16, writeIPv4Checksum } from "./checksum.ts";
import { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, writeVnetHeader } from "./tso.ts";

const FLOWS = 8; // super-packets under construction at once
const MAX_IP = 65535;
const MAX_SEGMENTS = 64;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

/** Where a finished packet goes: buf[off, off+len) starts with its virtio_net_hdr. */
export type TunWriter = (buf: Uint8Array, off: number, len: number) => boolean;

interface Flow {
  udp: boolean; // a UDP run (GSO_UDP_L4) rather than a TCP one
  at: number; // offset of this flow's area in `arena` (the vnet header goes at `at`)
  len: number; // IP length so far; 0 = free
  count: number; // segments merged
  mss: number; // payload of the first segment
  thl: number; // TCP header length
  nextSeq: number;
  closed: boolean; // a short or PSH segment ended it: nothing more may follow
}

export class TcpCoalescer {
  /** Packets written merged (each counts once) and the segments they carried. */
  merged = 0;
  mergedSegments = 0;
  private readonly arena: Uint8Array;
  private readonly flows: Flow[] = [];
  private next = 0; // round-robin victim when every flow area is busy

  /** Merge UDP datagrams too (the TUN accepted TUN_F_USO4|USO6, so it takes GSO_UDP_L4 writes). */
  udp = false;

  constructor(
    private readonly write: TunWriter,
    /** Copy n bytes from one buffer to another (memcpy through ffi in the worker: no allocation). */
    private readonly copy: (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number) => void,
    /** Write a single packet that needs no merging: buf[off, off+len), with room for the header before it. */
    private readonly passThrough: (buf: Uint8Array, off: number, len: number) => boolean,
  ) {
    const area = VNET_HDR_LEN + MAX_IP + 6;
    this.arena = new Uint8Array(new ArrayBuffer(FLOWS * area));
    for (let i = 0; i < FLOWS; i++) this.flows.push({ udp: false, at: i * area, len: 0, count: 0, mss: 0, thl: 0, nextSeq: 0, closed: false });
  }

  /** A decrypted IPv4 packet at buf[off, off+len) (at least VNET_HDR_LEN writable bytes before it). */
  add(buf: Uint8Array, off: number, len: number): boolean {
    const ihl = (buf[off]! & 0x0f) * 4;
    // IPv4, no options, TCP (or UDP), not a fragment (MF clear, offset zero).
    const proto = buf[off + 9]!;
    if (ihl !== 20 || (buf[off + 6]! & 0x3f) !== 0 || buf[off + 7] !== 0) return this.passThrough(buf, off, len);
    if (proto === 17 && this.udp && len > 28) return this.addUdp(buf, off, len);
    if (len < 40 || proto !== 6) return this.passThrough(buf, off, len);
    const t = off + 20;
    const thl = (buf[t + 12]! >> 4) * 4;
    const flags = buf[t + 13]!;
    const payload = len - 20 - thl;
    const f = this.find(buf, off);
    if (thl < 20 || payload <= 0 || (flags & ~(TCP_ACK | TCP_PSH)) !== 0 || (flags & TCP_ACK) === 0) {
      if (f !== null) this.flush(f);
      return this.passThrough(buf, off, len);
    }
    const seq = ((buf[t + 4]! << 24) | (buf[t + 5]! << 16) | (buf[t + 6]! << 8) | buf[t + 7]!) >>> 0;
    if (f !== null) {
      if (this.canAppend(f, buf, off, thl, seq, payload)) {
        const a = this.arena;
        this.copy(a, f.at + VNET_HDR_LEN + f.len, buf, t + thl, payload);
        f.len += payload;
        f.count++;
        f.nextSeq = (seq + payload) >>> 0;
        if (payload < f.mss || (flags & TCP_PSH) !== 0) {
          f.closed = true;
          a[f.at + VNET_HDR_LEN + 20 + 13]! |= flags & TCP_PSH;
        }
        return true;
      }
      this.flush(f);
      return this.start(f, buf, off, len, thl, seq, payload, flags);
    }
    return this.start(this.free(), buf, off, len, thl, seq, payload, flags);
  }

  /**
   * UDP: datagrams of one 4-tuple with equal payload sizes (the last may be shorter) become one
   * GSO_UDP_L4 super-packet; the kernel cuts it again for the receiving socket, after one TUN write
   * and one trip through the IP layer instead of one per datagram.
   */
  private addUdp(buf: Uint8Array, off: number, len: number): boolean {
    const payload = len - 28;
    const udpLen = (buf[off + 24]! << 8) | buf[off + 25]!;
    const f = this.find(buf, off);
    if (udpLen !== len - 20) {
      if (f !== null) this.flush(f);
      return this.passThrough(buf, off, len);
    }
    if (f !== null) {
      if (f.udp && !f.closed && payload <= f.mss && f.len + payload <= MAX_IP && f.count < MAX_SEGMENTS && this.sameIp(f, buf, off)) {
        this.copy(this.arena, f.at + VNET_HDR_LEN + f.len, buf, off + 28, payload);
        f.len += payload;
        f.count++;
        if (payload < f.mss) f.closed = true;
        return true;
      }
      this.flush(f);
      return this.startUdp(f, buf, off, len, payload);
    }
    return this.startUdp(this.free(), buf, off, len, payload);
  }

  private startUdp(f: Flow, buf: Uint8Array, off: number, len: number, payload: number): boolean {
    this.copy(this.arena, f.at + VNET_HDR_LEN, buf, off, len);
    f.udp = true;
    f.len = len;
    f.count = 1;
    f.mss = payload;
    f.thl = 8;
    f.closed = false;
    return true;
  }

  /** Same TOS, DF and TTL as the flow's first packet. */
  private sameIp(f: Flow, buf: Uint8Array, off: number): boolean {
    const p = f.at + VNET_HDR_LEN;
    const a = this.arena;
    return a[p + 1] === buf[off + 1] && (a[p + 6]! & 0x40) === (buf[off + 6]! & 0x40) && a[p + 8] === buf[off + 8];
  }

  /**
   * Give the flow areas' memory back while idle, through `release` (src/linux/memory.ts, given the
   * arena); nothing happens while a flow holds data. Returns the bytes released.
   */
  releaseData(release: (buf: Uint8Array) => number): number {
    for (const f of this.flows) if (f.len !== 0) return 0;
    return release(this.arena);
  }

  /** Write every pending super-packet (end of a receive batch). */
  flushAll(): void {
    for (const f of this.flows) if (f.len !== 0) this.flush(f);
  }

  private start(f: Flow, buf: Uint8Array, off: number, len: number, thl: number, seq: number, payload: number, flags: number): boolean {
    this.copy(this.arena, f.at + VNET_HDR_LEN, buf, off, len);
    f.udp = false;
    f.len = len;
    f.count = 1;
    f.mss = payload;
    f.thl = thl;
    f.nextSeq = (seq + payload) >>> 0;
    f.closed = (flags & TCP_PSH) !== 0;
    return true;
  }

  /** The pending flow with the same addresses and ports as the packet at buf[off], or null. */
  private find(buf: Uint8Array, off: number): Flow | null {
    const a = this.arena;
    for (const f of this.flows) {
      if (f.len === 0) continue;
      const p = f.at + VNET_HDR_LEN;
      let same = true;
      // Source and destination addresses (12..20), then ports (20..24).
      for (let i = 12; i < 24; i++) {
        if (a[p + i] !== buf[off + i]) {
          same = false;
          break;
        }
      }
      if (same) return f;
    }
    return null;
  }

  private canAppend(f: Flow, buf: Uint8Array, off: number, thl: number, seq: number, payload: number): boolean {
    if (f.udp || f.closed || seq !== f.nextSeq || thl !== f.thl || payload > f.mss) return false;
    if (f.len + payload > MAX_IP || f.count >= MAX_SEGMENTS) return false;
    const a = this.arena;
    const p = f.at + VNET_HDR_LEN;
    // TOS (1), DF (6), TTL (8) of the IP header; ACK number (8..12) and options (20..thl) of TCP.
    if (a[p + 1] !== buf[off + 1] || (a[p + 6]! & 0x40) !== (buf[off + 6]! & 0x40) || a[p + 8] !== buf[off + 8]) return false;
    for (let i = 28; i < 32; i++) if (a[p + i] !== buf[off + i]) return false;
    for (let i = 40; i < 20 + thl; i++) if (a[p + i] !== buf[off + i]) return false;
    return true;
  }

  private free(): Flow {
    for (const f of this.flows) if (f.len === 0) return f;
    const victim = this.flows[this.next]!;
    this.next = (this.next + 1) % FLOWS;
    this.flush(victim);
    return victim;
  }

  private flush(f: Flow): void {
    const a = this.arena;
    const h = f.at;
    const p = h + VNET_HDR_LEN;
    if (f.count === 1) {
      // A lone segment is written as received: its checksums are intact.
      writeVnetHeader(a, h, 0, VNET_GSO_NONE, 0, 0, 0, 0);
    } else {
      // IPv4 length and checksum for the whole run. The kernel finishes the transport checksum from
      // the pseudo-header sum (CHECKSUM_PARTIAL; local delivery does not even need it, forwarding
      // does) and, for UDP, rewrites the length — set to the whole run here — per datagram.
      put16(a, p + 2, f.len);
      writeIPv4Checksum(a, p, 20);
      const l4 = f.len - 20;
      if (f.udp) put16(a, p + 24, l4);
      const csum = f.udp ? 6 : 16;
      put16(a, p + 20 + csum, fold(pseudoHeaderSum(a, p, f.udp ? 17 : 6, l4)));
      writeVnetHeader(a, h, VNET_F_NEEDS_CSUM, f.udp ? VNET_GSO_UDP_L4 : VNET_GSO_TCPV4, 20 + f.thl, f.mss, 20, csum);
      this.merged++;
      this.mergedSegments += f.count;
    }
    this.write(a, h, VNET_HDR_LEN + f.len);
    f.len = 0;
    f.count = 0;
  }
}
