// One thread's packet path over a TUN fd and a UDP socket: TUN reads (with TSO super-packets cut into
// segments), the packet engine, GSO send groups, batched UDP receives and TUN writes (with GRO
// merging). The worker (src/dataplane/worker.ts) builds one over the real fds and drives it from the
// poll loop (src/dataplane/loop.ts); the warm-up (src/dataplane/warmup.ts) builds one over private fds first, so the same
// code is compiled before the first real packet.

import { ptr } from "bun:ffi";
import { libc, errno, EAGAIN, EINTR } from "../../ffi/libc.ts";
import { releasePages } from "../linux/memory.ts";
import { UdpIo } from "../linux/udp.ts";
import type { Aead } from "../crypto/aead.ts";
import { HEADROOM, PacketEngine, TAILROOM } from "./engine.ts";
import { TcpCoalescer } from "./gro.ts";
import { SendGroups } from "./send-groups.ts";
import { completeChecksum, splitTcp4, splitUdp4, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, VnetHeader } from "./tso.ts";
import { NC, type CounterRegion, type TableViews, type WorkerEvent } from "./tables.ts";

const BURST = 64; // packets per fd before looking at the other one
const RX_GRO_SLOTS = 16; // 64 KiB receive slots with UDP_GRO (each holds up to 64 datagrams)
const BURST_BYTES = 1 << 20; // ... or this many bytes read from the TUN (TSO super-packets are 64 KiB)
const GROUPS = 16; // GSO send groups per burst (a burst of TSO reads can fill more: they flush early)
const RX_GROUPS = 8; // the RX thread sends relay forwards, and what it reads from the TUN while traffic is light

export interface PathOptions {
  /** "tx": TUN → UDP only (no receive buffers); "rx" and "both" also receive. */
  role: "tx" | "rx" | "both";
  tunFd: number;
  udpFd: number;
  views: TableViews;
  region: CounterRegion;
  aeads: readonly Aead[];
  mtu: number;
  /** The TUN carries a virtio_net_hdr before each packet (IFF_VNET_HDR: offloads). */
  vnet: boolean;
  /** Merged UDP may be written to the TUN (it accepted USO4|USO6). */
  uso: boolean;
  emit: (ev: WorkerEvent) => void;
}

export interface DataPath {
  readonly engine: PacketEngine;
  /** One bounded burst of TUN reads, each packet (or segment of a super-packet) to the engine; the bytes read. */
  readTun(): number;
  /** One batch of UDP receives through the engine, merged TUN writes flushed. */
  receiveUdp(): void;
  /** Send what the burst queued in the send groups. */
  flush(): void;
  /** Give the big buffers' pages back (idle); a no-op for anything still queued. */
  releaseIdle(): void;
  /** The TUN failed for good (device gone, fd broken): stop watching it. */
  tunDead(): boolean;
}

export function openPath(o: PathOptions): DataPath {
  const { role, vnet, emit } = o;
  const node = o.views.nodeRegion(o.region);
  const tunFd = o.tunFd;

  // Buffers handed to native code are this path's own (the arena, UDP slots, send groups, the
  // engine's queue buffer): their base pointers are taken once per ArrayBuffer and cached.
  const ptrCache = new WeakMap<ArrayBufferLike, number>();
  const ptrOf = (buf: Uint8Array): number => {
    let p = ptrCache.get(buf.buffer);
    if (p === undefined) {
      p = ptr(buf.buffer as ArrayBuffer);
      ptrCache.set(buf.buffer, p);
    }
    return p + buf.byteOffset;
  };
  const memcpy = (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number): void => {
    libc.memcpy(ptrOf(dst) + dstOff, ptrOf(src) + srcOff, n);
  };

  // The arena, one ArrayBuffer: a segment area (TSO super-packets are cut into segments there) and
  // the TUN read area. Packets start at 4-aligned offsets with HEADROOM free before them (WireGuard
  // and relay headers are written in place) and TAILROOM after; aligned TCP headers let checksums
  // sum 32-bit words.
  const SEG_AT = 68;
  const READ_AT = 2048 + 68;
  const readMax = vnet ? VNET_HDR_LEN + 65535 : Math.max(o.mtu, 1500);
  const arena = new Uint8Array(new ArrayBuffer((READ_AT + readMax + TAILROOM + 64 + 7) & ~7));
  const arenaWords = new Uint32Array(arena.buffer);
  const vh = new VnetHeader();

  // Datagrams leave in GSO send groups (src/dataplane/send-groups.ts), flushed at the end of a burst.
  const groups = new SendGroups(
    o.udpFd,
    role === "rx" ? RX_GROUPS : GROUPS,
    memcpy,
    (e) => emit({ ev: "error", message: `UDP GSO refused (errno ${e}); sending one datagram per packet` }),
    process.env.VINE_GSO !== "0",
  );
  const flush = (): void => {
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
  if (gro !== null) gro.udp = o.uso && process.env.VINE_GRO_UDP !== "0";
  const tunWrite = gro !== null ? (buf: Uint8Array, off: number, len: number) => gro.add(buf, off, len) : vnet ? tunWriteSingle : tunWriteRaw;

  // Receives: datagrams land in their own slots and are decrypted in place. With UDP_GRO
  // (VINE_UDP_GRO=0 turns it off) the kernel hands over runs of same-sized datagrams from one sender
  // in one slot (the peer's GSO sends arrive that way): fewer, larger receives. A TX-only path has
  // no receive buffers.
  const udpGro = role !== "tx" && process.env.VINE_UDP_GRO !== "0";
  const rx = new UdpIo(o.udpFd, {
    batch: role === "tx" ? 1 : udpGro ? RX_GRO_SLOTS : BURST,
    bufSize: role === "tx" ? 8 : udpGro ? 65536 : 2048 + HEADROOM,
    gro: udpGro,
    recv: role !== "tx",
    send: false,
  });

  const eng = new PacketEngine(o.views, o.aeads, { sendUdp: sendGrouped, writeTun: tunWrite, emit }, o.mtu, o.region);

  let dead = false;
  const readPtr = ptrOf(arena) + READ_AT - (vnet ? VNET_HDR_LEN : 0);
  const readLen = readMax;
  const emitSegment = (buf: Uint8Array, off: number, len: number): void => eng.fromTun(buf, off, len);
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
            // and the loop would spin. The worker stops watching it; the main thread reports it once.
            if (e === 5 || e === 9 || e === 19 || e === 77) dead = true;
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

  const receiveUdp = (): void => {
    const got = rx.recvBatch();
    for (let i = 0; i < got; i++) {
      const len = rx.lengths[i]!;
      const seg = rx.segmentSize[i]!;
      if (seg > 0 && seg < len) {
        // A GRO run: datagrams of `seg` bytes back to back (the last may be shorter).
        const slot = rx.slot(i);
        for (let off = 0; off < len; off += seg) eng.fromUdp(slot, off, Math.min(seg, len - off), rx.srcIp[i]!, rx.srcPort[i]!);
      } else eng.fromUdp(rx.slot(i), 0, len, rx.srcIp[i]!, rx.srcPort[i]!);
    }
    if (gro === null) return;
    gro.flushAll();
    if (gro.merged > 0) {
      node[NC.gro_superpackets_out]! += gro.merged;
      node[NC.gro_segments_merged]! += gro.mergedSegments;
      gro.merged = 0;
      gro.mergedSegments = 0;
    }
  };

  const releaseBuffer = (b: Uint8Array): number => releasePages(ptrOf(b), b.length);
  return {
    engine: eng,
    readTun,
    receiveUdp,
    flush,
    releaseIdle: () => {
      releaseBuffer(arena);
      rx.releaseData();
      groups.releaseData();
      gro?.releaseData(releaseBuffer);
    },
    tunDead: () => dead,
  };
}
