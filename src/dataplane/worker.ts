// The data-plane worker: moves packets between the TUN device and the UDP socket.
//
// It sets up its packet path (src/dataplane/path.ts), warms it up (src/dataplane/warmup.ts) and runs
// the poll loop (src/dataplane/loop.ts): blocked in poll() on up to three fds — TUN, UDP and a wake-up
// eventfd — so it never stalls the main thread's event loop. Commands from the main thread arrive as
// messages; the main thread signals the eventfd after posting, and the loop yields to the worker's
// event loop to receive them.

import { createAeads } from "../crypto/aead.ts";
import type { PacketEngine } from "./engine.ts";
import { runLoop } from "./loop.ts";
import { openPath } from "./path.ts";
import { warmUp } from "./warmup.ts";
import { REGION_RX, REGION_TX, TableViews, WORKER_READY, type SharedTables, type WorkerCommand, type WorkerEvent } from "./tables.ts";

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
  // Light traffic runs on the RX thread (or the only one): its poll loop and packet path are compiled
  // before the first real packet (src/dataplane/warmup.ts). Bulk traffic, the TX thread's, warms its own.
  const warmup = role !== "tx" && process.env.VINE_WARMUP !== "0" ? await warmUp({ aeads, mtu: init.mtu, vnet, uso }) : undefined;
  const path = openPath({ role, tunFd, udpFd: init.udpFd, views, region, aeads, mtu: init.mtu, vnet, uso, emit });
  engine = path.engine;
  for (const c of pendingCommands.splice(0)) engine.command(c);

  // Setup garbage (module loading, engine construction) goes now, not at the first GC under traffic.
  Bun.gc(true);
  Atomics.store(views.misc, WORKER_READY, 1);
  emit({ ev: "ready", warmup });

  await runLoop({ path, views, node, role, tunFd, udpFd: init.udpFd, wakeFd: init.wakeFd, otherWakeFd: init.otherWakeFd ?? -1, aeads, next: () => !stopping });
  emit({ ev: "stopped" });
}
