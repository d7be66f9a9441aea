// The TUN device through /dev/net/tun and TUNSETIFF (IFF_TUN | IFF_NO_PI): one IP packet per read/write.

import { ptr } from "bun:ffi";
import {
  EBUSY,
  EACCES,
  EINVAL,
  ENODEV,
  ENOENT,
  ENXIO,
  EPERM,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SyscallError,
  errno,
  libc,
} from "../../ffi/libc.ts";

// linux/if_tun.h
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_VNET_HDR = 0x4000;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
/** sizeof(struct virtio_net_hdr_v1), what TUNSETVNETHDRSZ is normally given. */
export const VIRTIO_NET_HDR_LEN = 12;

export const IFNAMSIZ = 16;
const IFREQ_SIZE = 40; // struct ifreq: 16-byte name + a 24-byte union (flags is a short at offset 16)

const TUN_PATH = "/dev/net/tun";

export interface TunOptions {
  vnetHdr?: boolean; // IFF_VNET_HDR: every packet is preceded by a virtio_net_hdr
  multiQueue?: boolean; // IFF_MULTI_QUEUE: open the same name again for one queue per thread
}

/** Name check shared with config validation: 1..15 bytes, no '/', whitespace or ':'. */
export function validInterfaceName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name) && name !== "." && name !== "..";
}

/** Create (or attach to) TUN interface `name`; returns the non-blocking fd and the kernel's name. */
export function openTun(name: string, opts: TunOptions = {}): { fd: number; name: string } {
  if (!validInterfaceName(name)) {
    throw new Error(`TUN name "${name}" is not a valid interface name (1-15 characters: letters, digits, _ . -)`);
  }
  const path = Buffer.from(`${TUN_PATH}\0`);
  const fd = libc.open(ptr(path), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT || e === ENODEV || e === ENXIO) {
      throw new SyscallError(
        `open ${TUN_PATH}`,
        e,
        "the TUN driver is missing: run `modprobe tun`, or in a container pass the device (--device /dev/net/tun)",
      );
    }
    if (e === EACCES || e === EPERM) {
      throw new SyscallError(`open ${TUN_PATH}`, e, "run as root or with CAP_NET_ADMIN");
    }
    throw new SyscallError(`open ${TUN_PATH}`, e);
  }

  const ifreq = new ArrayBuffer(IFREQ_SIZE);
  const bytes = new Uint8Array(ifreq);
  bytes.set(Buffer.from(name, "ascii"));
  let flags = IFF_TUN | IFF_NO_PI;
  if (opts.vnetHdr) flags |= IFF_VNET_HDR;
  if (opts.multiQueue) flags |= IFF_MULTI_QUEUE;
  new DataView(ifreq).setUint16(IFNAMSIZ, flags, true);
  if (libc.ioctl(fd, TUNSETIFF, ptr(ifreq)) < 0) {
    const e = errno();
    libc.close(fd);
    const op = `ioctl TUNSETIFF ${name}`;
    if (e === EPERM || e === EACCES) throw new SyscallError(op, e, "creating a TUN device needs root or CAP_NET_ADMIN");
    if (e === EBUSY) throw new SyscallError(op, e, `interface ${name} is in use by another process (another vine daemon?)`);
    if (e === EINVAL) {
      throw new SyscallError(op, e, `interface ${name} exists but is not a TUN device with these flags; delete it or choose another name`);
    }
    throw new SyscallError(op, e);
  }
  const end = bytes.indexOf(0);
  const actual = Buffer.from(bytes.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)).toString("ascii");
  return { fd, name: actual };
}

/** TUNSETVNETHDRSZ then TUNSETOFFLOAD; false when the kernel refuses either (run without offloads). */
export function setTunOffload(fd: number, flags: number, vnetHeaderSize = VIRTIO_NET_HDR_LEN): boolean {
  const arg = new ArrayBuffer(8);
  new DataView(arg).setInt32(0, vnetHeaderSize, true);
  if (libc.ioctl(fd, TUNSETVNETHDRSZ, ptr(arg)) < 0) return false;
  // TUNSETOFFLOAD takes the flags as the argument value itself, not a pointer to them.
  return libc.ioctl(fd, TUNSETOFFLOAD, flags) === 0;
}

/** close(2); errors are ignored (there is nothing useful to do about them at shutdown). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc.close(fd);
}
