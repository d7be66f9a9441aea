// poll(2) over a fixed set of fds, and eventfd for waking a thread blocked in poll.
//
// The pollfd array and the 8-byte eventfd counters live in ArrayBuffers whose addresses are taken once,
// so waiting, signalling and draining allocate nothing.

import { ptr } from "bun:ffi";
import {
  EAGAIN,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINTR,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  SyscallError,
  errno,
  libc,
  ssize,
} from "../../ffi/libc.ts";

// One 8-byte value to write (1) and one to read into, per thread (module instances are per Worker).
// The buffer must stay reachable from the functions that use its address: a pointer is a plain
// number, and a module-level buffer referenced by nothing after start-up is collected — then
// signalEventFd writes whatever lies in the freed memory (often not 1: a wake-up lost, or an
// overflowing count refused) and drainEventFd writes 8 bytes into memory the allocator has handed
// to someone else (heap corruption: segfaults anywhere in the process).
const counters = { buffer: new ArrayBuffer(16), one: 0, sink: 0 };
new DataView(counters.buffer).setUint32(0, 1, true);
counters.one = ptr(counters.buffer);
counters.sink = counters.one + 8;

/** A non-blocking, close-on-exec eventfd. */
export function createEventFd(): number {
  const fd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new SyscallError("eventfd", errno());
  return fd;
}

/** Add 1 to the eventfd counter, waking a poller. Never blocks (a saturated counter is already awake). */
export function signalEventFd(fd: number): void {
  for (;;) {
    if (ssize(libc.write(fd, counters.one, 8)) === 8) return;
    if (errno() !== EINTR) return;
  }
}

/** Reset the eventfd counter; returns false when it was already zero. */
export function drainEventFd(fd: number): boolean {
  for (;;) {
    if (ssize(libc.read(fd, counters.sink, 8)) === 8) return true;
    const e = errno();
    if (e === EAGAIN) return false;
    if (e !== EINTR) throw new SyscallError("read(eventfd)", e);
  }
}

const POLLFD_SIZE = 8; // int fd; short events; short revents

/** poll(2) on a fixed list of fds, each watched for POLLIN unless told otherwise with watch(). */
export class Poller {
  readonly count: number;
  private readonly fds: Int32Array;
  private readonly events: Int16Array;
  private readonly pointer: number;

  constructor(fds: number[]) {
    this.count = fds.length;
    const memory = new ArrayBuffer(Math.max(1, fds.length) * POLLFD_SIZE);
    this.fds = new Int32Array(memory);
    this.events = new Int16Array(memory);
    this.pointer = ptr(memory);
    fds.forEach((fd, i) => {
      this.fds[i * 2] = fd;
      this.events[i * 4 + 2] = POLLIN;
    });
  }

  /** Watch entry i (fd) or not (-1: poll skips negative fds): for an fd watched only at times, or one that can only fail now. */
  setFd(i: number, fd: number): void {
    this.fds[i * 2] = fd;
  }

  /** Set the events (POLLIN, POLLOUT, or both) watched on entry i. */
  watch(i: number, events: number): void {
    this.events[i * 4 + 2] = events;
  }

  /** Wait up to timeoutMs (-1 = forever). Returns how many entries are ready; 0 on timeout or EINTR. */
  wait(timeoutMs: number): number {
    for (let i = 0; i < this.count; i++) this.events[i * 4 + 3] = 0;
    const r = libc.poll(this.pointer, this.count, timeoutMs);
    if (r >= 0) return r;
    const e = errno();
    if (e === EINTR) return 0;
    throw new SyscallError("poll", e);
  }

  /** The revents of entry i after the last wait. */
  revents(i: number): number {
    return this.events[i * 4 + 3]!;
  }

  /** Entry i has data (or an error/hangup a read will report). */
  readable(i: number): boolean {
    return (this.events[i * 4 + 3]! & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) !== 0;
  }

  /** Entry i can take a write. */
  writable(i: number): boolean {
    return (this.events[i * 4 + 3]! & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) !== 0;
  }
}
