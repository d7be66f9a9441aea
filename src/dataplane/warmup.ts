// Warm-up: before a worker takes real packets, two private copies of its packet path
// (src/dataplane/path.ts) carry WARMUP_PACKETS packets through private file descriptors, each packet
// driven by the worker's own poll loop (src/dataplane/loop.ts), so JavaScriptCore has compiled that
// code — for any instance of the path, see LOOPS — before the first real packet instead of
// interpreting the first few hundred.
//
// Why: a fresh daemon's first packets run in the interpreter — a tunnel pinged every 50 ms answered
// in ~0.8 ms when new and ~0.4 ms once a few thousand packets had crossed it. The warm-up's path is
// built by the same openPath() as the worker's, so every function a real packet runs (TUN read, the
// engine, AEAD, send groups, UDP receive, GRO, TUN write) has run by then. Calling the path directly
// was not enough: the poll loop around it (its rounds, the TUN hand-over checks, the clock tick) then
// ran cold for the first ~150 real packets, and a fresh tunnel's first 75 pings took 0.5–0.7 ms
// instead of ~0.4. It has its own buffers: warming the worker's own path instead left ~3.5 MB more
// resident in an idle daemon (its buffers touched), measured with bench/idle.sh.
//
// The private loop, in the worker's own thread, touching none of the daemon's state or counters:
//   socketpair (stands in for the TUN) → readTun → engine (a private table: one peer owning 10/8 whose
//   endpoint is our own loopback socket, one keypair addressed to itself) → seal → UDP to 127.0.0.1
//   → receiveUdp → open → TUN write → socketpair → read back.
// Without a loopback address (a namespace whose `lo` is down) there is no warm-up: packets warm the
// path themselves.

import { ptr } from "bun:ffi";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, libc } from "../../ffi/libc.ts";
import { aesGcmFast, SUITE_AES_GCM, SUITE_CHACHA, type Aead } from "../crypto/aead.ts";
import { closeFd } from "../linux/tun.ts";
import { boundPort, openUdp } from "../linux/udp.ts";
import { writeIPv4Checksum } from "./checksum.ts";
import { runLoop } from "./loop.ts";
import { openPath, type DataPath } from "./path.ts";
import {
  allocateTables,
  K_GENERATION,
  K_LOCAL_INDEX,
  K_PEER,
  K_REMOTE_INDEX,
  K_STATE,
  K_STRIDE,
  K_SUITE,
  KEY_BYTES,
  KS_ACTIVE,
  P_ACTIVE,
  P_CURRENT,
  P_EP_IP,
  P_EP_PORT,
  P_NEXT,
  P_PREFIX,
  P_PREFIX_LEN,
  P_PREVIOUS,
  P_RX_VIA,
  P_VIA,
  REGION_MAIN,
  TableViews,
} from "./tables.ts";
import { VNET_HDR_LEN } from "./tso.ts";

/**
 * Packets through the loop (~20 ms). 300, 1,000 and 3,000 gave the same ping through a fresh tunnel
 * within the benchmark's noise; 3,000 left ~1.5 MB more resident (more code compiled by the
 * optimizing tiers), 300 and 1,000 the same.
 */
export const WARMUP_PACKETS = 1000;
/**
 * Private paths the warm-up alternates between. With one, the optimizing compiler saw a single
 * instance of every closure of the path (the TUN writer the engine calls, the GRO writers) and
 * compiled calls to those very objects: the worker's own path, built from the same code with other
 * closures, then failed that check on every packet (an OSR exit each: JSC_printEachOSRExit showed
 * two per ping) until JSC recompiled, seconds of traffic later. Two instances make it compile calls
 * that hold for any instance.
 */
const LOOPS = 2;
const LOOPBACK = 0x7f000001;
/** Poll rounds one warm-up packet may take (it needs two: TUN stand-in, then UDP). */
const LOOP_ROUNDS_MAX = 8;
const SLOT = 1; // the private keypair; its receiver index is SLOT itself (index & SLOT_MASK = slot)

export interface WarmUpOptions {
  aeads: readonly Aead[];
  mtu: number;
  vnet: boolean;
  uso: boolean;
  packets?: number;
}

export interface WarmUpResult {
  /** Packets that made the whole round (TUN stand-in → UDP → back); 0 when the loop could not be built. */
  packets: number;
  ms: number;
}

/** A packet path that talks to itself (the warm-up's; tests drive it too). */
export interface LoopbackPath {
  readonly path: DataPath;
  /** Its private tables (counters show what crossed). */
  readonly views: TableViews;
  /** Write an IP packet (with a virtio header when vnet) into the TUN stand-in and run it round the loop; returns how many packets came back out (copied to `out` if given). */
  roundTrip(packet: Uint8Array, out?: Uint8Array[]): number;
  /** The same round, driven by the worker's poll loop (src/dataplane/loop.ts) as a real packet is: true when the packet came back. */
  viaLoop(packet: Uint8Array): Promise<boolean>;
  close(): void;
}

/** Build the loop; null when it cannot be (no loopback address, fds exhausted). */
export function openLoopbackPath(o: Omit<WarmUpOptions, "packets">): LoopbackPath | null {
  const fds: number[] = [];
  const close = (): void => {
    for (const fd of fds.splice(0)) closeFd(fd);
  };
  try {
    const udp = openUdp({ port: 0, bindAddress: LOOPBACK, rcvbuf: 1 << 20, sndbuf: 1 << 20 });
    fds.push(udp);
    const pair = new Int32Array(2);
    if (libc.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ptr(pair)) !== 0) {
      close();
      return null;
    }
    const tunSide = pair[0]!;
    const driverSide = pair[1]!;
    fds.push(tunSide, driverSide);

    const views = new TableViews(allocateTables());
    const p = 0;
    const peer = (field: number, value: number): void => views.setPeer(p, field, value);
    peer(P_ACTIVE, 1);
    peer(P_CURRENT, SLOT);
    peer(P_PREVIOUS, -1);
    peer(P_NEXT, -1);
    peer(P_VIA, -1);
    peer(P_RX_VIA, -1);
    peer(P_EP_IP, LOOPBACK);
    peer(P_EP_PORT, boundPort(udp));
    peer(P_PREFIX, 0x0a000000);
    peer(P_PREFIX_LEN, 8);
    const k = SLOT * K_STRIDE;
    views.keypairs[k + K_PEER] = p;
    views.keypairs[k + K_LOCAL_INDEX] = SLOT;
    views.keypairs[k + K_REMOTE_INDEX] = SLOT;
    views.keypairs[k + K_GENERATION] = 1;
    // The suite vine-to-vine sessions use here (src/crypto/aead.ts aesGcmFast).
    views.keypairs[k + K_SUITE] = aesGcmFast() ? SUITE_AES_GCM : SUITE_CHACHA;
    const key = crypto.getRandomValues(new Uint8Array(32));
    views.keys.set(key, SLOT * KEY_BYTES); // send key ...
    views.keys.set(key, SLOT * KEY_BYTES + 32); // ... = receive key: the loop talks to itself
    Atomics.store(views.keypairs, k + K_STATE, KS_ACTIVE);

    const path = openPath({ role: "both", tunFd: tunSide, udpFd: udp, views, region: REGION_MAIN, aeads: o.aeads, mtu: o.mtu, vnet: o.vnet, uso: o.uso, emit: () => {} });
    path.engine.command({ op: "routes", routes: [{ addr: 0x0a000000, len: 8, peer: p }] });

    const sink = new Uint8Array((o.vnet ? VNET_HDR_LEN : 0) + 65536);
    const sinkPtr = ptr(sink);
    return {
      path,
      views,
      roundTrip(packet, out) {
        if (Number(libc.write(driverSide, ptr(packet), packet.length)) !== packet.length) return 0;
        path.readTun();
        path.flush();
        path.receiveUdp();
        path.flush();
        let back = 0;
        for (;;) {
          const r = Number(libc.read(driverSide, sinkPtr, sink.length));
          if (r <= 0) break;
          out?.push(sink.slice(0, r));
          back++;
        }
        return back;
      },
      async viaLoop(packet) {
        if (Number(libc.write(driverSide, ptr(packet), packet.length)) !== packet.length) return false;
        // TUN stand-in readable → sealed, sent to ourselves; UDP readable → opened, written back to
        // the stand-in; then the driver's end has it. A few rounds more would mean it was lost.
        let back = false;
        let rounds = 0;
        const next = (): boolean => {
          back = Number(libc.read(driverSide, sinkPtr, sink.length)) > 0;
          return !back && rounds++ < LOOP_ROUNDS_MAX;
        };
        await runLoop({ path, views, node: views.nodeRegion(REGION_MAIN), role: "rx", tunFd: tunSide, udpFd: udp, wakeFd: -1, otherWakeFd: -1, aeads: o.aeads, next, timeoutMs: 0 });
        return back;
      },
      close,
    };
  } catch {
    close();
    return null;
  }
}

/** Run the private loop; never throws (a warm-up that cannot run leaves the path cold, nothing else). */
export async function warmUp(o: WarmUpOptions): Promise<WarmUpResult> {
  const t0 = performance.now();
  // Two loops, packets alternating between them (see LOOPS).
  const loops: LoopbackPath[] = [];
  for (let i = 0; i < LOOPS; i++) {
    const loop = openLoopbackPath(o);
    if (loop !== null) loops.push(loop);
  }
  if (loops.length === 0) return { packets: 0, ms: performance.now() - t0 };
  try {
    // What light traffic looks like: pings, and small and full-sized TCP segments.
    const hdr = o.vnet ? VNET_HDR_LEN : 0;
    const packets = [warmUpPacket(hdr, 1, 84), warmUpPacket(hdr, 6, 52), warmUpPacket(hdr, 6, Math.min(1400, o.mtu))];
    const want = o.packets ?? WARMUP_PACKETS;
    let done = 0;
    for (let i = 0; i < want; i++) {
      if (!(await loops[i % loops.length]!.viaLoop(packets[i % packets.length]!))) break; // something refused: stop, nothing depends on it
      done++;
    }
    // Their buffers' pages go back now (the allocator may keep the memory a while after it is freed).
    for (const loop of loops) loop.path.releaseIdle();
    return { packets: done, ms: performance.now() - t0 };
  } catch {
    return { packets: 0, ms: performance.now() - t0 };
  } finally {
    for (const loop of loops) loop.close();
  }
}

/** An IPv4 packet 10.1.0.1 → 10.2.0.1 of `len` bytes (protocol `proto`: ICMP echo or TCP), after `hdr` zero bytes (virtio header). */
export function warmUpPacket(hdr: number, proto: number, len: number): Uint8Array {
  const b = new Uint8Array(hdr + len);
  const ip = hdr;
  b[ip] = 0x45;
  b[ip + 2] = len >> 8;
  b[ip + 3] = len & 0xff;
  b[ip + 8] = 64; // TTL
  b[ip + 9] = proto;
  b.set([10, 1, 0, 1, 10, 2, 0, 1], ip + 12);
  writeIPv4Checksum(b, ip, 20);
  if (proto === 1) b[ip + 20] = 8; // ICMP echo request
  else {
    b[ip + 21] = 22; // TCP from port 22 (an interactive session) ...
    b[ip + 22] = 0xc3; // ... to 50000
    b[ip + 23] = 0x50;
    b[ip + 32] = 0x80; // data offset 32 bytes (timestamps)
    b[ip + 33] = 0x18; // PSH|ACK
  }
  return b;
}
