// The daemon's timer clock: monotonic integer milliseconds, far from 0, the same in every thread,
// and convertible to a wall-clock date for display.

import { expect, test } from "bun:test";
import { MONO_OFFSET_MS, monoNow, setMonoClockForTests, wallOf } from "../../src/clock.ts";

test("monoNow: integers above the offset that never go backwards", async () => {
  let prev = monoNow();
  expect(Number.isInteger(prev)).toBe(true);
  expect(prev).toBeGreaterThan(MONO_OFFSET_MS);
  for (let i = 0; i < 10_000; i++) {
    const t = monoNow();
    expect(t).toBeGreaterThanOrEqual(prev);
    prev = t;
  }
  const a = monoNow();
  await Bun.sleep(50);
  expect(monoNow() - a).toBeGreaterThanOrEqual(45);
});

test("wallOf: a monotonic instant as a date; 0 stays 0 (never)", () => {
  const m = monoNow();
  expect(Math.abs(wallOf(m) - Date.now())).toBeLessThan(50);
  expect(Math.abs(wallOf(m - 60_000) - (Date.now() - 60_000))).toBeLessThan(50);
  expect(wallOf(0)).toBe(0);
});

test("wallOf: one instant is one date across calls, and a stepped wall clock is followed", () => {
  // A monotonic clock that moves 0.6 ms per read against a wall clock read at whole milliseconds:
  // recomputing the offset on every call would give the same instant a different date now and then.
  const base = monoNow();
  let reads = 0;
  setMonoClockForTests(() => base + Math.floor(0.6 * reads++));
  try {
    const m = base - 5000;
    const first = wallOf(m);
    for (let i = 0; i < 50; i++) expect(wallOf(m)).toBe(first);
    // The wall clock steps by 10 s (seen here as the monotonic clock jumping against it): dates follow.
    setMonoClockForTests(() => base - 10_000);
    expect(Math.abs(wallOf(base - 10_000) - Date.now())).toBeLessThan(50);
  } finally {
    setMonoClockForTests(null);
  }
});

test("a worker thread reads the same clock (the data plane's times are compared on the main thread)", async () => {
  const src = `import { monoNow } from ${JSON.stringify(new URL("../../src/clock.ts", import.meta.url).pathname)}; postMessage(monoNow());`;
  const url = URL.createObjectURL(new Blob([src], { type: "application/typescript" }));
  const before = monoNow();
  const w = new Worker(url);
  const theirs = await new Promise<number>((resolve) => (w.onmessage = (e) => resolve(e.data as number)));
  const after = monoNow();
  w.terminate();
  expect(theirs).toBeGreaterThanOrEqual(before);
  expect(theirs).toBeLessThanOrEqual(after);
});
