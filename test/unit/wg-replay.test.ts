// Replay window (8192 bits like wireguard-go's): in order, out of order within the window,
// duplicates, too old, far jumps, window edges, the counter limit, shared storage.

import { expect, test } from "bun:test";
import { REJECT_COUNTER, ReplayWindow, WINDOW_BITS, WINDOW_SIZE, WINDOW_WORDS } from "../../src/wg/replay.ts";

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

test("check() has no side effect: storage and later answers are unchanged", () => {
  const storage = new Uint32Array(WINDOW_WORDS);
  const w = new ReplayWindow(storage);
  for (const c of [0, 1, 2, 100, 20_000]) w.accept(c);
  const snapshot = storage.slice();
  for (const c of [0, 3, 99, 100, 19_000, 20_000, 20_001, 10_000_000, 20_000 - WINDOW_SIZE, -1, NaN, REJECT_COUNTER]) {
    expect(w.check(c)).toBe(w.check(c));
  }
  expect([...storage]).toEqual([...snapshot]);
  // A far-ahead check did not move the window: old counters inside it are still acceptable.
  expect(w.accept(19_000)).toBe(true);
  expect(w.accept(20_000 - WINDOW_SIZE + 1)).toBe(true);
  expect(w.accept(20_000 - WINDOW_SIZE)).toBe(false);
  expect(w.accept(20_000)).toBe(false);
  expect(w.accept(20_001)).toBe(true);
});

test("wrap of the ring: many revolutions of in-order and slightly reordered traffic", () => {
  const w = new ReplayWindow();
  const ring = WINDOW_WORDS * 32;
  let accepted = 0;
  // Pairs delivered swapped (c+1 before c) for 10 revolutions of the ring.
  for (let c = 0; c < 10 * ring; c += 2) {
    if (w.accept(c + 1)) accepted++;
    if (w.accept(c)) accepted++;
    if (c % 997 === 0) expect(w.accept(c)).toBe(false);
  }
  expect(accepted).toBe(10 * ring);
  // Counters exactly one ring behind share the slot with fresh ones and are too old.
  const top = 10 * ring - 1;
  expect(w.check(top - ring)).toBe(false);
  expect(w.check(top - WINDOW_SIZE + 1)).toBe(false); // seen
});

test("random operations agree with a reference model (a set of seen counters and the window rule)", () => {
  for (let run = 0; run < 4; run++) {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let last = -1;
    let cur = 0;
    for (let i = 0; i < 40_000; i++) {
      const r = Math.random();
      let c: number;
      if (r < 0.5) c = cur + Math.floor(Math.random() * 4); // in order, small gaps
      else if (r < 0.75) c = cur - Math.floor(Math.random() * (WINDOW_SIZE + 64)); // behind, around the edge
      else if (r < 0.85) c = cur - WINDOW_SIZE + Math.floor(Math.random() * 3) - 1; // at the edge exactly
      else if (r < 0.95) c = [...seen][Math.floor(Math.random() * Math.min(seen.size, 50))] ?? 0; // duplicates
      else c = cur + Math.floor(Math.random() * 3 * WINDOW_BITS); // jumps, up to several revolutions
      const expected = c >= 0 && c < REJECT_COUNTER && (c > last || (last - c < WINDOW_SIZE && !seen.has(c)));
      expect(w.check(c)).toBe(expected);
      expect(w.accept(c)).toBe(expected);
      if (expected) {
        seen.add(c);
        if (c > last) last = c;
      }
      cur = Math.max(cur, c);
      if (seen.size > 20_000) for (const x of seen) if (last - x >= WINDOW_SIZE) seen.delete(x); // keep the model small
    }
  }
});
