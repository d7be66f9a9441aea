// TAI64N timestamps, as WireGuard puts them in handshake initiations (a responder accepts an
// initiation only if its timestamp is newer than the last one: replay protection for message 1).
// Layout: 8-byte big-endian seconds with wireguard-go's base 2^62 + 10 (TAI−UTC offset it assumes),
// then 4-byte big-endian nanoseconds whitened down to a multiple of 2^24 ns (~16.8 ms), so the
// timestamp says less about the local clock. Matches wireguard-go's tai64n.go exactly.

export const TAI64N_SIZE = 12;
const BASE = 0x4000000000000000n + 10n;
const WHITEN_MASK = 0x1000000 - 1;

/** The TAI64N encoding of `nowMs` (Unix milliseconds), written into `out` (allocated if absent). */
export function tai64n(nowMs: number, out: Uint8Array = new Uint8Array(TAI64N_SIZE)): Uint8Array {
  const seconds = Math.floor(nowMs / 1000);
  const nanos = Math.round((nowMs - seconds * 1000) * 1_000_000) & ~WHITEN_MASK;
  const dv = new DataView(out.buffer, out.byteOffset, TAI64N_SIZE);
  dv.setBigUint64(0, BigInt(seconds) + BASE);
  dv.setUint32(8, nanos >>> 0);
  return out;
}

/** The current time as TAI64N. */
export function tai64nNow(out?: Uint8Array): Uint8Array {
  return tai64n(Date.now(), out);
}

/** Comparator: negative, 0 or positive as a is before, equal to or after b (both 12 bytes). */
export function tai64nCompare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TAI64N_SIZE; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The first timestamp after `ts` that tai64n() can produce (nanoseconds stay a multiple of 2^24):
 * what an initiator sends when its clock reads earlier than the last timestamp it sent.
 */
export function tai64nAfter(ts: Uint8Array, out: Uint8Array = new Uint8Array(TAI64N_SIZE)): Uint8Array {
  const src = new DataView(ts.buffer, ts.byteOffset, TAI64N_SIZE);
  let seconds = src.getBigUint64(0);
  let nanos = ((src.getUint32(8) & ~WHITEN_MASK) >>> 0) + WHITEN_MASK + 1;
  if (nanos >= 1_000_000_000) {
    seconds += 1n;
    nanos = 0;
  }
  const dv = new DataView(out.buffer, out.byteOffset, TAI64N_SIZE);
  dv.setBigUint64(0, seconds);
  dv.setUint32(8, nanos);
  return out;
}

/** Unix milliseconds of a TAI64N timestamp (the inverse of tai64n(), to its 2^24 ns resolution). */
export function tai64nToMs(ts: Uint8Array): number {
  const dv = new DataView(ts.buffer, ts.byteOffset, TAI64N_SIZE);
  return Number(dv.getBigUint64(0) - BASE) * 1000 + Math.floor(dv.getUint32(8) / 1_000_000);
}
