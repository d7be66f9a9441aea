// TAI64N timestamps for handshake initiations (replay protection of initiations): 8-byte big-endian
// seconds with the TAI64 base (2^62 + 10, as wireguard-go writes it) and 4-byte big-endian nanoseconds,
// whitened to 2^24 ns so that the timestamp leaks less about the local clock.

const BASE = 0x4000000000000000n + 10n;
const WHITEN_MASK = 0x1000000 - 1;

export function tai64n(nowMs: number = Date.now(), out: Uint8Array = new Uint8Array(12)): Uint8Array {
  const secs = BigInt(Math.floor(nowMs / 1000)) + BASE;
  const nanos = ((nowMs % 1000) * 1_000_000) & ~WHITEN_MASK;
  const dv = new DataView(out.buffer, out.byteOffset, 12);
  dv.setBigUint64(0, secs);
  dv.setUint32(8, nanos >>> 0);
  return out;
}

/** <0, 0, >0 like a comparator: is a before, equal to, or after b? */
export function tai64nCompare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 12; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
