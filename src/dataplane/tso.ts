// Transmit offload: packets read from a TUN opened with IFF_VNET_HDR carry a virtio_net_hdr. With
// TUNSETOFFLOAD(CSUM | TSO4) the kernel hands over TCP "super-packets" of up to 64 KiB (one read
// instead of ~45) and leaves checksums partial. Here they are cut back into MSS-sized segments with
// complete checksums — the same datagrams a TUN without offloads would have produced, so the wire
// format (one WireGuard transport message per IP packet) and stock WireGuard peers are unaffected.

import { finish, pseudoHeaderSum, put16, sumBytes, writeIPv4Checksum } from "./checksum.ts";

/** sizeof(struct virtio_net_hdr): what vine sets with TUNSETVNETHDRSZ. */
export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP_L4 = 5;

const TCP = 6;
const UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** The virtio_net_hdr fields (little endian on the wire), parsed into a reused object. */
export class VnetHeader {
  flags = 0;
  gsoType = 0;
  hdrLen = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;

  read(b: Uint8Array, at: number): void {
    this.flags = b[at]!;
    this.gsoType = b[at + 1]!;
    this.hdrLen = b[at + 2]! | (b[at + 3]! << 8);
    this.gsoSize = b[at + 4]! | (b[at + 5]! << 8);
    this.csumStart = b[at + 6]! | (b[at + 7]! << 8);
    this.csumOffset = b[at + 8]! | (b[at + 9]! << 8);
  }
}

/** Write a virtio_net_hdr at b[at, at+10). */
export function writeVnetHeader(b: Uint8Array, at: number, flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  b[at] = flags;
  b[at + 1] = gsoType;
  b[at + 2] = hdrLen & 0xff;
  b[at + 3] = hdrLen >>> 8;
  b[at + 4] = gsoSize & 0xff;
  b[at + 5] = gsoSize >>> 8;
  b[at + 6] = csumStart & 0xff;
  b[at + 7] = csumStart >>> 8;
  b[at + 8] = csumOffset & 0xff;
  b[at + 9] = csumOffset >>> 8;
}

/**
 * NEEDS_CSUM: the kernel stored the pseudo-header sum at csumStart + csumOffset and left the rest to
 * us. Sum from csumStart to the end and store the final checksum. False when the offsets are outside
 * the packet (a kernel bug we refuse to trust: the packet is dropped).
 */
export function completeChecksum(b: Uint8Array, pkt: number, len: number, h: VnetHeader, words: Uint32Array | null): boolean {
  const start = h.csumStart;
  const field = start + h.csumOffset;
  if (start >= len || field + 2 > len) return false;
  // The field holds the pseudo-header sum: it is part of what is summed.
  const c = finish(sumBytes(b, pkt + start, len - start, words));
  put16(b, pkt + field, c === 0 && h.csumOffset === 6 ? 0xffff : c); // UDP sends 0 as 0xffff
  return true;
}

type Emit = (buf: Uint8Array, off: number, len: number) => void;

/**
 * Cut the TCPv4 super-packet at buf[pkt, pkt+len) into segments of at most h.gsoSize payload bytes,
 * each built at buf[at, ...) (outside the super-packet) and handed to `emit` before the next one is
 * built (emit may encrypt it in place). Returns the number of segments, or -1 for a packet that is
 * not a well-formed TCPv4 super-packet (counted and dropped by the caller).
 */
export function splitTcp4(buf: Uint8Array, pkt: number, len: number, h: VnetHeader, at: number, words: Uint32Array | null, emit: Emit): number {
  return splitIPv4(TCP, buf, pkt, len, h, at, words, emit);
}

/** The same for a UDP super-packet (GSO_UDP_L4: a sender using UDP_SEGMENT): datagrams of h.gsoSize payload bytes. */
export function splitUdp4(buf: Uint8Array, pkt: number, len: number, h: VnetHeader, at: number, words: Uint32Array | null, emit: Emit): number {
  return splitIPv4(UDP, buf, pkt, len, h, at, words, emit);
}

/**
 * Both cuts: each piece gets the super-packet's headers and the next slice of payload, then its own
 * IPv4 length, id and header checksum, and its own transport header fields and complete checksum.
 */
function splitIPv4(proto: number, buf: Uint8Array, pkt: number, len: number, h: VnetHeader, at: number, words: Uint32Array | null, emit: Emit): number {
  const tcp = proto === TCP;
  if (len < (tcp ? 40 : 28) || buf[pkt]! >> 4 !== 4 || buf[pkt + 9] !== proto) return -1;
  const ihl = (buf[pkt]! & 0x0f) * 4;
  if (ihl < 20 || h.csumStart !== ihl) return -1;
  const l4hl = tcp ? (buf[pkt + ihl + 12]! >> 4) * 4 : 8;
  const hdr = ihl + l4hl;
  const mss = h.gsoSize;
  if ((tcp && l4hl < 20) || hdr >= len || mss === 0) return -1;
  const payload = len - hdr;
  const id = (buf[pkt + 4]! << 8) | buf[pkt + 5]!;
  const t0 = pkt + ihl;
  const seq0 = tcp ? ((buf[t0 + 4]! << 24) | (buf[t0 + 5]! << 16) | (buf[t0 + 6]! << 8) | buf[t0 + 7]!) >>> 0 : 0;
  const flags = tcp ? buf[t0 + 13]! : 0;
  const csum = tcp ? 16 : 6; // checksum offset in the transport header
  let n = 0;
  for (let done = 0; done < payload; done += mss, n++) {
    const seg = Math.min(mss, payload - done);
    buf.copyWithin(at, pkt, pkt + hdr);
    buf.copyWithin(at + hdr, pkt + hdr + done, pkt + hdr + done + seg);
    // IPv4: length, a fresh id per piece, header checksum.
    put16(buf, at + 2, hdr + seg);
    put16(buf, at + 4, (id + n) & 0xffff);
    writeIPv4Checksum(buf, at, ihl);
    const t = at + ihl;
    if (tcp) {
      // Sequence number; FIN and PSH only on the last segment, CWR only on the first.
      const seq = (seq0 + done) >>> 0;
      buf[t + 4] = seq >>> 24;
      buf[t + 5] = (seq >>> 16) & 0xff;
      buf[t + 6] = (seq >>> 8) & 0xff;
      buf[t + 7] = seq & 0xff;
      let f = flags;
      if (done + seg < payload) f &= ~(TCP_FIN | TCP_PSH);
      if (n > 0) f &= ~TCP_CWR;
      buf[t + 13] = f;
    } else {
      put16(buf, t + 4, 8 + seg); // UDP length
    }
    buf[t + csum] = 0;
    buf[t + csum + 1] = 0;
    const c = finish(pseudoHeaderSum(buf, at, proto, l4hl + seg) + sumBytes(buf, t, l4hl + seg, words));
    put16(buf, t + csum, c === 0 && !tcp ? 0xffff : c); // UDP sends a zero checksum as 0xffff
    emit(buf, at, hdr + seg);
  }
  return n;
}
