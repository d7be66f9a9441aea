// rtnetlink over an AF_NETLINK socket through ffi: links, IPv4 addresses and routes, no `ip` command.
//
// Each request carries NLM_F_ACK and is answered by an NLMSG_ERROR ack that we decode, so every
// failure surfaces as a NetlinkError naming the operation and the errno ("add route 10.42.1.0/24 dev
// vine0: EEXIST"). The socket blocks with a receive timeout so a lost answer cannot hang the caller.

import { ptr } from "bun:ffi";
import {
  AF_NETLINK,
  EADDRNOTAVAIL,
  EAGAIN,
  EEXIST,
  EINTR,
  EIO,
  ENODEV,
  ENOENT,
  ESRCH,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVTIMEO,
  SyscallError,
  errno,
  errnoName,
  libc,
  ssize,
} from "../../ffi/libc.ts";
import {
  IFADDRMSG_LEN,
  IFINFOMSG_LEN,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NlWriter,
  type AddressInfo,
  type LinkInfo,
  type NlMessage,
  RTMSG_LEN,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  type RouteInfo,
  buildAddressRequest,
  buildLinkByNameRequest,
  buildRouteRequest,
  buildSetLinkRequest,
  parseAck,
  parseAddress,
  parseLink,
  parseMessages,
  parseRoute,
  writeRtmsg,
} from "./netlink-codec.ts";
import { formatIpv4 } from "./sockaddr.ts";

/** A refused rtnetlink request: `code` is the errno name, `operation` what was asked. */
export class NetlinkError extends Error {
  constructor(
    readonly operation: string,
    readonly errno: number,
    detail: string | null = null,
  ) {
    super(`${operation}: ${errnoName(errno)}${detail ? ` (${detail})` : ""}`);
    this.name = "NetlinkError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

export interface RouteEntry {
  dst: number;
  prefixLen: number;
  ifname: string | null;
  table: number;
  protocol: number;
}

const RECEIVE_TIMEOUT_S = 2;
const RECEIVE_BUFFER = 64 * 1024;

export class Rtnetlink {
  private fd: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly writer = new NlWriter(4096);
  private readonly writerPtr: number;
  private readonly receive = new ArrayBuffer(RECEIVE_BUFFER);
  private readonly receiveView = new DataView(this.receive);
  private readonly receivePtr = ptr(this.receive);

  constructor() {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new SyscallError("socket(AF_NETLINK, NETLINK_ROUTE)", errno());
    this.fd = fd;
    this.writerPtr = ptr(this.writer.bytes);
    const option = new ArrayBuffer(16);
    const optionView = new DataView(option);
    // struct timeval { long tv_sec; long tv_usec; }
    optionView.setUint32(0, RECEIVE_TIMEOUT_S, true);
    if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(option), 16) < 0) {
      const e = errno();
      libc.close(fd);
      throw new SyscallError("setsockopt(SO_RCVTIMEO) on netlink", e);
    }
    // Extended acks carry the kernel's reason as text; older kernels refuse the option, which is fine.
    optionView.setInt32(0, 1, true);
    libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, ptr(option), 4);
    // struct sockaddr_nl { sa_family; pad; pid (0: kernel assigns); groups }
    const address = new ArrayBuffer(12);
    new DataView(address).setUint16(0, AF_NETLINK, true);
    if (libc.bind(fd, ptr(address), 12) < 0) {
      const e = errno();
      libc.close(fd);
      throw new SyscallError("bind(AF_NETLINK)", e);
    }
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }

  /** Interface index of `name`, or null when there is no such interface. */
  linkIndex(name: string): number | null {
    buildLinkByNameRequest(this.writer, RTM_GETLINK, this.nextSeq(), name);
    let found: LinkInfo | null = null;
    const e = this.transact(`look up link ${name}`, (view, msg) => {
      found = parseLink(view, msg) ?? found;
    }, [ENODEV]);
    if (e !== 0) return null;
    return (found as LinkInfo | null)?.index ?? null;
  }

  linkExists(name: string): boolean {
    return this.linkIndex(name) !== null;
  }

  /** Every interface in this namespace. */
  listLinks(): LinkInfo[] {
    const w = this.writer.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, this.nextSeq());
    w.reserve(IFINFOMSG_LEN);
    const links: LinkInfo[] = [];
    this.transact("list links", (view, msg) => {
      const link = parseLink(view, msg);
      if (link !== null) links.push(link);
    });
    return links;
  }

  /** Bring a link up or down and set its MTU and transmit queue length. */
  setLink(name: string, opts: { up?: boolean; mtu?: number; txqueuelen?: number }): void {
    const index = this.requireLink(name, "set link");
    buildSetLinkRequest(this.writer, this.nextSeq(), index, opts);
    const what = [
      opts.up === undefined ? "" : opts.up ? "up" : "down",
      opts.mtu === undefined ? "" : `mtu ${opts.mtu}`,
      opts.txqueuelen === undefined ? "" : `txqueuelen ${opts.txqueuelen}`,
    ].filter(Boolean).join(" ");
    this.transact(`set link ${name} ${what}`.trimEnd());
  }

  /** Add ip/prefixLen to `name`; an address that is already there is fine. */
  addAddress(name: string, ip: number, prefixLen: number): void {
    const operation = `add address ${formatIpv4(ip)}/${prefixLen} dev ${name}`;
    const index = this.requireLink(name, operation);
    buildAddressRequest(this.writer, RTM_NEWADDR, this.nextSeq(), index, ip, prefixLen);
    this.transact(operation, undefined, [EEXIST]);
  }

  /** Remove ip/prefixLen from `name`; an address or link that is already gone is fine. */
  delAddress(name: string, ip: number, prefixLen: number): void {
    const operation = `delete address ${formatIpv4(ip)}/${prefixLen} dev ${name}`;
    const index = this.linkIndex(name);
    if (index === null) return;
    buildAddressRequest(this.writer, RTM_DELADDR, this.nextSeq(), index, ip, prefixLen);
    this.transact(operation, undefined, [EADDRNOTAVAIL, ENODEV]);
  }

  /** IPv4 addresses, optionally of one interface. */
  listAddresses(name?: string): { ifname: string | null; ip: number; prefixLen: number }[] {
    const names = this.linkNames();
    const w = this.writer.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, this.nextSeq());
    const o = w.reserve(IFADDRMSG_LEN);
    w.view.setUint8(o, 2 /* AF_INET */);
    const found: AddressInfo[] = [];
    this.transact("list addresses", (view, msg) => {
      const a = parseAddress(view, msg);
      if (a !== null && a.address !== null) found.push(a);
    });
    return found
      .map((a) => ({ ifname: names.get(a.index) ?? null, ip: a.address!, prefixLen: a.prefixLen }))
      .filter((a) => name === undefined || a.ifname === name);
  }

  /** Route dst/prefixLen out of `ifname` in the main table, replacing any route to the same prefix. */
  addRoute(dst: number, prefixLen: number, ifname: string, opts: { src?: number; protocol?: number; mtu?: number } = {}): void {
    const operation = `add route ${formatIpv4(dst)}/${prefixLen} dev ${ifname}`;
    const index = this.requireLink(ifname, operation);
    buildRouteRequest(this.writer, RTM_NEWROUTE, this.nextSeq(), { dst, prefixLen, oif: index, prefSrc: opts.src, protocol: opts.protocol, mtu: opts.mtu });
    this.transact(operation);
  }

  /** Delete the main-table route dst/prefixLen out of `ifname`; one that is already gone is fine. */
  delRoute(dst: number, prefixLen: number, ifname: string): void {
    const operation = `delete route ${formatIpv4(dst)}/${prefixLen} dev ${ifname}`;
    const index = this.linkIndex(ifname);
    if (index === null) return; // the link is gone, and its routes with it
    buildRouteRequest(this.writer, RTM_DELROUTE, this.nextSeq(), { dst, prefixLen, oif: index });
    this.transact(operation, undefined, [ESRCH, ENOENT, ENODEV]);
  }

  /** IPv4 routes of the main table. */
  listRoutes(): RouteEntry[] {
    const names = this.linkNames();
    const w = this.writer.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, this.nextSeq());
    const o = w.reserve(RTMSG_LEN);
    writeRtmsg(w.view, o, { dstLen: 0, table: 0, protocol: 0, scope: RT_SCOPE_UNIVERSE, type: 0 });
    const routes: RouteInfo[] = [];
    this.transact("list routes", (view, msg) => {
      const r = parseRoute(view, msg);
      if (r !== null && r.table === RT_TABLE_MAIN) routes.push(r);
    });
    return routes.map((r) => ({
      dst: r.dst,
      prefixLen: r.prefixLen,
      ifname: r.oif === null ? null : (names.get(r.oif) ?? null),
      table: r.table,
      protocol: r.protocol,
    }));
  }

  /** Delete interface `name`; one that does not exist is fine. */
  deleteLink(name: string): void {
    buildLinkByNameRequest(this.writer, RTM_DELLINK, this.nextSeq(), name);
    this.transact(`delete link ${name}`, undefined, [ENODEV]);
  }

  private linkNames(): Map<number, string> {
    const names = new Map<number, string>();
    for (const link of this.listLinks()) if (link.name !== null) names.set(link.index, link.name);
    return names;
  }

  private requireLink(name: string, operation: string): number {
    const index = this.linkIndex(name);
    if (index === null) throw new NetlinkError(operation, ENODEV, `no interface named ${name}`);
    return index;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /**
   * Send the request in the writer and read answers until its ack, NLMSG_DONE (dumps) or a reply
   * (a plain get). Returns 0, or the errno when it is one of `tolerated`; throws NetlinkError otherwise.
   */
  private transact(
    operation: string,
    onMessage?: (view: DataView, msg: NlMessage) => void,
    tolerated: number[] = [],
  ): number {
    if (this.fd < 0) throw new Error(`${operation}: netlink socket is closed`);
    const request = this.writer.finish();
    const seq = this.writer.view.getUint32(8, true);
    const flags = this.writer.view.getUint16(6, true);
    const expectsAck = (flags & NLM_F_ACK) !== 0;
    const isDump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    for (;;) {
      const sent = ssize(libc.sendto(this.fd, this.writerPtr, request.length, 0, 0, 0));
      if (sent >= 0) break;
      const e = errno();
      if (e !== EINTR) throw new NetlinkError(operation, e, "send");
    }
    for (;;) {
      const got = ssize(libc.recvfrom(this.fd, this.receivePtr, RECEIVE_BUFFER, 0, 0, 0));
      if (got < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new NetlinkError(operation, e, e === EAGAIN ? "no answer from the kernel" : "receive");
      }
      const messages = parseMessages(this.receiveView, got);
      if (messages === null) throw new NetlinkError(operation, EIO, "malformed answer from the kernel");
      for (const msg of messages) {
        if (msg.seq !== seq) continue; // a late answer to an earlier request
        if (msg.type === NLMSG_ERROR) {
          const ack = parseAck(this.receiveView, msg);
          if (ack === null) throw new NetlinkError(operation, EIO, "malformed acknowledgement");
          if (ack.errno === 0) return 0;
          if (tolerated.includes(ack.errno)) return ack.errno;
          throw new NetlinkError(operation, ack.errno, ack.message);
        }
        if (msg.type === NLMSG_DONE) return 0;
        onMessage?.(this.receiveView, msg);
        if (!expectsAck && !isDump) return 0; // a plain get is answered by exactly one message
      }
    }
  }
}
