// TAI64N as wireguard-go writes it: seconds + 2^62 + 10 big endian, nanoseconds whitened to 2^24.

import { expect, test } from "bun:test";
import { tai64n, tai64nAfter, tai64nCompare, tai64nNow, tai64nToMs } from "../../src/crypto/tai64n.ts";

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

test("monotonic: later times never compare lower; 17 ms apart always compare higher", () => {
  let t = 1_600_000_000_000;
  let prev = tai64n(t);
  for (let i = 0; i < 20_000; i++) {
    const step = Math.floor(Math.random() * 40);
    t += step;
    const cur = tai64n(t);
    const c = tai64nCompare(cur, prev);
    expect(c).toBeGreaterThanOrEqual(0);
    if (step >= 17) expect(c).toBeGreaterThan(0);
    prev = cur;
  }
});

test("the comparator is the numeric order: antisymmetric, across second and byte boundaries", () => {
  const times = [0, 999, 1000, 255_000, 256_000, 65_536_000, 1_700_000_000_999, 1_700_000_001_000, 2 ** 40, 4_102_444_800_000];
  for (const x of times) {
    for (const y of times) {
      const c = tai64nCompare(tai64n(x), tai64n(y));
      expect(Math.sign(c) + Math.sign(tai64nCompare(tai64n(y), tai64n(x)))).toBe(0);
      // Equal only within one whitening step of the same second.
      if (Math.floor(x / 1000) !== Math.floor(y / 1000)) expect(Math.sign(c)).toBe(Math.sign(x - y));
    }
  }
});

test("tai64nAfter: one whitening step later, carrying into the seconds", () => {
  const t = tai64n(1_700_000_000_123);
  const next = tai64nAfter(t);
  expect(tai64nCompare(next, t)).toBeGreaterThan(0);
  expect(hex(next)).toBe("400000006553f10a08000000");
  // The last whitened step of a second (59 × 2^24 ns) moves to the next second, nanoseconds 0.
  const last = tai64n(1_700_000_000_999);
  expect(new DataView(last.buffer).getUint32(8)).toBe(59 * 2 ** 24);
  expect(hex(tai64nAfter(last))).toBe("400000006553f10b00000000");
  expect(tai64nToMs(t)).toBe(1_700_000_000_117); // 0x07000000 ns = 117.44 ms
  expect(tai64nToMs(tai64n(1_700_000_000_000))).toBe(1_700_000_000_000);
});
