// libc through bun:ffi: the system calls vine needs for TUN, rtnetlink, UDP and poll.
//
// Every thread that imports this module gets its own dlopen (module instances are per Worker) and its
// own errno pointer (errno is thread-local). Pointer arguments are declared `ptr` and take plain
// numbers (base + offset from a pointer taken once per ArrayBuffer): no TypedArray conversion per call.
// ssize_t results are declared i64_fast, which yields a number for every value a syscall returns; `ssize`
// normalises the rare bigint anyway so callers always see a number.

import { dlopen, FFIType, read } from "bun:ffi";

const { i32, u32, u64, i64_fast, ptr, cstring } = FFIType;

const lib = dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, ptr], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i64_fast },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i64_fast },
  sendmsg: { args: [i32, ptr, i32], returns: i64_fast },
  recvmsg: { args: [i32, ptr, i32], returns: i64_fast },
  sendmmsg: { args: [i32, ptr, u32, i32], returns: i32 },
  recvmmsg: { args: [i32, ptr, u32, i32, ptr], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64_fast },
  write: { args: [i32, ptr, u64], returns: i64_fast },
  memcpy: { args: [ptr, ptr, u64], returns: ptr },
  readv: { args: [i32, ptr, i32], returns: i64_fast },
  writev: { args: [i32, ptr, i32], returns: i64_fast },
  // ioctl, fcntl and open are variadic in C; on x86-64 and aarch64 Linux the third argument travels in
  // the same register as a fixed one, so a fixed three-argument signature is correct.
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  open: { args: [cstring, i32, i32], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  __errno_location: { args: [], returns: ptr },
  strerror: { args: [i32], returns: cstring },
  getpid: { args: [], returns: i32 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
  if_nametoindex: { args: [cstring], returns: u32 },
  madvise: { args: [ptr, u64, i32], returns: i32 },
  getpagesize: { args: [], returns: i32 },
});

/** The raw libc symbols. Pointer arguments take numbers (see the header comment). */
export const libc = lib.symbols;

// errno lives at a fixed per-thread address: look it up once per thread, read it with no allocation.
const errnoPointer = libc.__errno_location();
if (errnoPointer === null) throw new Error("libc: __errno_location returned NULL");

/** errno of the calling thread; read it right after the failing call. */
export function errno(): number {
  return read.i32(errnoPointer!, 0);
}

/** A libc ssize_t result as a number (i64_fast may in theory give a bigint). */
export function ssize(r: number | bigint): number {
  return typeof r === "number" ? r : Number(r);
}

// Linux errno values (asm-generic/errno-base.h, errno.h).
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const EWOULDBLOCK = EAGAIN;
export const ENOMEM = 12;
export const MADV_DONTNEED = 4;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ENOSPC = 28;
export const EPIPE = 32;
export const ERANGE = 34;
export const ENOSYS = 38;
export const ENOTSOCK = 88;
export const EDESTADDRREQ = 89;
export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ECONNRESET = 104;
export const ENOBUFS = 105;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const EALREADY = 114;
export const EINPROGRESS = 115;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: "EPERM", [ENOENT]: "ENOENT", [ESRCH]: "ESRCH", [EINTR]: "EINTR", [EIO]: "EIO",
  [ENXIO]: "ENXIO", [EBADF]: "EBADF", [EAGAIN]: "EAGAIN", [ENOMEM]: "ENOMEM", [EACCES]: "EACCES",
  [EFAULT]: "EFAULT", [EBUSY]: "EBUSY", [EEXIST]: "EEXIST", [ENODEV]: "ENODEV", [EINVAL]: "EINVAL",
  [ENFILE]: "ENFILE", [EMFILE]: "EMFILE", [ENOTTY]: "ENOTTY", [ENOSPC]: "ENOSPC", [EPIPE]: "EPIPE",
  [ERANGE]: "ERANGE", [ENOSYS]: "ENOSYS", [ENOTSOCK]: "ENOTSOCK", [EDESTADDRREQ]: "EDESTADDRREQ",
  [EMSGSIZE]: "EMSGSIZE", [ENOPROTOOPT]: "ENOPROTOOPT", [EPROTONOSUPPORT]: "EPROTONOSUPPORT",
  [EOPNOTSUPP]: "EOPNOTSUPP", [EAFNOSUPPORT]: "EAFNOSUPPORT", [EADDRINUSE]: "EADDRINUSE",
  [EADDRNOTAVAIL]: "EADDRNOTAVAIL", [ENETDOWN]: "ENETDOWN", [ENETUNREACH]: "ENETUNREACH",
  [ECONNRESET]: "ECONNRESET", [ENOBUFS]: "ENOBUFS", [ENOTCONN]: "ENOTCONN", [ETIMEDOUT]: "ETIMEDOUT",
  [ECONNREFUSED]: "ECONNREFUSED", [EHOSTUNREACH]: "EHOSTUNREACH", [EALREADY]: "EALREADY",
  [EINPROGRESS]: "EINPROGRESS",
};

/** Symbolic name of an errno value ("EEXIST"), or "errno N" for one not in the table. */
export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}

/** libc's message for an errno value ("File exists"). */
export function strerror(n: number): string {
  return String(libc.strerror(n));
}

/** An error from a failed system call, carrying errno and its name. */
export class SyscallError extends Error {
  constructor(
    readonly operation: string,
    readonly errno: number,
    hint = "",
  ) {
    super(`${operation}: ${errnoName(errno)} (${strerror(errno)})${hint ? `; ${hint}` : ""}`);
    this.name = "SyscallError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

// Address and protocol families, socket types.
export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const NETLINK_ROUTE = 0;

// open(2) / fcntl(2).
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;

// poll(2).
export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

// eventfd(2).
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

// Socket options (asm-generic/socket.h).
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20; // SO_RCVTIMEO_OLD: struct timeval with 64-bit fields on 64-bit Linux
export const SO_SNDTIMEO = 21;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SOL_IP = 0;
export const IP_PKTINFO = 8;
export const IP_MTU_DISCOVER = 10;
export const IP_PMTUDISC_DONT = 0;
export const SOL_UDP = 17;
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;

// send/recv flags.
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_WAITFORONE = 0x10000;
