// rtnetlink message encoding and decoding (pure; no sockets), for src/linux/netlink.ts.
//
// Layouts from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h. Every decoder
// takes bytes the kernel (or a fuzzer) wrote and returns null on anything malformed; none throws.

export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_CAPPED = 0x100; // on an ack: the original request is not echoed
export const NLM_F_ACK_TLVS = 0x200; // on an ack: extended-ack attributes follow

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const RTA_HDRLEN = 4;

export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_TXQLEN = 13;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTAX_MTU = 2;
export const RTA_TABLE = 15;
export const NLMSGERR_ATTR_MSG = 1;

export const IFF_UP = 0x1;
export const RT_TABLE_MAIN = 254;
export const RTPROT_STATIC = 4;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;

const align4 = (n: number): number => (n + 3) & ~3;

/** Builds one netlink request in a reusable buffer. */
export class NlWriter {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  length = 0;

  constructor(capacity = 4096) {
    this.bytes = new Uint8Array(new ArrayBuffer(capacity));
    this.view = new DataView(this.bytes.buffer);
  }

  /** Start a message: header with type, flags and sequence number (pid 0 = the kernel fills it). */
  begin(type: number, flags: number, seq: number): this {
    this.bytes.fill(0, 0, NLMSG_HDRLEN);
    this.view.setUint16(4, type, true);
    this.view.setUint16(6, flags, true);
    this.view.setUint32(8, seq >>> 0, true);
    this.length = NLMSG_HDRLEN;
    return this;
  }

  /** Reserve `size` zeroed bytes (a fixed struct) and return their offset for the caller to fill. */
  reserve(size: number): number {
    const off = this.length;
    const end = off + align4(size);
    if (end > this.bytes.length) throw new RangeError("netlink request too large");
    this.bytes.fill(0, off, end);
    this.length = end;
    return off;
  }

  attrBytes(type: number, data: Uint8Array): this {
    const off = this.reserve(RTA_HDRLEN + data.length);
    this.view.setUint16(off, RTA_HDRLEN + data.length, true);
    this.view.setUint16(off + 2, type, true);
    this.bytes.set(data, off + RTA_HDRLEN);
    return this;
  }

  attrU32(type: number, value: number): this {
    const off = this.reserve(RTA_HDRLEN + 4);
    this.view.setUint16(off, RTA_HDRLEN + 4, true);
    this.view.setUint16(off + 2, type, true);
    this.view.setUint32(off + RTA_HDRLEN, value >>> 0, true);
    return this;
  }

  /** An IPv4 address attribute (network byte order). */
  attrIpv4(type: number, ip: number): this {
    const off = this.reserve(RTA_HDRLEN + 4);
    this.view.setUint16(off, RTA_HDRLEN + 4, true);
    this.view.setUint16(off + 2, type, true);
    this.view.setUint32(off + RTA_HDRLEN, ip >>> 0, false);
    return this;
  }

  /** A NUL-terminated string attribute. */
  attrString(type: number, text: string): this {
    const encoded = new TextEncoder().encode(text);
    const data = new Uint8Array(encoded.length + 1);
    data.set(encoded);
    return this.attrBytes(type, data);
  }

  /** Patch the total length into the header and return the message bytes. */
  finish(): Uint8Array {
    this.view.setUint32(0, this.length, true);
    return this.bytes.subarray(0, this.length);
  }
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  offset: number; // payload start in the buffer
  length: number; // payload length
}

/** Split a datagram of `length` bytes into messages; null when any header is malformed. */
export function parseMessages(view: DataView, length: number): NlMessage[] | null {
  const messages: NlMessage[] = [];
  let off = 0;
  const end = Math.min(length, view.byteLength);
  while (off + NLMSG_HDRLEN <= end) {
    const len = view.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > end) return null;
    messages.push({
      type: view.getUint16(off + 4, true),
      flags: view.getUint16(off + 6, true),
      seq: view.getUint32(off + 8, true),
      pid: view.getUint32(off + 12, true),
      offset: off + NLMSG_HDRLEN,
      length: len - NLMSG_HDRLEN,
    });
    off += align4(len);
  }
  if (off < end) return null; // trailing bytes too short for a header
  return messages;
}

export interface Attr {
  offset: number; // data start
  length: number; // data length
}

/** Parse a run of rtattrs; the last one of each type wins. Null when malformed. */
export function parseAttributes(view: DataView, offset: number, length: number): Map<number, Attr> | null {
  const attrs = new Map<number, Attr>();
  if (offset < 0 || length < 0 || offset + length > view.byteLength) return null;
  let off = offset;
  const end = offset + length;
  while (off + RTA_HDRLEN <= end) {
    const len = view.getUint16(off, true);
    if (len < RTA_HDRLEN || off + len > end) return null;
    const type = view.getUint16(off + 2, true) & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
    attrs.set(type, { offset: off + RTA_HDRLEN, length: len - RTA_HDRLEN });
    off += align4(len);
  }
  return attrs;
}

function attrU32(view: DataView, attr: Attr | undefined): number | null {
  return attr !== undefined && attr.length >= 4 ? view.getUint32(attr.offset, true) : null;
}

function attrIpv4(view: DataView, attr: Attr | undefined): number | null {
  return attr !== undefined && attr.length >= 4 ? view.getUint32(attr.offset, false) : null;
}

function attrString(view: DataView, attr: Attr | undefined): string | null {
  if (attr === undefined) return null;
  const bytes = new Uint8Array(view.buffer, view.byteOffset + attr.offset, attr.length);
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

export interface Ack {
  errno: number; // 0 for success, else a positive errno
  message: string | null; // extended-ack text, when the kernel gave one
}

/** Decode an NLMSG_ERROR payload (an ack when errno is 0). */
export function parseAck(view: DataView, msg: NlMessage): Ack | null {
  if (msg.type !== NLMSG_ERROR || msg.length < 4 + NLMSG_HDRLEN) return null;
  const error = view.getInt32(msg.offset, true);
  if (error > 0 || error < -4095) return null;
  let message: string | null = null;
  if (msg.flags & NLM_F_ACK_TLVS) {
    // The echoed request: just its header when capped, else the whole request.
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : view.getUint32(msg.offset + 4, true);
    const tlvStart = msg.offset + 4 + align4(echoed);
    const tlvLength = msg.offset + msg.length - tlvStart;
    if (tlvLength > 0) {
      const attrs = parseAttributes(view, tlvStart, tlvLength);
      if (attrs !== null) message = attrString(view, attrs.get(NLMSGERR_ATTR_MSG));
    }
  }
  return { errno: error === 0 ? 0 : -error, message };
}

export interface LinkInfo {
  index: number;
  name: string | null;
  flags: number;
  up: boolean;
  mtu: number | null;
}

export function parseLink(view: DataView, msg: NlMessage): LinkInfo | null {
  if (msg.type !== RTM_NEWLINK || msg.length < IFINFOMSG_LEN) return null;
  const attrs = parseAttributes(view, msg.offset + IFINFOMSG_LEN, msg.length - IFINFOMSG_LEN);
  if (attrs === null) return null;
  const flags = view.getUint32(msg.offset + 8, true);
  return {
    index: view.getInt32(msg.offset + 4, true),
    name: attrString(view, attrs.get(IFLA_IFNAME)),
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu: attrU32(view, attrs.get(IFLA_MTU)),
  };
}

export interface AddressInfo {
  index: number;
  prefixLen: number;
  address: number | null; // IFA_LOCAL, else IFA_ADDRESS
}

export function parseAddress(view: DataView, msg: NlMessage): AddressInfo | null {
  if (msg.type !== RTM_NEWADDR || msg.length < IFADDRMSG_LEN) return null;
  if (view.getUint8(msg.offset) !== 2 /* AF_INET */) return null;
  const attrs = parseAttributes(view, msg.offset + IFADDRMSG_LEN, msg.length - IFADDRMSG_LEN);
  if (attrs === null) return null;
  return {
    index: view.getUint32(msg.offset + 4, true),
    prefixLen: view.getUint8(msg.offset + 1),
    address: attrIpv4(view, attrs.get(IFA_LOCAL)) ?? attrIpv4(view, attrs.get(IFA_ADDRESS)),
  };
}

export interface RouteInfo {
  dst: number; // 0 for the default route
  prefixLen: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  oif: number | null;
  gateway: number | null;
  prefSrc: number | null;
}

/** Decode an IPv4 RTM_NEWROUTE; null for other families or malformed bytes. */
export function parseRoute(view: DataView, msg: NlMessage): RouteInfo | null {
  if (msg.type !== RTM_NEWROUTE || msg.length < RTMSG_LEN) return null;
  const o = msg.offset;
  if (view.getUint8(o) !== 2 /* AF_INET */) return null;
  const prefixLen = view.getUint8(o + 1);
  if (prefixLen > 32) return null;
  const attrs = parseAttributes(view, o + RTMSG_LEN, msg.length - RTMSG_LEN);
  if (attrs === null) return null;
  return {
    dst: attrIpv4(view, attrs.get(RTA_DST)) ?? 0,
    prefixLen,
    table: attrU32(view, attrs.get(RTA_TABLE)) ?? view.getUint8(o + 4),
    protocol: view.getUint8(o + 5),
    scope: view.getUint8(o + 6),
    type: view.getUint8(o + 7),
    oif: attrU32(view, attrs.get(RTA_OIF)),
    gateway: attrIpv4(view, attrs.get(RTA_GATEWAY)),
    prefSrc: attrIpv4(view, attrs.get(RTA_PREFSRC)),
  };
}

/** Write an rtmsg at `off`. */
export function writeRtmsg(
  view: DataView,
  off: number,
  f: { dstLen: number; table: number; protocol: number; scope: number; type: number },
): void {
  view.setUint8(off, 2 /* AF_INET */);
  view.setUint8(off + 1, f.dstLen);
  view.setUint8(off + 2, 0);
  view.setUint8(off + 3, 0);
  view.setUint8(off + 4, f.table < 256 ? f.table : 252 /* RT_TABLE_COMPAT; RTA_TABLE carries it */);
  view.setUint8(off + 5, f.protocol);
  view.setUint8(off + 6, f.scope);
  view.setUint8(off + 7, f.type);
  view.setUint32(off + 8, 0, true);
}

export interface RouteRequest {
  dst: number;
  prefixLen: number;
  oif: number;
  prefSrc?: number;
  protocol?: number; // default RTPROT_STATIC
  /** Route MTU (RTA_METRICS / RTAX_MTU): the kernel sizes TCP segments for this destination by it. */
  mtu?: number;
}

/** RTM_NEWROUTE (replace-or-create, main table, link scope) or RTM_DELROUTE into `w`. */
export function buildRouteRequest(w: NlWriter, type: typeof RTM_NEWROUTE | typeof RTM_DELROUTE, seq: number, r: RouteRequest): Uint8Array {
  const adding = type === RTM_NEWROUTE;
  const flags = NLM_F_REQUEST | NLM_F_ACK | (adding ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  w.begin(type, flags, seq);
  const o = w.reserve(RTMSG_LEN);
  writeRtmsg(w.view, o, adding
    ? { dstLen: r.prefixLen, table: RT_TABLE_MAIN, protocol: r.protocol ?? RTPROT_STATIC, scope: RT_SCOPE_LINK, type: RTN_UNICAST }
    : { dstLen: r.prefixLen, table: RT_TABLE_MAIN, protocol: 0, scope: RT_SCOPE_NOWHERE, type: 0 });
  w.attrU32(RTA_TABLE, RT_TABLE_MAIN);
  if (r.prefixLen > 0) w.attrIpv4(RTA_DST, r.dst);
  w.attrU32(RTA_OIF, r.oif);
  if (adding && r.prefSrc !== undefined) w.attrIpv4(RTA_PREFSRC, r.prefSrc);
  if (adding && r.mtu !== undefined) {
    // RTA_METRICS nests rtattrs: one RTAX_MTU (u32).
    const m = new Uint8Array(8);
    const dv = new DataView(m.buffer);
    dv.setUint16(0, 8, true);
    dv.setUint16(2, RTAX_MTU, true);
    dv.setUint32(4, r.mtu, true);
    w.attrBytes(RTA_METRICS, m);
  }
  return w.finish();
}

/** RTM_NEWADDR (create, exclusive: an existing address answers EEXIST) or RTM_DELADDR into `w`. */
export function buildAddressRequest(
  w: NlWriter,
  type: typeof RTM_NEWADDR | typeof RTM_DELADDR,
  seq: number,
  index: number,
  ip: number,
  prefixLen: number,
): Uint8Array {
  const flags = NLM_F_REQUEST | NLM_F_ACK | (type === RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
  w.begin(type, flags, seq);
  const o = w.reserve(IFADDRMSG_LEN);
  w.view.setUint8(o, 2 /* AF_INET */);
  w.view.setUint8(o + 1, prefixLen);
  w.view.setUint8(o + 3, RT_SCOPE_UNIVERSE);
  w.view.setUint32(o + 4, index, true);
  w.attrIpv4(IFA_LOCAL, ip);
  w.attrIpv4(IFA_ADDRESS, ip);
  return w.finish();
}

/** RTM_NEWLINK changing an existing link: UP flag, MTU, transmit queue length. */
export function buildSetLinkRequest(
  w: NlWriter,
  seq: number,
  index: number,
  opts: { up?: boolean; mtu?: number; txqueuelen?: number },
): Uint8Array {
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  const o = w.reserve(IFINFOMSG_LEN);
  w.view.setInt32(o + 4, index, true);
  if (opts.up !== undefined) {
    w.view.setUint32(o + 8, opts.up ? IFF_UP : 0, true);
    w.view.setUint32(o + 12, IFF_UP, true); // ifi_change: only the UP bit
  }
  if (opts.mtu !== undefined) w.attrU32(IFLA_MTU, opts.mtu);
  if (opts.txqueuelen !== undefined) w.attrU32(IFLA_TXQLEN, opts.txqueuelen);
  return w.finish();
}

/** RTM_GETLINK for one name, or RTM_DELLINK by name. */
export function buildLinkByNameRequest(w: NlWriter, type: typeof RTM_GETLINK | typeof RTM_DELLINK, seq: number, name: string): Uint8Array {
  w.begin(type, NLM_F_REQUEST | (type === RTM_DELLINK ? NLM_F_ACK : 0), seq);
  w.reserve(IFINFOMSG_LEN);
  w.attrString(IFLA_IFNAME, name);
  return w.finish();
}
