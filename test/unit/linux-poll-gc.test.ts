// The eventfd wake-up's 8-byte scratch must survive garbage collection: its address is a plain
// number, and once its buffer was collected, signalEventFd added whatever the freed memory held
// (a lost wake-up: a data-plane worker never took a command) and drainEventFd wrote into memory the
// allocator had reused (heap corruption: segfaults anywhere in the daemon).

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createEventFd, drainEventFd, signalEventFd } from "../../src/linux/poll.ts";
import { closeFd } from "../../src/linux/tun.ts";

function eventfdCount(fd: number): bigint {
  const m = /eventfd-count:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
  if (!m) throw new Error(`no eventfd-count in /proc/self/fdinfo/${fd}`);
  return BigInt(`0x${m[1]}`);
}

test("signalEventFd adds exactly 1 and drainEventFd resets, after the collector has run", () => {
  // Collect, and fill freed memory with other small buffers, several times over.
  let junk: ArrayBuffer[] = [];
  for (let round = 0; round < 30; round++) {
    Bun.gc(true);
    for (let i = 0; i < 2000; i++) {
      const b = new ArrayBuffer(16);
      new Uint32Array(b).fill(0xdeadbeef);
      junk.push(b);
    }
    if (junk.length > 20_000) junk = [];
  }
  Bun.gc(true);
  const fd = createEventFd();
  try {
    for (let i = 1; i <= 3; i++) {
      signalEventFd(fd);
      expect(eventfdCount(fd)).toBe(BigInt(i));
    }
    expect(drainEventFd(fd)).toBe(true);
    expect(eventfdCount(fd)).toBe(0n);
    expect(drainEventFd(fd)).toBe(false);
  } finally {
    closeFd(fd);
  }
});
