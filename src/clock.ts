// The daemon's clock for timers, and its conversion to wall-clock dates.
//
// Every duration, timeout and timer in the daemon (handshake retries, rekeys, keepalives, path probes,
// rate limits, idle flushes) reads monoNow(): CLOCK_BOOTTIME through libc, which only moves forward
// and also counts time spent suspended (as WireGuard's timers do). A wall-clock step — NTP stepping
// the clock, an RTC reset, `date -s` — never moves it, so it can neither fire every timer at once
// (a jump forward) nor freeze them until the wall clock catches up (a jump back).
//
// The clock is shared by every thread of the process (the data-plane workers write last-rx/last-tx
// times the control plane compares with its own), which Bun.nanoseconds() and performance.now() are
// not: both count from the calling thread's start. It reads in milliseconds (integers), offset by
// MONO_OFFSET_MS so that no reading is ever close to 0, which many fields use for "never".
//
// Date.now() stays what it is for: dates that are shown or stored (events, last handshake, snapshots),
// and timestamps that travel in protocols (TAI64N in handshake initiations, signed claims).

import { ptr } from "bun:ffi";
import { libc } from "../ffi/libc.ts";

const CLOCK_BOOTTIME = 7;
export const MONO_OFFSET_MS = 1e12;

// struct timespec { time_t tv_sec; long tv_nsec; }: 16 bytes on 64-bit Linux. The buffer stays
// reachable from `ts` (a pointer is a plain number; see src/linux/poll.ts).
const ts = { buffer: new ArrayBuffer(16), words: new Uint32Array(0), p: 0 };
ts.words = new Uint32Array(ts.buffer);
ts.p = ptr(ts.buffer);

let fake: (() => number) | null = null;

/** Tests only: drive monoNow() from a simulated clock (null: the real one again). */
export function setMonoClockForTests(fn: (() => number) | null): void {
  fake = fn;
}

/** Monotonic milliseconds (an integer): for durations and timers only, never shown as a date. */
export function monoNow(): number {
  if (fake !== null) return fake();
  if (libc.clock_gettime(CLOCK_BOOTTIME, ts.p) !== 0) throw new Error("clock_gettime(CLOCK_BOOTTIME) failed");
  const w = ts.words;
  return MONO_OFFSET_MS + (w[0]! + w[1]! * 4294967296) * 1000 + Math.floor(w[2]! / 1e6);
}

// Wall clock minus monotonic clock, kept while it holds: two clock reads a moment apart differ by a
// millisecond now and then, and the same instant must not show as two dates (`vine sessions` called
// twice). A difference beyond WALL_STEP_MS is the wall clock being stepped: the display follows it.
let wallOffset: number | null = null;
const WALL_STEP_MS = 1000;

/** The wall-clock time (Date.now() scale) of monotonic instant `mono`, for display; 0 stays 0 ("never"). */
export function wallOf(mono: number): number {
  if (!mono) return 0;
  const offset = Date.now() - monoNow();
  if (wallOffset === null || Math.abs(offset - wallOffset) > WALL_STEP_MS) wallOffset = offset;
  return mono + wallOffset;
}
