// TAI64N as wireguard-go writes it: seconds + 2^62 + 10 big endian, nanoseconds whitened to 2^24.

import { expect, test } from "bun:test";
import { tai64n, tai64nCompare, tai64nNow } from "../../src/crypto/tai64n.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("known answer (Python reference): 1700000000.123 s", () => {
  // 0x4000000000000000 + 10 + 1700000000 = 0x400000006553f10a; 123 ms = 123000000 ns & ~0xffffff = 0x07000000.
  expect(hex(tai64n(1_700_000_000_123))).toBe("400000006553f10a07000000");
});

test("whitening: every nanosecond value is a multiple of 2^24", () => {
  for (let ms = 0; ms < 1000; ms += 7) {
    const t = tai64n(1_600_000_000_000 + ms);
    const nanos = new DataView(t.buffer).getUint32(8);
    expect(nanos % 2 ** 24).toBe(0);
    expect(nanos).toBeLessThanOrEqual(ms * 1_000_000);
    expect(ms * 1_000_000 - nanos).toBeLessThan(2 ** 24);
  }
});

test("writes into a caller's buffer at its offset", () => {
  const big = new Uint8Array(20).fill(0xaa);
  const out = big.subarray(4, 16);
  expect(tai64n(1_700_000_000_123, out)).toBe(out);
  expect(hex(big)).toBe("aaaaaaaa400000006553f10a07000000aaaaaaaa");
});

test("compare orders by time, seconds before nanoseconds", () => {
  const a = tai64n(1_700_000_000_000);
  const b = tai64n(1_700_000_000_500);
  const c = tai64n(1_700_000_001_000);
  expect(tai64nCompare(a, b)).toBeLessThan(0);
  expect(tai64nCompare(c, b)).toBeGreaterThan(0);
  expect(tai64nCompare(b, tai64n(1_700_000_000_500))).toBe(0);
  // Within one whitening step two times compare equal: a replayed initiation is refused.
  expect(tai64nCompare(tai64n(1_700_000_000_001), tai64n(1_700_000_000_010))).toBe(0);
});

test("now is close to the wall clock", () => {
  const t = tai64nNow();
  const secs = Number(new DataView(t.buffer).getBigUint64(0) - 0x400000000000000an);
  expect(Math.abs(secs - Date.now() / 1000)).toBeLessThan(5);
});
