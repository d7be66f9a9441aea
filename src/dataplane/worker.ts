// The data-plane worker: moves packets between the TUN device and the UDP socket.
//
// It blocks in poll() on three fds — TUN, UDP and a wake-up eventfd — so it never stalls the main
// thread's event loop, and reads each fd until EAGAIN (in bounded bursts, so neither direction
// starves the other). Commands from the main thread arrive as messages; the main thread signals
// the eventfd after posting, and the loop yields to the worker's event loop to receive them.

import { ptr } from "bun:ffi";
import { libc, errno, EAGAIN, EINTR } from "../../ffi/libc.ts";
import { Poller, drainEventFd } from "../linux/poll.ts";
import { UdpIo } from "../linux/udp.ts";
import { createAead } from "../crypto/aead.ts";
import { HEADROOM, PacketEngine, TAILROOM } from "./engine.ts";
import { TableViews, WORKER_READY, type SharedTables, type WorkerCommand, type WorkerEvent } from "./tables.ts";

declare const self: Worker;

export interface WorkerInit {
  tables: SharedTables;
  tunFd: number;
  udpFd: number;
  wakeFd: number;
  mtu: number;
  aead?: "libcrypto" | "noble";
}

const BURST = 64; // packets per fd before looking at the other one

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
  const views = new TableViews(init.tables);
  const aead = createAead(init.aead);

  // TUN packets are read straight into UDP send slots, with headroom for the WireGuard (and relay)
  // headers in front, encrypted in place, and sent together with one sendmmsg per burst.
  const slotSize = HEADROOM + Math.max(init.mtu, 1500) + TAILROOM + 64;
  const udp = new UdpIo(init.udpFd, { batch: BURST, bufSize: slotSize });
  const readMax = slotSize - HEADROOM - TAILROOM;
  let txSlot: Uint8Array | null = null;
  let txIndex = -1;
  const tunFd = init.tunFd;
  const tunWrite = (buf: Uint8Array, off: number, len: number): boolean => {
    const n = Number(libc.write(tunFd, ptrOf(buf) + off, len));
    return n === len;
  };
  // Buffers handed to the engine are UDP slots (one ArrayBuffer) or the engine's own: cache their pointers.
  const ptrCache = new WeakMap<ArrayBufferLike, number>();
  function ptrOf(buf: Uint8Array): number {
    let p = ptrCache.get(buf.buffer);
    if (p === undefined) {
      p = ptr(buf.buffer as ArrayBuffer);
      ptrCache.set(buf.buffer, p);
    }
    return p + buf.byteOffset;
  }

  engine = new PacketEngine(
    views,
    aead,
    {
      sendUdp: (buf, off, len, ip, port) => {
        if (buf === txSlot) {
          udp.queue(txIndex, len, ip, port, off);
          return true;
        }
        return udp.sendTo(buf, off, len, ip, port);
      },
      writeTun: tunWrite,
      emit,
    },
    init.mtu,
  );
  for (const c of pendingCommands.splice(0)) engine.command(c);

  const poller = new Poller([tunFd, init.udpFd, init.wakeFd]);
  Atomics.store(views.misc, WORKER_READY, 1);
  emit({ ev: "ready" });

  const eng = engine;
  while (!stopping) {
    const n = poller.wait(200);
    eng.tick();
    if (n > 0) {
      let more = true;
      // Alternate bursts until both fds are drained.
      while (more) {
        more = false;
        if (poller.readable(0)) {
          for (let i = 0; i < BURST; i++) {
            const slot = udp.sendSlot(i);
            const r = Number(libc.read(tunFd, ptrOf(slot) + HEADROOM, readMax));
            if (r <= 0) {
              if (r < 0) {
                const e = errno();
                if (e !== EAGAIN && e !== EINTR) emit({ ev: "error", message: `tun read failed: errno ${e}` });
              }
              break;
            }
            txSlot = slot;
            txIndex = i;
            eng.fromTun(slot, HEADROOM, r);
            if (i === BURST - 1) more = true;
          }
          txSlot = null;
          if (udp.pending > 0) udp.flush();
        }
        if (poller.readable(1)) {
          const got = udp.recvBatch();
          for (let i = 0; i < got; i++) {
            eng.fromUdp(udp.slot(i), 0, udp.lengths[i]!, udp.srcIp[i]!, udp.srcPort[i]!);
          }
          if (got === BURST) more = true;
        }
      }
    }
    if (n < 0 || poller.readable(2) || n === 0) {
      if (poller.readable(2)) drainEventFd(init.wakeFd);
      // Let queued messages from the main thread in.
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  emit({ ev: "stopped" } as unknown as WorkerEvent);
}
