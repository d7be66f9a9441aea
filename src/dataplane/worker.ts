// The data-plane worker: moves packets between the TUN device and the UDP socket.
//
// It blocks in poll() on three fds — TUN, UDP and a wake-up eventfd — so it never stalls the main
// thread's event loop, and reads each fd until EAGAIN (in bounded bursts, so neither direction
// starves the other). Commands from the main thread arrive as messages; the main thread signals
// the eventfd after posting, and the loop yields to the worker's event loop to receive them.

import { ptr } from "bun:ffi";
import { libc, errno, EAGAIN, EINTR } from "../../ffi/libc.ts";
import { Poller, drainEventFd, signalEventFd } from "../linux/poll.ts";
import { releasePages } from "../linux/memory.ts";
import { UdpIo } from "../linux/udp.ts";
import { createAeads } from "../crypto/aead.ts";
import { HEADROOM, PacketEngine, TAILROOM } from "./engine.ts";
import { TcpCoalescer } from "./gro.ts";
import { SendGroups } from "./send-groups.ts";
import { completeChecksum, splitTcp4, splitUdp4, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, VnetHeader } from "./tso.ts";
import { HEAP_KIB_RX, HEAP_KIB_TX, HEARTBEAT_RX, HEARTBEAT_TX, NC, TUN_SPLIT, REGION_RX, REGION_TX, TableViews, WORKER_READY, type SharedTables, type WorkerCommand, type WorkerEvent } from "./tables.ts";

declare const self: Worker;

export interface WorkerInit {
  /** "tx": TUN → UDP; "rx": UDP → TUN (and relay forwarding); "both": one thread for everything. */
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

const BURST = 64; // packets per fd before looking at the other one
const RX_GRO_SLOTS = 16; // 64 KiB receive slots with UDP_GRO (each holds up to 64 datagrams)
const BURST_BYTES = 1 << 20; // ... or this many bytes read from the TUN (TSO super-packets are 64 KiB)
const GROUPS = 16; // GSO send groups per burst (a burst of TSO reads can fill more: they flush early)
const RX_GROUPS = 8; // the RX thread sends relay forwards, and what it reads from the TUN while traffic is light
/**
 * Two workers share the TUN by traffic (misc[TUN_SPLIT]). While traffic is light the RX worker reads
 * it too: a reply the kernel queues on the TUN while the RX worker writes the request leaves on the
 * same, already running thread, instead of waking a sleeping one (a wake-up of an idle vCPU costs
 * ~100 µs here, a quarter of a ping). A TUN burst of HEAVY_BURST_BYTES hands the TUN to the TX worker
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
  const node = views.nodeRegion(role === "rx" ? REGION_RX : REGION_TX);
  const vnet = init.vnetHdr === true;

  // Buffers handed to the engine are this thread's own (the TX arena, UDP slots, the engine's queue
  // buffer): their base pointers are taken once per ArrayBuffer and cached.
  const ptrCache = new WeakMap<ArrayBufferLike, number>();
  function ptrOf(buf: Uint8Array): number {
    let p = ptrCache.get(buf.buffer);
    if (p === undefined) {
      p = ptr(buf.buffer as ArrayBuffer);
      ptrCache.set(buf.buffer, p);
    }
    return p + buf.byteOffset;
  }
  const memcpy = (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number): void => {
    libc.memcpy(ptrOf(dst) + dstOff, ptrOf(src) + srcOff, n);
  };

  // TX arena, one ArrayBuffer: a segment area (TSO super-packets are cut into segments there) and
  // the TUN read area. Packets start at 4-aligned offsets with HEADROOM free before them (WireGuard
  // and relay headers are written in place) and TAILROOM after; aligned TCP headers let checksums
  // sum 32-bit words.
  const SEG_AT = 68;
  const READ_AT = 2048 + 68;
  const readMax = vnet ? VNET_HDR_LEN + 65535 : Math.max(init.mtu, 1500);
  const arena = new Uint8Array(new ArrayBuffer((READ_AT + readMax + TAILROOM + 64 + 7) & ~7));
  const arenaWords = new Uint32Array(arena.buffer);
  const vh = new VnetHeader();

  // Datagrams leave in GSO send groups (src/dataplane/send-groups.ts): the TX thread's encrypted
  // packets, and the RX thread's relay forwards. Each thread flushes its groups at the end of a burst.
  const groups = new SendGroups(
    init.udpFd,
    role === "rx" ? RX_GROUPS : GROUPS,
    memcpy,
    (e) => emit({ ev: "error", message: `UDP GSO refused (errno ${e}); sending one datagram per packet` }),
    process.env.VINE_GSO !== "0",
  );
  const flushGroups = (): void => {
    groups.flush();
    const lost = groups.takeLost();
    if (lost > 0) node[NC.drop_udp_send]! += lost;
  };
  const sendGrouped = (buf: Uint8Array, off: number, len: number, ip: number, port: number): boolean => {
    groups.add(buf, off, len, ip, port);
    return true;
  };

  // TUN writes. With IFF_VNET_HDR every packet is preceded by a virtio_net_hdr: a single packet gets
  // a zero header written just before it (over the transport header it was decrypted behind), and
  // TCP segments of one flow are merged into super-packets first (src/dataplane/gro.ts).
  const tunFd = init.tunFd;
  const tunWriteRaw = (buf: Uint8Array, off: number, len: number): boolean => Number(libc.write(tunFd, ptrOf(buf) + off, len)) === len;
  const tunWriteSingle = (buf: Uint8Array, off: number, len: number): boolean => {
    const h = off - VNET_HDR_LEN;
    for (let i = 0; i < VNET_HDR_LEN; i++) buf[h + i] = 0;
    return tunWriteRaw(buf, h, len + VNET_HDR_LEN);
  };
  const gro =
    vnet && role !== "tx" && process.env.VINE_GRO !== "0"
      ? new TcpCoalescer(
          (buf, off, len) => {
            if (tunWriteRaw(buf, off, len)) return true;
            node[NC.drop_tun_write]!++;
            return false;
          },
          memcpy,
          tunWriteSingle,
        )
      : null;
  if (gro !== null) gro.udp = init.uso === true && process.env.VINE_GRO_UDP !== "0";
  const tunWrite = gro !== null ? (buf: Uint8Array, off: number, len: number) => gro.add(buf, off, len) : vnet ? tunWriteSingle : tunWriteRaw;

  // RX: received datagrams land in their own slots and are decrypted in place. With UDP_GRO
  // (VINE_UDP_GRO=0 turns it off) the kernel hands over runs of same-sized datagrams from one sender
  // in one slot (the peer's GSO sends arrive that way): fewer, larger receives. Only the receiving
  // thread has receive buffers.
  const udpGro = role !== "tx" && process.env.VINE_UDP_GRO !== "0";
  const rx = new UdpIo(init.udpFd, {
    batch: role === "tx" ? 1 : udpGro ? RX_GRO_SLOTS : BURST,
    bufSize: role === "tx" ? 8 : udpGro ? 65536 : 2048 + HEADROOM,
    gro: udpGro,
    recv: role !== "tx",
    send: false,
  });

  engine = new PacketEngine(
    views,
    aeads,
    {
      sendUdp: sendGrouped,
      writeTun: tunWrite,
      emit,
    },
    init.mtu,
    role === "rx" ? REGION_RX : REGION_TX,
  );
  for (const c of pendingCommands.splice(0)) engine.command(c);

  // The RX thread watches the UDP socket, and with the TX thread shares the TUN by traffic (see
  // HEAVY_BURST_BYTES); one thread may do everything. Each also watches its wake-up eventfd.
  const fds: number[] = [];
  const tunIdx = fds.push(tunFd) - 1;
  const udpIdx = role !== "tx" ? fds.push(init.udpFd) - 1 : -1;
  const wakeIdx = fds.push(init.wakeFd) - 1;
  const split = role !== "both";
  const otherWakeFd = init.otherWakeFd ?? -1;
  let tunDead = false;
  /** This thread reads the TUN now. */
  const readsTun = (): boolean => !split || (Atomics.load(views.misc, TUN_SPLIT) === 1) === (role === "tx");
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
  emit({ ev: "ready" });

  const eng = engine;
  const readPtr = ptrOf(arena) + READ_AT - (vnet ? VNET_HDR_LEN : 0);
  const readLen = readMax;
  const emitSegment = (buf: Uint8Array, off: number, len: number): void => eng.fromTun(buf, off, len);
  /** One bounded burst of TUN reads, each packet (or each segment of a super-packet) to the engine; returns the bytes read. */
  const readTun = (): number => {
    let bytes = 0;
    for (let i = 0; i < BURST && bytes < BURST_BYTES; i++) {
      const r = Number(libc.read(tunFd, readPtr, readLen));
      if (r <= 0) {
        if (r < 0) {
          const e = errno();
          if (e !== EAGAIN && e !== EINTR) {
            emit({ ev: "error", message: `tun read failed: errno ${e}` });
            // The device is gone (deleted, or the fd broken): poll would report it readable forever
            // and this loop would spin. Stop watching it; the main thread reports it once.
            if (e === 5 || e === 9 || e === 19 || e === 77) tunDead = true;
          }
        }
        return bytes;
      }
      bytes += r;
      if (!vnet) {
        eng.fromTun(arena, READ_AT, r);
        continue;
      }
      const n = r - VNET_HDR_LEN;
      if (n <= 0) continue;
      vh.read(arena, READ_AT - VNET_HDR_LEN);
      if (vh.gsoType === VNET_GSO_NONE) {
        if ((vh.flags & VNET_F_NEEDS_CSUM) !== 0 && !completeChecksum(arena, READ_AT, n, vh, arenaWords)) {
          node[NC.drop_malformed]!++;
          continue;
        }
        eng.fromTun(arena, READ_AT, n);
      } else if (arena[READ_AT]! >> 4 !== 4) {
        node[NC.drop_not_ipv4]!++; // an IPv6 UDP super-packet (USO covers both versions)
      } else if (vh.gsoType === VNET_GSO_TCPV4 || vh.gsoType === VNET_GSO_UDP_L4) {
        const split = vh.gsoType === VNET_GSO_TCPV4 ? splitTcp4 : splitUdp4;
        if (split(arena, READ_AT, n, vh, SEG_AT, arenaWords, emitSegment) < 0) node[NC.drop_malformed]!++;
        else node[NC.tso_superpackets_in]!++;
      } else {
        node[NC.drop_not_ipv4]!++; // TSO6 is not enabled: nothing else should arrive
      }
    }
    return bytes;
  };
  // Idle memory: after a quiet window the big buffers (TUN read area, UDP slots, send groups, GRO
  // flows: ~3 MB per daemon once a burst has touched them) are given back; the next packets fault in
  // the pages they need. Released once per quiet spell: a busy window arms it again.
  let windowStart = performance.now();
  let windowWakes = 0;
  let released = false;
  const releaseBuffer = (b: Uint8Array): number => releasePages(ptrOf(b), b.length);
  const releaseIdleBuffers = (): void => {
    releaseBuffer(arena);
    rx.releaseData();
    groups.releaseData();
    gro?.releaseData(releaseBuffer);
  };
  const heartbeat = role === "rx" ? HEARTBEAT_RX : HEARTBEAT_TX;
  const heapSlot = role === "rx" ? HEAP_KIB_RX : HEAP_KIB_TX;
  let heapReportAt = 0;
  let tunWindowStart = windowStart;
  let tunWindowBytes = 0;
  while (!stopping) {
    Atomics.add(views.misc, heartbeat, 1);
    let mine = readsTun();
    poller.setFd(tunIdx, mine && !tunDead ? tunFd : -1);
    // Commands wake the loop through the eventfd; the timeout only bounds how stale the clock gets
    // (and, while the TX thread reads the TUN, how late it notices that traffic went light).
    const n = poller.wait(split && role === "tx" && mine ? LIGHT_WINDOW_MS : 1000);
    eng.tick();
    const t = performance.now();
    if (split && role === "tx" && (!mine || t - tunWindowStart >= LIGHT_WINDOW_MS)) {
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
        releaseIdleBuffers();
        released = true;
      }
      windowStart = t;
      windowWakes = 0;
    }
    // One bounded burst per fd per round, then back to poll(): a steady flood of packets must
    // never keep the loop from yielding to its event loop, where commands (new keypairs, routes)
    // arrive — starving them turned one slow handshake into a storm.
    if (n > 0) {
      if (mine && poller.readable(tunIdx)) {
        windowWakes++;
        const bytes = readTun();
        flushGroups();
        if (role === "tx") tunWindowBytes += bytes;
        else if (split && bytes >= HEAVY_BURST_BYTES) handTun(true);
      }
      if (udpIdx >= 0 && poller.readable(udpIdx)) {
        windowWakes++;
        const got = rx.recvBatch();
        for (let i = 0; i < got; i++) {
          const len = rx.lengths[i]!;
          const seg = rx.segmentSize[i]!;
          if (seg > 0 && seg < len) {
            // A GRO run: datagrams of `seg` bytes back to back (the last may be shorter).
            const slot = rx.slot(i);
            for (let o = 0; o < len; o += seg) eng.fromUdp(slot, o, Math.min(seg, len - o), rx.srcIp[i]!, rx.srcPort[i]!);
          } else eng.fromUdp(rx.slot(i), 0, len, rx.srcIp[i]!, rx.srcPort[i]!);
        }
        gro?.flushAll();
        flushGroups(); // relay forwards
        if (gro !== null && gro.merged > 0) {
          node[NC.gro_superpackets_out]! += gro.merged;
          node[NC.gro_segments_merged]! += gro.mergedSegments;
          gro.merged = 0;
          gro.mergedSegments = 0;
        }
      }
    }
    if (n <= 0 || poller.readable(wakeIdx)) {
      if (poller.readable(wakeIdx)) drainEventFd(init.wakeFd);
      // Let queued messages from the main thread in (a "flush" command sends queued packets).
      await new Promise<void>((r) => setImmediate(r));
      flushGroups();
    }
  }
  emit({ ev: "stopped" });
}
