// struct sockaddr_in (16 bytes) on a caller's preallocated buffer, and IPv4 text helpers.
//
// Addresses are u32 numbers in host order (10.42.0.1 = 0x0a2a0001); the struct holds them in network
// order. The family field is host order (little endian on every platform vine supports).

import { AF_INET } from "../../ffi/libc.ts";

export const SOCKADDR_IN_SIZE = 16;

/** Write an AF_INET sockaddr at `off`; no allocation. */
export function writeSockaddr(view: DataView, off: number, ip: number, port: number): void {
  view.setUint16(off, AF_INET, true);
  view.setUint16(off + 2, port, false);
  view.setUint32(off + 4, ip >>> 0, false);
  view.setUint32(off + 8, 0, true);
  view.setUint32(off + 12, 0, true);
}

/** Read an AF_INET sockaddr at `off`, or null when the family is not AF_INET or it does not fit. */
export function readSockaddr(view: DataView, off: number): { ip: number; port: number } | null {
  if (off < 0 || off + 8 > view.byteLength) return null;
  if (view.getUint16(off, true) !== AF_INET) return null;
  return { ip: view.getUint32(off + 4, false), port: view.getUint16(off + 2, false) };
}

/** Port of the sockaddr at `off` (no family check; for the packet path where the kernel wrote it). */
export function sockaddrPort(view: DataView, off: number): number {
  return view.getUint16(off + 2, false);
}

/** Address of the sockaddr at `off` as a u32 (no family check). */
export function sockaddrIp(view: DataView, off: number): number {
  return view.getUint32(off + 4, false);
}

/** Dotted quad → u32, or null when malformed. */
export function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

/** u32 → dotted quad. */
export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}
