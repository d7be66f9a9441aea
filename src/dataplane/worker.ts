// The data-plane worker: moves packets between the TUN device and the UDP socket.
//
// It blocks in poll() on up to three fds — TUN, UDP and a wake-up eventfd — so it never stalls the
// main thread's event loop, and reads each fd until EAGAIN (in bounded bursts, so neither direction
// starves the other) through its packet path (src/dataplane/path.ts). Commands from the main thread
// arrive as messages; the main thread signals the eventfd after posting, and the loop yields to the
// worker's event loop to receive them.

import { Poller, drainEventFd, signalEventFd } from "../linux/poll.ts";
import { createAeads } from "../crypto/aead.ts";
import type { PacketEngine } from "./engine.ts";
import { openPath } from "./path.ts";
import { warmUp } from "./warmup.ts";
import { HEAP_KIB_RX, HEAP_KIB_TX, HEARTBEAT_RX, HEARTBEAT_TX, NC, TUN_SPLIT, REGION_RX, REGION_TX, TableViews, WORKER_READY, type SharedTables, type WorkerCommand, type WorkerEvent } from "./tables.ts";

declare const self: Worker;

export interface WorkerInit {
  /** "tx": TUN → UDP under bulk traffic; "rx": UDP → TUN, relay forwarding, and TUN → UDP while traffic is light; "both": one thread for everything. */
  role: "tx" | "rx" | "both";
  tables: SharedTables;
  tunFd: number;
  udpFd: number;
  wakeFd: number;
  /** The other worker's wake-up eventfd (two workers), for handing the TUN over; -1 with one. */
  otherWakeFd?: number;
  mtu: number;
  aead?: "libcrypto" | "noble";
  /** The TUN was opened with IFF_VNET_HDR: reads and writes carry a virtio_net_hdr (offloads). */
  vnetHdr?: boolean;
  /** The TUN accepted TUN_F_USO4|USO6: UDP super-packets may be read, and merged UDP may be written. */
  uso?: boolean;
}

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

let engine: PacketEngine | null = null;
let stopping = false;
const pendingCommands: WorkerCommand[] = [];

function emit(ev: WorkerEvent): void {
  postMessage(ev);
}

self.onmessage = (e: MessageEvent) => {
  const msg = e.data as { init?: WorkerInit } & WorkerCommand;
  if (msg.init) {
    start(msg.init).catch((err) => emit({ ev: "error", message: String(err?.stack ?? err) }));
    return;
  }
  if (msg.op === "stop") stopping = true;
  if (engine) engine.command(msg);
  else pendingCommands.push(msg);
};

async function start(init: WorkerInit): Promise<void> {
  // The hot path: normal JIT tier-up, whatever the main thread chose for itself (src/daemon/daemon.ts).
  Bun.unsafe.setJITPolicy(1);
  const views = new TableViews(init.tables);
  const role = init.role;
  const aeads = createAeads(init.aead);
  const region = role === "rx" ? REGION_RX : REGION_TX;
  const node = views.nodeRegion(region);
  const vnet = init.vnetHdr === true;
  const uso = init.uso === true;
  const tunFd = init.tunFd;
  // Light traffic runs on the RX thread (or the only one): its packet path is compiled before the
  // first real packet (src/dataplane/warmup.ts). Bulk traffic, the TX thread's, warms its own.
  const warmup = role !== "tx" && process.env.VINE_WARMUP !== "0" ? warmUp({ aeads, mtu: init.mtu, vnet, uso }) : undefined;
  const path = openPath({ role, tunFd, udpFd: init.udpFd, views, region, aeads, mtu: init.mtu, vnet, uso, emit });
  engine = path.engine;
  for (const c of pendingCommands.splice(0)) engine.command(c);

  // The RX thread watches the UDP socket, and with the TX thread shares the TUN by traffic (see
  // HEAVY_BURST_BYTES); one thread may do everything. Each also watches its wake-up eventfd.
  const fds: number[] = [];
  const tunIdx = fds.push(tunFd) - 1;
  const udpIdx = role !== "tx" ? fds.push(init.udpFd) - 1 : -1;
  const wakeIdx = fds.push(init.wakeFd) - 1;
  const split = role !== "both";
  const isTx = role === "tx"; // (only with two workers)
  const otherWakeFd = init.otherWakeFd ?? -1;
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
  // Setup garbage (module loading, engine construction) goes now, not at the first GC under traffic.
  Bun.gc(true);
  Atomics.store(views.misc, WORKER_READY, 1);
  emit({ ev: "ready", warmup });

  const eng = engine;
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
  while (!stopping) {
    // Sent everything: set the next nonces up now, so the next packet after a sleep skips it.
    for (let i = 0; i < aeads.length; i++) aeads[i]!.prime();
    Atomics.add(views.misc, heartbeat, 1);
    let mine = readsTun();
    poller.setFd(tunIdx, mine && !path.tunDead() ? tunFd : -1);
    // Commands wake the loop through the eventfd; the timeout only bounds how stale the clock gets
    // (and, while the TX thread reads the TUN, how late it notices that traffic went light).
    const n = poller.wait(isTx && mine ? LIGHT_WINDOW_MS : 1000);
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
      if (poller.readable(wakeIdx)) drainEventFd(init.wakeFd);
      // Let queued messages from the main thread in (a "flush" command sends queued packets).
      await new Promise<void>((r) => setImmediate(r));
      path.flush();
    }
  }
  emit({ ev: "stopped" });
}
