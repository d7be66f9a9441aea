// Replay window (8192 bits like wireguard-go's): in order, out of order within the window,
// duplicates, too old, far jumps, window edges, the counter limit, shared storage.

import { expect, test } from "bun:test";
import { REJECT_COUNTER, ReplayWindow, WINDOW_SIZE, WINDOW_WORDS } from "../../src/wg/replay.ts";

test("in order: every counter once", () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 20_000; i++) expect(w.accept(i)).toBe(true);
  for (let i = 19_990; i < 20_000; i++) expect(w.accept(i)).toBe(false);
});

test("duplicates are refused, including counter 0", () => {
  const w = new ReplayWindow();
  expect(w.accept(0)).toBe(true);
  expect(w.accept(0)).toBe(false);
  expect(w.accept(5)).toBe(true);
  expect(w.check(5)).toBe(false);
  expect(w.accept(5)).toBe(false);
  expect(w.check(4)).toBe(true);
});

test("out of order within the window, at least 2048 back", () => {
  const w = new ReplayWindow();
  expect(w.accept(5000)).toBe(true);
  const order = Array.from({ length: 4000 }, (_, i) => 4999 - i).sort(() => Math.random() - 0.5);
  for (const c of order) expect(w.accept(c)).toBe(true);
  for (const c of order.slice(0, 100)) expect(w.accept(c)).toBe(false);
  expect(WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
});

test("window edge: WINDOW_SIZE - 1 back is accepted, WINDOW_SIZE back is too old", () => {
  const w = new ReplayWindow();
  const top = 100_000;
  expect(w.accept(top)).toBe(true);
  expect(w.check(top - WINDOW_SIZE)).toBe(false);
  expect(w.accept(top - WINDOW_SIZE)).toBe(false);
  expect(w.accept(top - WINDOW_SIZE + 1)).toBe(true);
  expect(w.accept(top - WINDOW_SIZE + 1)).toBe(false);
});

test("a far jump clears stale bits: old counters in reused ring slots are not mistaken for replays", () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 300; i++) w.accept(i);
  // Same ring positions one and many full revolutions later.
  const far = 300 + WINDOW_WORDS * 32;
  expect(w.accept(far)).toBe(true);
  for (let i = far - 200; i < far; i++) expect(w.accept(i)).toBe(true);
  expect(w.accept(10 * 2 ** 32 + 17)).toBe(true);
  expect(w.accept(10 * 2 ** 32 + 16)).toBe(true);
  expect(w.accept(far)).toBe(false); // far behind now
});

test("counters at or beyond the limit, negative or NaN are refused", () => {
  const w = new ReplayWindow();
  expect(w.accept(REJECT_COUNTER)).toBe(false);
  expect(w.accept(Infinity)).toBe(false);
  expect(w.accept(-1)).toBe(false);
  expect(w.accept(NaN)).toBe(false);
  expect(w.accept(REJECT_COUNTER - 1)).toBe(true);
});

test("reset forgets; caller-provided storage is used in place", () => {
  const storage = new Uint32Array(new SharedArrayBuffer(WINDOW_WORDS * 4));
  const w = new ReplayWindow(storage);
  w.accept(33);
  expect(storage[1]).toBe(2);
  w.reset();
  expect(storage[1]).toBe(0);
  expect(w.accept(33)).toBe(true);
  expect(() => new ReplayWindow(new Uint32Array(10))).toThrow();
});
