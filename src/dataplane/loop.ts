// One data-plane thread's poll loop: waits on the TUN, the UDP socket and a wake-up eventfd, and moves
// packets through its packet path (src/dataplane/path.ts) in bounded bursts. The worker
// (src/dataplane/worker.ts) runs it over the real fds until it stops; the warm-up
// (src/dataplane/warmup.ts) runs it first over private paths, one packet at a time, so this code —
// not only the path's — is compiled before the first real packet.

import type { Aead } from "../crypto/aead.ts";
import { Poller, drainEventFd, signalEventFd } from "../linux/poll.ts";
import type { DataPath } from "./path.ts";
import { HEAP_KIB_RX, HEAP_KIB_TX, HEARTBEAT_RX, HEARTBEAT_TX, NC, TUN_SPLIT, type TableViews } from "./tables.ts";

/**
 * Two workers share the TUN by traffic (misc[TUN_SPLIT]). While traffic is light the RX worker reads
 * it too: a reply the kernel queues on the TUN while the RX worker writes the request leaves on the
 * same, already running thread, instead of waking a sleeping one (waking an idle vCPU cost ~100 µs
 * on the benchmark VM, an eighth of a ping's round trip). A TUN burst of HEAVY_BURST_BYTES hands the TUN to the TX worker
 * (bulk traffic gets both threads); the TX worker hands it back after a LIGHT_WINDOW_MS window in
 * which it read less than LIGHT_WINDOW_BYTES.
 */
const HEAVY_BURST_BYTES = 48 * 1024;
const LIGHT_WINDOW_MS = 200;
const LIGHT_WINDOW_BYTES = 1 << 20;
/**
 * A worker that woke for packets fewer than QUIET_WAKES times in a QUIET_WINDOW_MS window (keepalives
 * and probes, no bulk traffic) gives its buffers' memory back once (src/linux/memory.ts).
 */
const QUIET_WINDOW_MS = 10_000;
const QUIET_WAKES = 50;

export interface LoopOptions {
  path: DataPath;
  views: TableViews;
  /** The counter region the path's engine writes (its rx_packets tells whether a UDP burst delivered). */
  node: Float64Array;
  role: "tx" | "rx" | "both";
  tunFd: number;
  udpFd: number;
  /** This thread's wake-up eventfd (-1: none). */
  wakeFd: number;
  /** The other worker's wake-up eventfd, for handing the TUN over (-1: one worker). */
  otherWakeFd: number;
  aeads: readonly Aead[];
  /** Asked before each round; false ends the loop (the worker: until it stops; the warm-up: until its packet is back). */
  next: () => boolean;
  /** poll() timeout instead of the worker's own (the warm-up never waits: 0). */
  timeoutMs?: number;
}

/** Run rounds of poll() and bursts until o.next() says stop. */
export async function runLoop(o: LoopOptions): Promise<void> {
  const { path, views, node, role, tunFd, aeads } = o;
  // The RX thread watches the UDP socket, and with the TX thread shares the TUN by traffic (see
  // HEAVY_BURST_BYTES); one thread may do everything. Each also watches its wake-up eventfd.
  const fds: number[] = [];
  const tunIdx = fds.push(tunFd) - 1;
  const udpIdx = role !== "tx" ? fds.push(o.udpFd) - 1 : -1;
  const wakeIdx = fds.push(o.wakeFd) - 1; // -1 (none): poll() skips it
  const split = role !== "both";
  const isTx = role === "tx"; // (only with two workers)
  const otherWakeFd = o.otherWakeFd;
  /** This thread reads the TUN now. */
  const readsTun = (): boolean => !split || (Atomics.load(views.misc, TUN_SPLIT) === 1) === isTx;
  // Per-peer counters have one writer at a time this way too: the thread that holds the TUN (the
  // handover flushes first), plus each engine's own queue of packets waiting for a session.
  const handTun = (toTx: boolean): void => {
    Atomics.store(views.misc, TUN_SPLIT, toTx ? 1 : 0);
    node[toTx ? NC.tun_handover_bulk : NC.tun_handover_light]!++;
    if (otherWakeFd >= 0) signalEventFd(otherWakeFd);
  };
  const poller = new Poller(fds);
  const eng = path.engine;
  // Idle memory: after a quiet window the big buffers (TUN read area, UDP slots, send groups, GRO
  // flows: ~3 MB per daemon once a burst has touched them) are given back; the next packets fault in
  // the pages they need. Released once per quiet spell: a busy window arms it again.
  let windowStart = performance.now();
  let windowWakes = 0;
  let released = false;
  const heartbeat = role === "rx" ? HEARTBEAT_RX : HEARTBEAT_TX;
  const heapSlot = role === "rx" ? HEAP_KIB_RX : HEAP_KIB_TX;
  let heapReportAt = 0;
  let tunWindowStart = windowStart;
  let tunWindowBytes = 0;
  /** One burst from the TUN, sent; bulk (a burst of HEAVY_BURST_BYTES) moves the TUN to the TX thread. */
  const onTun = (): void => {
    windowWakes++;
    const bytes = path.readTun();
    path.flush();
    if (isTx) tunWindowBytes += bytes;
    else if (split && bytes >= HEAVY_BURST_BYTES) handTun(true);
  };
  while (o.next()) {
    // Sent everything: set the next nonces up now, so the next packet after a sleep skips it.
    for (let i = 0; i < aeads.length; i++) aeads[i]!.prime();
    Atomics.add(views.misc, heartbeat, 1);
    let mine = readsTun();
    poller.setFd(tunIdx, mine && !path.tunDead() ? tunFd : -1);
    // Commands wake the loop through the eventfd; the timeout only bounds how stale the clock gets
    // (and, while the TX thread reads the TUN, how late it notices that traffic went light).
    const n = poller.wait(o.timeoutMs ?? (isTx && mine ? LIGHT_WINDOW_MS : 1000));
    eng.tick();
    const t = performance.now();
    if (isTx && (!mine || t - tunWindowStart >= LIGHT_WINDOW_MS)) {
      // The window starts when this thread takes the TUN over; a light one hands it back.
      if (mine && tunWindowBytes < LIGHT_WINDOW_BYTES) {
        handTun(false);
        mine = false; // whatever is queued now is the RX thread's: never read by both (reordering)
      }
      tunWindowStart = t;
      tunWindowBytes = 0;
    }
    if (t >= heapReportAt) {
      // This thread's own heap (each worker is a separate JS heap), for `vine status`.
      heapReportAt = t + 2000;
      Atomics.store(views.misc, heapSlot, Math.round(process.memoryUsage().heapUsed / 1024));
    }
    if (t - windowStart >= QUIET_WINDOW_MS) {
      if (windowWakes >= QUIET_WAKES) released = false;
      else if (!released) {
        path.releaseIdle();
        released = true;
      }
      windowStart = t;
      windowWakes = 0;
    }
    // One bounded burst per fd per round, then back to poll(): a steady flood of packets must
    // never keep the loop from yielding to its event loop, where commands (new keypairs, routes)
    // arrive — starving them turned one slow handshake into a storm.
    if (n > 0) {
      if (mine && poller.readable(tunIdx)) onTun();
      if (udpIdx >= 0 && poller.readable(udpIdx)) {
        windowWakes++;
        const delivered = node[NC.rx_packets]!;
        path.receiveUdp();
        // What the kernel answered while we wrote to the TUN is queued there now: send it in this
        // wake-up rather than in the next round of poll().
        if (mine && node[NC.rx_packets] !== delivered) onTun();
        else path.flush(); // relay forwards
      }
    }
    if (n <= 0 || poller.readable(wakeIdx)) {
      if (poller.readable(wakeIdx)) drainEventFd(o.wakeFd);
      // Let queued messages from the main thread in (a "flush" command sends queued packets).
      await new Promise<void>((r) => setImmediate(r));
      path.flush();
    }
  }
}
