// The vine daemon: brings the overlay up from config and durable state, runs the control plane
// on the main thread, the packet path in a worker, and takes everything down again on stop.
//
// Start order matters for crash safety: state first (so a failure is recorded), then leftovers of
// a crashed run are removed, then TUN/routes/socket, then the worker, then sessions. Stop runs the
// reverse, and every step tolerates a half-built start.

import { networkInterfaces } from "node:os";
import { formatProblem, loadConfig, type VineConfig } from "../config/index.ts";
import { readFileSync } from "node:fs";
import { LineMap } from "../config/lines.ts";
import { openState, stateDirProblem, type StateStore } from "../state/db.ts";
import { loadIdentity, type Identity } from "../identity/index.ts";
import { networkPresharedKey } from "../identity/network-psk.ts";
import { closeFd, openTun, setTunOffload, TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6 } from "../linux/tun.ts";
import { VNET_HDR_LEN } from "../dataplane/tso.ts";
import { Rtnetlink } from "../linux/netlink.ts";
import { openUdp, setIntOption, UdpIo } from "../linux/udp.ts";
import { IPPROTO_IP } from "../../ffi/libc.ts";

const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_DONT = 0;
import { aeadBackendInfo, aesGcmFast, createAeads, OFFER_AES_GCM } from "../crypto/aead.ts";
import { formatIPv4 } from "../overlay/prefix.ts";
import { DataPlane, DataPlaneErrors } from "../dataplane/host.ts";
import { HEADROOM, PacketEngine, TAILROOM, type Route } from "../dataplane/engine.ts";
import {
  allocateTables,
  HEARTBEAT_RX,
  HEARTBEAT_TX,
  P_ACTIVE,
  P_CURRENT,
  P_EP_IP,
  P_EP_PORT,
  P_KEY_HASH,
  P_NEXT,
  P_PREFIX,
  P_PREFIX_LEN,
  P_PREVIOUS,
  P_RX_VIA,
  P_VIA,
  P_WANT_HANDSHAKE,
  RELAY_SERVICE,
  TableViews,
  type WorkerEvent,
} from "../dataplane/tables.ts";
import { PeerSet, peerIdOf, type Endpoint, type PeerRecord } from "./peer-set.ts";
import { SessionManager, type Origin } from "./sessions.ts";
import { Counters } from "./counters.ts";
import { Log, type LogFormat } from "./log.ts";
import { Mesh } from "./mesh.ts";
import { Persistence } from "./persist.ts";
import { ControlServer } from "./control.ts";
import { buildViews, type DaemonViews } from "./views.ts";
import { writeSnapshot } from "./snapshot.ts";
import { resolveHost } from "./resolve.ts";
import { checkPidfile, removePidfile, writePidfile } from "./pidfile.ts";
import { monoNow } from "../clock.ts";
import { InitiationTimestamps } from "../wg/initiation-timestamps.ts";

export type Phase = "starting" | "running" | "reloading" | "stopping" | "stopped";

export interface DaemonOptions {
  configPath: string;
  logFormat?: LogFormat;
}

/** Route MTU of a relayed peer: 1500 − 28 (IPv4+UDP) − 16+33+16+16+16 (headers, envelope, tags), down to a multiple of 16. */
export const RELAY_ROUTE_MTU = 1360;

export class Daemon {
  phase: Phase = "starting";
  /** Wall-clock start, shown and stored as a date. */
  readonly startedAt = Date.now();
  /** Monotonic start (src/clock.ts), for uptime and the start-up busy period. */
  readonly startedMono = monoNow();
  config!: VineConfig;
  store!: StateStore;
  identity!: Identity;
  readonly log: Log;
  readonly counters = new Counters();
  readonly views = new TableViews(allocateTables());
  readonly peers = new PeerSet();
  sessions!: SessionManager;
  mesh!: Mesh;
  persistence!: Persistence;
  private control: ControlServer | null = null;
  private dataplane: DataPlane | null = null;
  private nl: Rtnetlink | null = null;
  private tunFd = -1;
  /** TUN offloads in use: "csum+tso4+uso", "csum+tso4" (no UDP segmentation: kernel before 6.2), "none" (virtio header only: the kernel refused), "off" (VINE_OFFLOAD=0). */
  tunOffload: "csum+tso4+uso" | "csum+tso4" | "none" | "off" = "off";
  private udpFd = -1;
  private udp!: UdpIo;
  private engine!: PacketEngine;
  private installedRoutes: { addr: number; len: number }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Activity fingerprint (packets both ways) and when it last changed: the tick slows down when idle. */
  private lastActivity = -1;
  private lastActiveAt = 0;
  private persistTimer: ReturnType<typeof setInterval> | null = null;
  private readonly scratch = new Uint8Array(HEADROOM + 65536 + TAILROOM);
  private stopPromise: Promise<void> | null = null;
  private wrotePidfile = false;

  constructor(readonly opts: DaemonOptions) {
    this.log = new Log(opts.logFormat ?? "text");
  }

  // ------------------------------------------------------------------ start

  async start(): Promise<void> {
    const { config, problems } = loadConfig(this.opts.configPath);
    if (!config || problems.length > 0) {
      throw new Error(
        `invalid config ${this.opts.configPath}:\n` + problems.map((p) => `  ${formatProblem(p)}`).join("\n"),
      );
    }
    this.config = config;
    const running = checkPidfile(config.node.stateDir);
    if (running.state === "running" && running.pid !== process.pid) {
      throw new Error(`a vine daemon already runs for ${config.node.stateDir} (pid ${running.pid}); stop it first`);
    }
    // Checked before anything is created: a missing or read-only state_dir changes nothing.
    const problem = configStateDirProblem(config);
    if (problem) throw new Error(problem);
    this.store = openState(config.node.stateDir, { create: true });
    writePidfile(config.node.stateDir);
    this.wrotePidfile = true;
    const id = loadIdentity(this.store);
    if (!id) throw new Error(`no identity in ${config.node.stateDir}: run \`vine identity init --state-dir ${config.node.stateDir}\` first`);
    this.identity = id;
    this.persistence = new Persistence(this.store, this.log, (e) => this.stateWriteFailed(e));
    this.counters.setBaseline(this.persistence.loadCounters());
    this.counters.attach(this.views, () => this.peers.all().map((p) => ({ index: p.index, id: p.id })));
    this.persistence.recordStart(process.pid, config, aeadBackendInfo().active);

    this.nl = new Rtnetlink();
    this.cleanupLeftovers();
    // Offloads (VINE_OFFLOAD=0 turns them off): the TUN carries virtio_net_hdr, the kernel hands
    // over TCP super-packets and partial checksums, and takes merged ones (src/dataplane/tso.ts, gro.ts).
    const vnetHdr = process.env.VINE_OFFLOAD !== "0";
    this.tunFd = openTun(config.tun.name, { vnetHdr }).fd;
    // UDP segmentation (USO, Linux 6.2+) is asked for too, and dropped if the kernel refuses it. The
    // kernel takes USO only for both IP versions at once (USO4 alone is refused with EINVAL); IPv6
    // super-packets are dropped like any IPv6 packet.
    if (!vnetHdr) this.tunOffload = "off";
    else if (setTunOffload(this.tunFd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6, VNET_HDR_LEN)) this.tunOffload = "csum+tso4+uso";
    else if (setTunOffload(this.tunFd, TUN_F_CSUM | TUN_F_TSO4, VNET_HDR_LEN)) this.tunOffload = "csum+tso4";
    else this.tunOffload = "none";
    this.nl.setLink(config.tun.name, { mtu: config.tun.mtu, txqueuelen: 2000 });
    this.nl.addAddress(config.tun.name, config.tun.address, config.tun.prefixLen);
    this.nl.setLink(config.tun.name, { up: true });
    this.udpFd = openUdp({ port: config.node.listenPort });
    // Relayed datagrams carry a second header and can exceed the underlay MTU: let the kernel
    // fragment them rather than refuse them (the socket would otherwise set DF).
    setIntOption(this.udpFd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT);
    this.udp = new UdpIo(this.udpFd, { batch: 1, bufSize: 64 });
    this.persistence.recordInstalled({ tun: config.tun.name, routes: [] });

    const aeads = createAeads();
    this.engine = new PacketEngine(this.views, aeads, {
      sendUdp: (buf, off, len, ip, port) => this.udp.sendTo(buf, off, len, ip, port),
      writeTun: () => false,
      emit: () => {},
    }, config.tun.mtu);

    this.sessions = new SessionManager(
      this.views,
      this.peers,
      { privateKey: id.x25519Private, publicKey: id.x25519Public },
      {
        psk: networkPresharedKey(config.node.networkId),
        underLoadPerSecond: 200,
        suites: this.suites(),
        timestamps: new InitiationTimestamps(this.persistence.initiationTimestamps),
      },
      {
        sendToPeer: (peer, msg) => this.sendMessage(peer, msg, null),
        sendToOrigin: (peer, origin, msg) => this.sendMessage(peer, msg, origin),
        sendKeepalive: (peer, keypair) => this.sendPayload(peer, new Uint8Array(0), undefined, keypair),
        post: (cmd) => this.dataplane?.post(cmd),
        onSession: (peer, role, origin) => this.mesh.onSession(peer, role, origin),
        onGiveUp: (peer) => this.mesh.onGiveUp(peer),
      },
      this.counters,
      this.log,
    );
    this.mesh = new Mesh(this);

    this.dataplane = new DataPlane(this.views, (ev) => this.onWorkerEvent(ev));
    this.applyPolicy();
    this.syncPeers(config);
    await this.dataplane.start({ tunFd: this.tunFd, udpFd: this.udpFd, mtu: config.tun.mtu, vnetHdr: this.tunOffload !== "off", uso: this.tunOffload === "csum+tso4+uso" });
    this.installRoutes();

    this.control = new ControlServer(this, config.node.stateDir);
    await this.control.listen();

    this.mesh.start(monoNow());
    this.scheduleTick();
    this.persistTimer = setInterval(() => this.persist(), 1000);
    this.phase = "running";
    this.persistence.event("daemon_started", null, null, null, { pid: process.pid, backend: aeadBackendInfo().active });
    this.persist();
    // Startup garbage (config parsing, migrations, query building) is freed before the long idle
    // stretches of a daemon's life: about 3 MB less resident memory than waiting for a GC.
    Bun.gc(true);
    this.log.info("vine up", {
      node: config.node.name,
      peer_id: id.peerId,
      tun: config.tun.name,
      address: `${config.tun.addressText}/${config.tun.prefixLen}`,
      listen: config.node.listenPort,
      peers: this.peers.size,
      aead: aeadBackendInfo().active,
      offload: this.tunOffload,
      warmup: this.dataplane.warmup ? `${this.dataplane.warmup.packets} packets in ${Math.round(this.dataplane.warmup.ms)} ms` : "none",
    });
  }

  /** Suites to offer other vine hosts: AES-256-GCM when the policy allows it and this CPU makes it fast. */
  private suites(): number {
    return this.config.policy.cipher === "auto" && aesGcmFast() ? OFFER_AES_GCM : 0;
  }

  /** Remove what a crashed run left behind: its TUN (and with it its routes). */
  private cleanupLeftovers(): void {
    const left = this.persistence.previousInstall();
    const name = this.config.tun.name;
    if (this.nl!.linkExists(name)) {
      if (left && left.tun === name && !processAlive(left.pid)) {
        this.log.warn("removing leftovers of a previous run that did not stop cleanly", { tun: name, pid: left.pid });
        this.nl!.deleteLink(name);
      } else {
        throw new Error(`interface ${name} already exists: another vine (or program) uses it; pick another [tun] name or stop it`);
      }
    }
  }

  // ------------------------------------------------------------------ peers and routes

  /** Make the peer table match the config: add new peers, drop removed ones, keep the rest untouched. */
  syncPeers(config: VineConfig): { added: string[]; removed: string[] } {
    const wanted = new Map<string, VineConfig["allowedPeers"][number]>();
    for (const p of config.allowedPeers) wanted.set(peerIdOf(p), p);
    const added: string[] = [];
    const removed: string[] = [];
    for (const rec of this.peers.all()) {
      const w = wanted.get(rec.id);
      if (!w || w.prefix.text !== rec.prefix.text) {
        this.removePeer(rec);
        removed.push(rec.name);
      } else {
        rec.name = w.name;
        rec.relayCapable = w.relayCapable;
      }
    }
    const bootstrapById = new Map(config.bootstrapPeers.map((b) => [b.peerId, b]));
    for (const [id, p] of wanted) {
      const existing = this.peers.byPeerId(id);
      const boot = bootstrapById.get(id);
      const ep = p.endpoint ?? boot?.endpoint ?? null;
      const staticEndpoint = ep ? endpointOf(ep) : null;
      if (existing) {
        existing.bootstrap = !!boot;
        existing.staticEndpoint = staticEndpoint;
        existing.staticEndpointText = ep?.text ?? null;
        continue;
      }
      const rec = this.peers.add({
        id,
        name: p.name,
        x25519: p.x25519Public,
        ed25519: p.publicKey,
        prefix: p.prefix,
        relayCapable: p.relayCapable,
        wireguardOnly: p.wireguardOnly,
        staticEndpoint,
        staticEndpointText: ep?.text ?? null,
        bootstrap: !!boot,
      });
      this.activatePeer(rec);
      added.push(rec.name);
    }
    this.persistence.savePeers(this.peers.all(), config);
    this.dataplane?.post({ op: "routes", routes: this.routeEntries() });
    return { added, removed };
  }

  private activatePeer(rec: PeerRecord): void {
    const v = this.views;
    const i = rec.index;
    v.peerKeys.set(rec.x25519, i * 32);
    v.setPeer(i, P_KEY_HASH, rec.x25519[0]! | (rec.x25519[1]! << 8) | (rec.x25519[2]! << 16) | (rec.x25519[3]! << 24));
    v.setPeer(i, P_PREFIX, rec.prefix.addr);
    v.setPeer(i, P_PREFIX_LEN, rec.prefix.len);
    for (const f of [P_CURRENT, P_PREVIOUS, P_NEXT, P_VIA, P_RX_VIA]) v.setPeer(i, f, -1);
    v.setPeer(i, P_EP_IP, 0);
    v.setPeer(i, P_EP_PORT, 0);
    v.setPeer(i, P_WANT_HANDSHAKE, 0);
    v.setPeer(i, P_ACTIVE, 1);
  }

  private removePeer(rec: PeerRecord): void {
    this.sessions?.forget(rec);
    this.mesh?.removePeer(rec);
    this.views.setPeer(rec.index, P_ACTIVE, 0);
    this.views.setPeer(rec.index, P_EP_PORT, 0);
    this.peers.remove(rec);
    this.persistence.event("peer_removed", rec.id, null, null, { name: rec.name });
    // The index becomes reusable once the worker has expired its keypairs (posted just above).
    setTimeout(() => this.peers.reuse(rec.index), 1000);
  }

  private routeEntries(): { addr: number; len: number; peer: number }[] {
    return this.peers.all().map((p) => ({ addr: p.prefix.addr, len: p.prefix.len, peer: p.index }));
  }

  /** Peers whose route carries the relay MTU (their path is a relay). */
  private readonly relayedRoutes = new Set<number>();

  /**
   * The largest overlay packet that crosses a relay in one 1500-byte underlay packet: a relayed
   * datagram carries two transport headers and tags and the relay envelope (16+33+16+16+16) plus
   * IPv4+UDP (28), and the payload is padded to 16. 1360 for every TUN MTU above it.
   */
  private relayMtu(): number {
    return Math.min(this.config.tun.mtu, RELAY_ROUTE_MTU);
  }

  /** The MTU a peer's route carries: the relay MTU while relayed, else none (the TUN's). */
  private routeMtu(peer: PeerRecord): number | undefined {
    return this.relayedRoutes.has(peer.index) ? this.relayMtu() : undefined;
  }

  /**
   * A peer's path became relayed (or stopped being relayed): give its route the relay MTU, so that
   * TCP sizes its segments to fit one underlay packet instead of the kernel fragmenting every full
   * one; back to the TUN MTU when direct again. Idempotent and cheap when nothing changes.
   */
  setRelayedRoute(peer: PeerRecord, relayed: boolean): void {
    if (relayed === this.relayedRoutes.has(peer.index) || !this.nl || this.phase === "stopping" || this.phase === "stopped") return;
    if (relayed) this.relayedRoutes.add(peer.index);
    else this.relayedRoutes.delete(peer.index);
    try {
      this.nl.addRoute(peer.prefix.addr, peer.prefix.len, this.config.tun.name, { mtu: this.routeMtu(peer) });
    } catch (e) {
      this.log.warn("could not set the route MTU for a relayed peer", { peer: peer.name, error: String((e as Error).message ?? e) });
    }
  }

  /** Kernel routes: one per peer prefix through the TUN (the local prefix comes with the address). */
  private installRoutes(): void {
    const nl = this.nl!;
    const peers = this.peers.all();
    const want = peers.map((p) => ({ addr: p.prefix.addr, len: p.prefix.len }));
    for (const r of this.installedRoutes) {
      if (!want.some((w) => w.addr === r.addr && w.len === r.len)) nl.delRoute(r.addr, r.len, this.config.tun.name);
    }
    // A removed peer's index may be reused by another: it must not inherit the relay MTU.
    for (const i of this.relayedRoutes) if (!peers.some((p) => p.index === i)) this.relayedRoutes.delete(i);
    for (const p of peers) nl.addRoute(p.prefix.addr, p.prefix.len, this.config.tun.name, { mtu: this.routeMtu(p) });
    this.installedRoutes = want;
    this.persistence.saveRoutes(this.config, peers);
    this.persistence.recordInstalled({ tun: this.config.tun.name, routes: want.map((r) => `${formatIPv4(r.addr)}/${r.len}`) });
  }

  private applyPolicy(): void {
    Atomics.store(this.views.misc, RELAY_SERVICE, this.config.policy.relayService ? 1 : 0);
  }

  // ------------------------------------------------------------------ sending (control plane)

  /** Send a complete WireGuard message (handshake) to a peer on its path or to an explicit origin. */
  sendMessage(peer: PeerRecord | null, msg: Uint8Array, origin: Origin | null): boolean {
    const buf = this.scratch;
    buf.set(msg, HEADROOM);
    if (origin && origin.via < 0) return this.udp.sendTo(buf, HEADROOM, msg.length, origin.ip, origin.port);
    if (!peer) return false;
    if (origin) return this.engine.sendOn(peer.index, buf, HEADROOM, msg.length, origin.ip, origin.port, origin.via);
    if (this.views.peer(peer.index, P_EP_PORT) === 0 && this.views.peer(peer.index, P_VIA) < 0) return false;
    return this.engine.sendOnPath(peer.index, buf, HEADROOM, msg.length);
  }

  /** Encrypt and send a payload (control message or keepalive) on the peer's session. */
  sendPayload(peer: PeerRecord, payload: Uint8Array, route?: Route, keypair?: number): boolean {
    const buf = this.scratch;
    buf.set(payload, HEADROOM);
    return this.engine.sendPayload(peer.index, buf, HEADROOM, payload.length, route, keypair);
  }

  /** This host's candidate endpoints: every non-loopback IPv4 address with the listen port. */
  localEndpoints(): Endpoint[] {
    const out: Endpoint[] = [];
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        if (a.family !== "IPv4" || a.internal) continue;
        const ip = ipv4ToU32(a.address);
        if (ip === null || prefixHas(this.config.tun.prefix, ip)) continue;
        out.push({ ip, port: this.config.node.listenPort });
      }
    }
    return out.slice(0, 8);
  }

  // ------------------------------------------------------------------ events and timers

  private onWorkerEvent(ev: WorkerEvent): void {
    const now = monoNow();
    switch (ev.ev) {
      case "handshake": {
        const origin: Origin = { ip: ev.ip, port: ev.port, via: ev.via };
        this.sessions.onHandshakeMessage(ev.data, origin, originBytes(origin), now);
        return;
      }
      case "control": {
        const peer = this.peers.get(ev.peer);
        if (peer) this.mesh.onControl(peer, ev.data, { ip: ev.ip, port: ev.port, via: ev.via }, now);
        return;
      }
      case "need-session": {
        const peer = this.peers.get(ev.peer);
        if (peer) this.mesh.onNeedSession(peer, now);
        return;
      }
      case "confirmed": {
        const peer = this.peers.get(ev.peer);
        if (peer) this.sessions.onConfirmed(peer, ev.slot);
        this.dataplane?.post({ op: "flush", peer: ev.peer });
        return;
      }
      case "rotated":
        // The RX thread installed a new sending keypair: the TX thread may send what waits.
        this.dataplane?.post({ op: "flush", peer: ev.peer });
        return;
      case "stopped":
        return;
      case "relay-refused":
        this.mesh.onRelayRefused(ev.from, ev.dest, ev.reason);
        return;
      case "error":
        this.onDataPlaneError(ev.message, now);
        return;
    }
  }

  /**
   * The control plane ticks every 50 ms while packets flow or handshakes run (failover must notice a
   * dead path within a second), and every second when the node is idle (an idle daemon stays cheap).
   */
  private scheduleTick(): void {
    if (this.phase === "stopping" || this.phase === "stopped") return;
    const v = this.views;
    // Data and handshakes only: the idle path probes' own replies (control messages) must not keep
    // an idle node on the fast tick.
    const activity = v.nodeCounter("rx_packets") + v.nodeCounter("tx_packets") + v.nodeCounter("handshake_messages_in");
    const now = monoNow();
    if (activity !== this.lastActivity) {
      this.lastActivity = activity;
      this.lastActiveAt = now;
    }
    const busy = now - this.lastActiveAt < 3000 || now - this.startedMono < 10_000;
    this.timer = setTimeout(() => {
      this.tick();
      this.scheduleTick();
    }, busy ? 50 : 1000);
  }

  private heartbeats = [0, 0];
  private heartbeatAt = 0;

  /** A worker whose loop stops turning is a bug worth shouting about: check every 2 s. */
  private checkWorkers(now: number): void {
    if (now - this.heartbeatAt < 2000) return;
    this.heartbeatAt = now;
    [HEARTBEAT_TX, HEARTBEAT_RX].forEach((slot, i) => {
      const beat = Atomics.load(this.views.misc, slot);
      if (beat === this.heartbeats[i] && this.phase === "running") {
        this.counters.inc("worker_stalls");
        this.log.error("data-plane worker loop stalled", { worker: i === 0 ? "tx" : "rx", beats: beat });
      }
      this.heartbeats[i] = beat;
    });
  }

  private tick(): void {
    const now = monoNow();
    if (process.env.VINE_WORKERS !== "1") this.checkWorkers(now);
    try {
      this.mesh.tick(now);
      this.sessions.tick(now);
    } catch (e) {
      this.log.error("control-plane tick failed", { error: String((e as Error)?.stack ?? e) });
    }
  }

  private readonly dataPlaneErrors = new DataPlaneErrors();

  /**
   * The worker reports each failed read or send as an event. A TUN that is gone (deleted under us:
   * ENODEV, EBADFD, EIO) fails every read: say so once, clearly, and count it; anything else is
   * counted and logged at most once every 10 s with how many were suppressed.
   */
  private onDataPlaneError(message: string, now: number): void {
    const r = this.dataPlaneErrors.note(message, now);
    if (r.tun) this.counters.inc("tun_read_errors");
    else this.counters.inc("dataplane_errors");
    if (r.kind === "tun-gone") {
      this.counters.inc("tun_gone");
      this.log.error(`the TUN interface ${this.config.tun.name} is gone (${r.errnoName}): no packet can enter or leave the overlay; restart the daemon to recreate it`, {
        tun: this.config.tun.name,
        errno: r.errno,
      });
      this.persistence.event("tun_gone", null, null, null, { tun: this.config.tun.name, errno: r.errno });
    } else if (r.log) {
      this.log.error("data plane", { error: message, ...(r.suppressed > 0 ? { suppressed: r.suppressed } : {}) });
    }
  }

  /** Failed state writes since the last success (0: writes work). */
  private stateWriteFailures = 0;

  /** A failed write to SQLite: counted each time, logged once per outage; forwarding never waits for it. */
  private stateWriteFailed(e: unknown): void {
    this.counters.inc("state_write_errors");
    if (this.stateWriteFailures++ > 0) return;
    this.log.error(`cannot write the state database ${this.store.path}: ${stateErrorText(e)}; forwarding continues, state_write_errors counts each failed write, and the state catches up once writes succeed again`, {
      error: String((e as Error)?.message ?? e),
    });
  }

  private persist(): void {
    try {
      this.persistence.flush(this);
    } catch (e) {
      this.stateWriteFailed(e);
      return;
    }
    if (this.stateWriteFailures > 0 && this.persistence.wroteLastFlush) {
      this.log.info("state database writes resumed", { failed_writes: this.stateWriteFailures });
      this.persistence.event("state_writes_resumed", null, null, null, { failed_writes: this.stateWriteFailures });
      this.stateWriteFailures = 0;
    }
  }

  // ------------------------------------------------------------------ reload, snapshot, views

  /** SIGHUP: re-read the config; an invalid one is rejected and the running one kept. */
  reload(): { ok: boolean; problems?: string[]; added?: string[]; removed?: string[] } {
    const { config, problems } = loadConfig(this.opts.configPath);
    if (!config || problems.length > 0) {
      const lines = problems.map(formatProblem);
      this.log.error("reload rejected: the new config is invalid; keeping the running one", { problems: lines });
      this.persistence.event("reload_rejected", null, null, null, { problems: lines });
      return { ok: false, problems: lines };
    }
    const fixed = ["tun.name", "tun.address", "tun.prefixLen", "node.listenPort", "node.stateDir", "node.networkId"] as const;
    const changed = fixed.filter((k) => get(config, k) !== get(this.config, k));
    if (changed.length > 0) {
      const msg = `reload cannot change ${changed.join(", ")}: restart the daemon for that`;
      this.log.error(msg);
      return { ok: false, problems: [msg] };
    }
    this.config = config;
    this.applyPolicy();
    const diff = this.syncPeers(config);
    this.installRoutes();
    this.mesh.onReload(monoNow());
    this.persistence.event("config_reloaded", null, null, null, diff);
    this.log.info("config reloaded", diff);
    return { ok: true, ...diff };
  }

  viewsNow(): DaemonViews {
    return buildViews(this);
  }

  snapshot(outFile?: string): { id: number; file: string | null } {
    return writeSnapshot(this, outFile);
  }

  // ------------------------------------------------------------------ stop

  stop(reason = "stop requested"): Promise<void> {
    this.stopPromise ??= this.doStop(reason);
    return this.stopPromise;
  }

  private async doStop(reason: string): Promise<void> {
    this.phase = "stopping";
    this.log.info("stopping", { reason });
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.persistTimer) clearInterval(this.persistTimer);
    await this.control?.close();
    await this.dataplane?.stop();
    try {
      this.persistence?.event("daemon_stopped", null, null, null, { reason });
      this.persistence?.flush(this, true);
    } catch (e) {
      this.log.error("final state write failed", { error: String(e) });
    }
    if (this.nl && this.config) {
      // Remove only what this run created: a start that failed on "interface already exists" must
      // not take down the interface of the daemon that owns it.
      if (this.tunFd >= 0) {
        for (const r of this.installedRoutes) this.nl.delRoute(r.addr, r.len, this.config.tun.name);
        closeFd(this.tunFd);
        this.nl.deleteLink(this.config.tun.name);
        this.persistence?.recordInstalled(null);
      }
      this.nl.close();
    }
    if (this.udpFd >= 0) closeFd(this.udpFd);
    this.store?.close();
    if (this.wrotePidfile) removePidfile(this.config.node.stateDir);
    this.phase = "stopped";
    this.log.info("stopped");
  }
}

/**
 * JIT tier-up thresholds of the daemon's main thread, as a multiple of the normal ones. The control
 * plane runs here (timers, handshakes, claims, SQLite): little of its code is hot, and compiling it
 * costs memory that stays — the compiled code, and the resident pages of the optimizing compilers
 * themselves. At ×100 an idle hub with 10 peers holds ~5 MB less (66 → 61 MiB, bench/idle.sh), at
 * the same idle CPU; a handshake storm still reaches compiled code (~3,400 responder handshakes/s
 * at ×1 and ×100 alike). The data-plane workers keep the normal policy: their code is the hot path.
 */
const CONTROL_PLANE_JIT_POLICY = 100;

/** Run in the foreground until a signal stops it; returns the exit code. */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  Bun.unsafe.setJITPolicy(CONTROL_PLANE_JIT_POLICY);
  const d = new Daemon(opts);
  try {
    await d.start();
  } catch (e) {
    d.log.error(String((e as Error)?.message ?? e));
    await d.stop("start failed").catch(() => {});
    return 1;
  }
  const done = new Promise<number>((resolve) => {
    const stop = (sig: string) => () => d.stop(`signal ${sig}`).then(() => resolve(0));
    process.on("SIGTERM", stop("SIGTERM"));
    process.on("SIGINT", stop("SIGINT"));
    process.on("SIGHUP", () => d.reload());
    process.on("SIGUSR1", () => {
      try {
        const s = d.snapshot();
        d.log.info("snapshot written", { id: s.id });
      } catch (e) {
        d.log.error("snapshot failed", { error: String(e) });
      }
    });
  });
  return done;
}

/** A state_dir the daemon cannot use, as "file:line: node.state_dir: why and what to do", or null. */
export function configStateDirProblem(config: VineConfig): string | null {
  const why = stateDirProblem(config.node.stateDir);
  if (!why) return null;
  let line = 0;
  try {
    line = new LineMap(readFileSync(config.file, "utf8")).lineOf("node.state_dir");
  } catch {}
  return formatProblem({ file: config.file, line, key: "node.state_dir", message: why });
}

/** What a SQLite write error means for an operator. */
function stateErrorText(e: unknown): string {
  const code = String((e as { code?: unknown })?.code ?? "");
  const msg = String((e as Error)?.message ?? e);
  if (code.startsWith("SQLITE_FULL") || /disk is full/i.test(msg)) return "the disk is full";
  if (code.startsWith("SQLITE_READONLY") || /readonly|read-only/i.test(msg)) return "the database or its file system is read-only";
  if (code.startsWith("SQLITE_IOERR") || /disk I\/O/i.test(msg)) return "an I/O error (disk full, read-only or failing file system)";
  return msg;
}

function endpointOf(e: { host: string; port: number }): Endpoint | null {
  const ip = resolveHost(e.host);
  return ip === null ? null : { ip, port: e.port };
}

function ipv4ToU32(s: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (!m) return null;
  return ((+m[1]! << 24) | (+m[2]! << 16) | (+m[3]! << 8) | +m[4]!) >>> 0;
}

function prefixHas(p: { addr: number; len: number }, ip: number): boolean {
  const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
  return ((ip & mask) >>> 0) === p.addr >>> 0;
}

/** The bytes a cookie is bound to: source ip and port (WireGuard binds mac2 to the sender's address). */
function originBytes(o: Origin): Uint8Array {
  const b = new Uint8Array(6);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, o.via >= 0 ? 0xffffffff - o.via : o.ip);
  dv.setUint16(4, o.port);
  return b;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function get(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

