// eventfd and Poller: no privileges needed.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { POLLOUT } from "../../ffi/libc.ts";
import { Poller, createEventFd, drainEventFd, signalEventFd } from "../../src/linux/poll.ts";
import { closeFd } from "../../src/linux/tun.ts";

describe("eventfd", () => {
  test("signal makes it readable; drain resets it", () => {
    const fd = createEventFd();
    try {
      expect(drainEventFd(fd)).toBe(false);
      signalEventFd(fd);
      signalEventFd(fd);
      expect(drainEventFd(fd)).toBe(true);
      expect(drainEventFd(fd)).toBe(false);
    } finally {
      closeFd(fd);
    }
  });
});

describe("Poller", () => {
  test("times out with nothing ready, then reports exactly the ready entry", () => {
    const quiet = createEventFd();
    const loud = createEventFd();
    try {
      const poller = new Poller([quiet, loud]);
      const start = performance.now();
      expect(poller.wait(30)).toBe(0);
      expect(performance.now() - start).toBeGreaterThanOrEqual(25);
      expect(poller.readable(0) || poller.readable(1)).toBe(false);
      signalEventFd(loud);
      expect(poller.wait(1000)).toBe(1);
      expect(poller.readable(0)).toBe(false);
      expect(poller.readable(1)).toBe(true);
      drainEventFd(loud);
      expect(poller.wait(0)).toBe(0);
      expect(poller.readable(1)).toBe(false); // revents are cleared on every wait
      poller.watch(0, POLLOUT);
      expect(poller.wait(0)).toBe(1);
      expect(poller.writable(0)).toBe(true);
    } finally {
      closeFd(quiet);
      closeFd(loud);
    }
  });

  test("a Worker with its own libc wakes a poll on the main thread", async () => {
    const fd = createEventFd();
    const worker = new Worker(join(import.meta.dir, "../lib/fixtures/eventfd-worker.ts"));
    try {
      const reply = new Promise<{ signalled: number }>((resolve) => {
        worker.onmessage = (e) => resolve(e.data);
      });
      const poller = new Poller([fd]);
      worker.postMessage({ fd, times: 3 });
      // The main thread blocks in poll; only the worker's write can end it before the timeout.
      const start = performance.now();
      expect(poller.wait(10_000)).toBe(1);
      expect(performance.now() - start).toBeLessThan(10_000);
      expect(drainEventFd(fd)).toBe(true);
      expect((await reply).signalled).toBe(3);
    } finally {
      worker.terminate();
      closeFd(fd);
    }
  });
});
