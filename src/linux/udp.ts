// The data-plane UDP socket (IPv4): opening it, and batched, allocation-free I/O with recvmmsg/sendmmsg.
//
// UdpIo keeps everything the kernel reads or writes in one ArrayBuffer whose address is taken once:
// the mmsghdr arrays, iovecs, sockaddrs, per-slot control space (for UDP_GRO / UDP_SEGMENT cmsgs) and
// the datagram buffers. Per call only numbers cross the ffi boundary.

import { ptr } from "bun:ffi";
import {
  AF_INET,
  EADDRINUSE,
  EAGAIN,
  EINTR,
  IPPROTO_UDP,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SOL_UDP,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SyscallError,
  UDP_GRO,
  UDP_SEGMENT,
  errno,
  libc,
  ssize,
} from "../../ffi/libc.ts";
import { SOCKADDR_IN_SIZE, formatIpv4, readSockaddr, writeSockaddr } from "./sockaddr.ts";
import { releasePages } from "./memory.ts";

export { readSockaddr, writeSockaddr } from "./sockaddr.ts";

const DEFAULT_SOCKET_BUFFER = 4 << 20;

// Scratch space for setup calls (socket options, getsockname); never used on the packet path.
const scratch = new ArrayBuffer(64);
const scratchView = new DataView(scratch);
const scratchPtr = ptr(scratch);

export interface UdpOptions {
  port: number;
  bindAddress?: number; // u32; default 0.0.0.0
  rcvbuf?: number; // bytes; default 4 MiB
  sndbuf?: number;
}

/** Open a non-blocking, close-on-exec IPv4 UDP socket bound to `port` (0 = any). Returns the fd. */
export function openUdp(opts: UdpOptions): number {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) throw new SyscallError("socket(AF_INET, SOCK_DGRAM)", errno());
  try {
    setBufferSize(fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.rcvbuf ?? DEFAULT_SOCKET_BUFFER);
    setBufferSize(fd, SO_SNDBUFFORCE, SO_SNDBUF, opts.sndbuf ?? DEFAULT_SOCKET_BUFFER);
    const address = opts.bindAddress ?? 0;
    writeSockaddr(scratchView, 0, address, opts.port);
    if (libc.bind(fd, scratchPtr, SOCKADDR_IN_SIZE) < 0) {
      const e = errno();
      const where = `${formatIpv4(address)}:${opts.port}`;
      if (e === EADDRINUSE) {
        throw new SyscallError(
          `bind UDP ${where}`,
          e,
          `UDP port ${opts.port} is already in use (another vine daemon? choose another listen port)`,
        );
      }
      throw new SyscallError(`bind UDP ${where}`, e);
    }
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

// The FORCE options exceed net.core.[rw]mem_max but need CAP_NET_ADMIN; fall back to the capped form.
function setBufferSize(fd: number, forced: number, plain: number, bytes: number): void {
  if (setIntOption(fd, SOL_SOCKET, forced, bytes)) return;
  if (!setIntOption(fd, SOL_SOCKET, plain, bytes)) {
    throw new SyscallError(`setsockopt(SOL_SOCKET, ${plain === SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF"})`, errno());
  }
}

/** setsockopt with an int value; false when refused (errno holds why). */
export function setIntOption(fd: number, level: number, name: number, value: number): boolean {
  scratchView.setInt32(0, value, true);
  return libc.setsockopt(fd, level, name, scratchPtr, 4) === 0;
}

/** getsockopt with an int value, or null when refused. */
export function getIntOption(fd: number, level: number, name: number): number | null {
  scratchView.setUint32(8, 4, true);
  if (libc.getsockopt(fd, level, name, scratchPtr, scratchPtr + 8) !== 0) return null;
  return scratchView.getInt32(0, true);
}

/** The local port a socket is bound to. */
export function boundPort(fd: number): number {
  scratchView.setUint32(16, SOCKADDR_IN_SIZE, true);
  if (libc.getsockname(fd, scratchPtr, scratchPtr + 16) !== 0) throw new SyscallError("getsockname", errno());
  const address = readSockaddr(scratchView, 0);
  if (address === null) throw new Error("getsockname: not an AF_INET socket");
  return address.port;
}

// struct mmsghdr on 64-bit Linux: struct msghdr (56 bytes) + unsigned msg_len, padded to 64.
const MMSG_SIZE = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const MSG_LEN = 56;
const IOVEC_SIZE = 16;
// One cmsg with an int payload: CMSG_SPACE(4) = 24; 32 keeps slots 8-aligned with room to spare.
const CONTROL_SIZE = 32;
const CMSG_HEADER = 16; // cmsg_len (size_t), cmsg_level (int), cmsg_type (int)

export interface UdpIoOptions {
  batch: number; // datagrams per recvmmsg/sendmmsg
  bufSize: number; // bytes per slot (64 KiB when receiving with GRO)
  gro?: boolean; // ask for UDP_GRO; `gro` tells whether the kernel agreed
  /** false: this instance never receives into slots (no receive buffers are allocated). */
  recv?: boolean;
  /** false: this instance never queues from send slots (no send buffers; sendTo still works). */
  send?: boolean;
}

/** Batched datagram I/O on one socket; one instance per thread (it owns its buffers). */
export class UdpIo {
  readonly batch: number;
  readonly bufSize: number;
  /** Received datagram lengths, by slot. */
  readonly lengths: Int32Array;
  /** Received source addresses (u32) and ports, by slot. */
  readonly srcIp: Uint32Array;
  readonly srcPort: Uint16Array;
  /** With GRO: the segment size of a coalesced slot (each segment but the last is that long), else 0. */
  readonly segmentSize: Int32Array;
  /** Whether UDP_GRO is on. */
  readonly gro: boolean;
  /** Datagrams dropped by flush because the socket buffer was full (EAGAIN). */
  sendDropped = 0;
  /** Datagrams flush or sendTo could not send for another reason; the last errno is in lastSendErrno. */
  sendErrors = 0;
  lastSendErrno = 0;
  /** errno of the last failing recvmmsg other than EAGAIN/EINTR. */
  lastRecvErrno = 0;

  private readonly fd: number;
  private readonly memory: ArrayBuffer;
  private readonly dataEnd: number; // receive slots, then send slots, end here (headers come before)
  private readonly view: DataView;
  private readonly words: Int32Array; // 32-bit view for msg_len / namelen resets
  private readonly base: number;
  private readonly recvHdr: number;
  private readonly recvAddr: number;
  private readonly recvCtl: number;
  private readonly sendHdr: number;
  private readonly sendIov: number;
  private readonly sendAddr: number;
  private readonly sendCtl: number;
  private readonly oneAddr: number;
  private readonly recvData: number;
  private readonly sendData: number;
  private readonly recvSlots: Uint8Array[] = [];
  private readonly sendSlots: Uint8Array[] = [];
  private queued = 0;
  private readonly sendSize: number;

  constructor(fd: number, opts: UdpIoOptions) {
    if (!Number.isInteger(opts.batch) || opts.batch < 1 || opts.batch > 1024) throw new RangeError("UdpIo: batch must be 1..1024");
    if (!Number.isInteger(opts.bufSize) || opts.bufSize < 1 || opts.bufSize > 65536) throw new RangeError("UdpIo: bufSize must be 1..65536");
    this.fd = fd;
    this.batch = opts.batch;
    this.bufSize = (opts.bufSize + 7) & ~7;
    const n = this.batch;

    let at = 0;
    const take = (bytes: number): number => {
      const off = at;
      at += (bytes + 7) & ~7;
      return off;
    };
    this.recvHdr = take(n * MMSG_SIZE);
    const recvIov = take(n * IOVEC_SIZE);
    this.recvAddr = take(n * SOCKADDR_IN_SIZE);
    this.recvCtl = take(n * CONTROL_SIZE);
    this.sendHdr = take(n * MMSG_SIZE);
    const sendIov = take(n * IOVEC_SIZE);
    this.sendIov = sendIov;
    this.sendAddr = take(n * SOCKADDR_IN_SIZE);
    this.sendCtl = take(n * CONTROL_SIZE);
    this.oneAddr = take(SOCKADDR_IN_SIZE);
    const recvSize = opts.recv === false ? 0 : this.bufSize;
    const sendSize = opts.send === false ? 0 : this.bufSize;
    this.recvData = take(n * recvSize);
    this.sendData = take(n * sendSize);
    this.sendSize = sendSize;

    this.dataEnd = at;
    this.memory = new ArrayBuffer(at);
    this.view = new DataView(this.memory);
    this.words = new Int32Array(this.memory);
    this.base = ptr(this.memory);
    this.lengths = new Int32Array(n);
    this.srcIp = new Uint32Array(n);
    this.srcPort = new Uint16Array(n);
    this.segmentSize = new Int32Array(n);

    for (let i = 0; i < n; i++) {
      this.recvSlots.push(new Uint8Array(this.memory, this.recvData + i * recvSize, recvSize));
      this.sendSlots.push(new Uint8Array(this.memory, this.sendData + i * sendSize, sendSize));
      // Receive headers are fixed: slot i's buffer, address and control space.
      const rh = this.recvHdr + i * MMSG_SIZE;
      this.setPointer(rh + MSG_NAME, this.base + this.recvAddr + i * SOCKADDR_IN_SIZE);
      this.view.setUint32(rh + MSG_NAMELEN, SOCKADDR_IN_SIZE, true);
      this.setPointer(rh + MSG_IOV, this.base + recvIov + i * IOVEC_SIZE);
      this.setPointer(rh + MSG_IOVLEN, 1);
      this.setPointer(recvIov + i * IOVEC_SIZE, this.base + this.recvData + i * recvSize);
      this.setPointer(recvIov + i * IOVEC_SIZE + 8, recvSize);
      // Send headers point at queue position i's address and iovec; the iovec base is set per queue().
      const sh = this.sendHdr + i * MMSG_SIZE;
      this.setPointer(sh + MSG_NAME, this.base + this.sendAddr + i * SOCKADDR_IN_SIZE);
      this.view.setUint32(sh + MSG_NAMELEN, SOCKADDR_IN_SIZE, true);
      this.setPointer(sh + MSG_IOV, this.base + sendIov + i * IOVEC_SIZE);
      this.setPointer(sh + MSG_IOVLEN, 1);
    }

    this.gro = opts.gro === true && setIntOption(fd, SOL_UDP, UDP_GRO, 1);
    if (this.gro) {
      for (let i = 0; i < n; i++) {
        this.setPointer(this.recvHdr + i * MMSG_SIZE + MSG_CONTROL, this.base + this.recvCtl + i * CONTROL_SIZE);
      }
    }
  }

  // Pointers and size_t fields as two 32-bit halves: no BigInt.
  private setPointer(off: number, value: number): void {
    this.view.setUint32(off, value % 4294967296, true);
    this.view.setUint32(off + 4, Math.floor(value / 4294967296), true);
  }

  /**
   * Receive up to `batch` datagrams. Returns how many (0 when nothing is waiting), or -errno on an
   * unexpected failure (also kept in lastRecvErrno).
   */
  recvBatch(): number {
    const n = this.batch;
    const words = this.words;
    for (let i = 0; i < n; i++) {
      const h = (this.recvHdr + i * MMSG_SIZE) >> 2;
      words[h + (MSG_NAMELEN >> 2)] = SOCKADDR_IN_SIZE;
      if (this.gro) words[h + (MSG_CONTROLLEN >> 2)] = CONTROL_SIZE;
    }
    const got = libc.recvmmsg(this.fd, this.base + this.recvHdr, n, MSG_DONTWAIT, 0);
    if (got < 0) {
      const e = errno();
      if (e === EAGAIN || e === EINTR) return 0;
      this.lastRecvErrno = e;
      return -e;
    }
    const view = this.view;
    for (let i = 0; i < got; i++) {
      const h = this.recvHdr + i * MMSG_SIZE;
      this.lengths[i] = view.getUint32(h + MSG_LEN, true);
      const a = this.recvAddr + i * SOCKADDR_IN_SIZE;
      this.srcPort[i] = view.getUint16(a + 2, false);
      this.srcIp[i] = view.getUint32(a + 4, false);
      this.segmentSize[i] = this.gro ? this.groSegment(i, h) : 0;
    }
    return got;
  }

  private groSegment(i: number, header: number): number {
    const view = this.view;
    const controlLength = view.getUint32(header + MSG_CONTROLLEN, true);
    if (controlLength < CMSG_HEADER + 4) return 0;
    const c = this.recvCtl + i * CONTROL_SIZE;
    if (view.getInt32(c + 8, true) !== SOL_UDP || view.getInt32(c + 12, true) !== UDP_GRO) return 0;
    return view.getInt32(c + CMSG_HEADER, true);
  }

  /**
   * Give the memory of the packet slots back to the kernel (src/linux/memory.ts): for an idle worker,
   * with nothing queued. The slots read as zeros afterwards; the message headers are not touched.
   * Returns the bytes released.
   */
  releaseData(): number {
    if (this.pending > 0) return 0;
    return releasePages(this.base + this.recvData, this.dataEnd - this.recvData);
  }

  /** Slot i's receive buffer (full size; the datagram length is lengths[i]). */
  slot(i: number): Uint8Array {
    return this.recvSlots[i]!;
  }

  /** Slot i's send buffer: fill it, then queue(i, …). */
  sendSlot(i: number): Uint8Array {
    return this.sendSlots[i]!;
  }

  /** Datagrams queued since the last flush. */
  get pending(): number {
    return this.queued;
  }

  /** Queue send slot i (first `len` bytes) for ip:port. Flushes first when the queue is full. */
  queue(i: number, len: number, ip: number, port: number, offset = 0): void {
    this.queueSegmented(i, len, ip, port, 0, offset);
  }

  /**
   * Queue send slot i as `len` bytes that the kernel splits into datagrams of `segmentSize` bytes
   * (UDP_SEGMENT; the last may be shorter). segmentSize 0 sends one datagram.
   */
  queueSegmented(i: number, len: number, ip: number, port: number, segmentSize: number, offset = 0): void {
    if (this.queued === this.batch) this.flush();
    const q = this.queued++;
    const h = this.sendHdr + q * MMSG_SIZE;
    const view = this.view;
    const iov = this.sendIov + q * IOVEC_SIZE;
    this.setPointer(iov, this.base + this.sendData + i * this.sendSize + offset);
    view.setUint32(iov + 8, len, true);
    const a = this.sendAddr + q * SOCKADDR_IN_SIZE;
    view.setUint16(a, AF_INET, true);
    view.setUint16(a + 2, port, false);
    view.setUint32(a + 4, ip >>> 0, false);
    if (segmentSize > 0) {
      const c = this.sendCtl + q * CONTROL_SIZE;
      view.setUint32(c, CMSG_HEADER + 2, true); // cmsg_len = CMSG_LEN(sizeof(u16))
      view.setUint32(c + 4, 0, true);
      view.setInt32(c + 8, SOL_UDP, true);
      view.setInt32(c + 12, UDP_SEGMENT, true);
      view.setUint16(c + CMSG_HEADER, segmentSize, true);
      this.setPointer(h + MSG_CONTROL, this.base + c);
      view.setUint32(h + MSG_CONTROLLEN, 24, true); // CMSG_SPACE(2)
    } else {
      this.setPointer(h + MSG_CONTROL, 0);
      view.setUint32(h + MSG_CONTROLLEN, 0, true);
    }
  }

  /**
   * Send everything queued with sendmmsg. Returns the number of datagrams the kernel took. When the
   * socket buffer is full the rest are dropped (counted in sendDropped): UDP is lossy and the packet
   * path never waits. A message the kernel refuses is skipped and counted in sendErrors.
   */
  flush(): number {
    const total = this.queued;
    let done = 0;
    let sent = 0;
    while (done < total) {
      const r = libc.sendmmsg(this.fd, this.base + this.sendHdr + done * MMSG_SIZE, total - done, MSG_DONTWAIT);
      if (r > 0) {
        done += r;
        sent += r;
        continue;
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) {
        this.sendDropped += total - done;
        break;
      }
      this.sendErrors++;
      this.lastSendErrno = e;
      done++; // sendmmsg reports an error only for the first message: skip it, keep the rest
    }
    this.queued = 0;
    return sent;
  }

  /** Send one datagram from any buffer (control plane). False when it was not sent (see lastSendErrno). */
  sendTo(buf: Uint8Array, off: number, len: number, ip: number, port: number): boolean {
    writeSockaddr(this.view, this.oneAddr, ip, port);
    const r = ssize(libc.sendto(this.fd, ptr(buf, off), len, MSG_DONTWAIT, this.base + this.oneAddr, SOCKADDR_IN_SIZE));
    if (r >= 0) return true;
    const e = errno();
    this.lastSendErrno = e;
    if (e === EAGAIN) this.sendDropped++;
    else this.sendErrors++;
    return false;
  }
}

