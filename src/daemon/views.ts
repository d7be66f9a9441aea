// What the operator commands print, built from the running daemon. The same shapes are rebuilt
// from SQLite when the daemon is down (src/cli/offline.ts), marked `"source": "state"`.

import type { Suite } from "../crypto/aead.ts";
import { aeadBackendInfo } from "../crypto/aead.ts";
import { formatIPv4 } from "../overlay/prefix.ts";
import { HEAP_KIB_RX, HEAP_KIB_TX, PC_LAST_RX_MS, PC_RX_BYTES, PC_RX_PACKETS, PC_STRIDE, PC_TX_BYTES, PC_TX_PACKETS } from "../dataplane/tables.ts";
import { NODE_SCOPE, type CounterMap } from "./counters.ts";
import type { Daemon } from "./daemon.ts";
import { fmtEp } from "./mesh.ts";
import { monoNow, wallOf } from "../clock.ts";

export type PathClass = "direct" | "signaling_then_direct" | "relay" | "none";

export interface SessionView {
  peer_id: string;
  name: string;
  prefix: string;
  path: PathClass;
  endpoint: string | null;
  via: string | null;
  rtt_ms: number | null;
  /** Transport suite of the current keypair: chacha20-poly1305 or aes-256-gcm (null without a session). */
  cipher: Suite | null;
  last_handshake: string | null;
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
}

export interface PeerView {
  peer_id: string;
  name: string;
  prefix: string;
  relay_capable: boolean;
  wireguard_only: boolean;
  bootstrap: boolean;
  static_endpoint: string | null;
  path: PathClass;
  session: boolean;
  last_handshake: string | null;
  last_seen: string | null;
}

export interface RouteView {
  prefix: string;
  kind: "local" | "peer";
  peer_id: string | null;
  name: string;
  path: PathClass;
  installed: boolean;
}

export interface StatusView {
  source: "live" | "state";
  node: string;
  peer_id: string;
  fingerprint: string;
  network_id: string;
  tun: string;
  address: string;
  prefix: string;
  listen_port: number;
  daemon: { phase: string; pid: number | null; started_at: string | null; uptime_s: number | null };
  peers: { total: number; with_session: number };
  paths: Record<PathClass, number>;
  aead: string;
  /**
   * Live only (null from saved state): resident memory of the process, and the JavaScript heap in use
   * per thread (main; the TX and RX workers report every 2 s, null until they have, and rx is null
   * with VINE_WORKERS=1).
   */
  memory: { rss_bytes: number; js_heap_used_bytes: { main: number; tx: number | null; rx: number | null } } | null;
}

export interface DaemonViews {
  status: StatusView;
  peers: PeerView[];
  routes: RouteView[];
  sessions: SessionView[];
  counters: { node: Record<string, number>; peers: Record<string, Record<string, number>> };
}

export function iso(ms: number | null | undefined): string | null {
  return ms ? new Date(ms).toISOString() : null;
}

export function countersToJson(m: CounterMap): DaemonViews["counters"] {
  const node: Record<string, number> = {};
  const peers: Record<string, Record<string, number>> = {};
  for (const [scope, names] of m) {
    const target = scope === NODE_SCOPE ? node : (peers[scope] = {});
    for (const [n, v] of [...names].sort(([a], [b]) => a.localeCompare(b))) target[n] = v;
  }
  return { node, peers };
}

export function buildViews(d: Daemon): DaemonViews {
  const cfg = d.config;
  const v = d.views;
  const sessions: SessionView[] = [];
  const peers: PeerView[] = [];
  const paths: Record<PathClass, number> = { direct: 0, signaling_then_direct: 0, relay: 0, none: 0 };
  let withSession = 0;
  for (const p of d.peers.all()) {
    const c = p.index * PC_STRIDE;
    const live = d.sessions.hasSession(p);
    const pv = d.mesh.pathOf(p);
    // A path is only real once a session runs over it.
    const cls: PathClass = live ? pv.cls : "none";
    paths[cls]++;
    if (live) withSession++;
    const lastHs = d.sessions.lastHandshakeAt(p);
    const via = cls === "relay" ? pv.via : null;
    sessions.push({
      peer_id: p.id,
      name: p.name,
      prefix: p.prefix.text,
      path: cls,
      endpoint: cls === "relay" || cls === "none" ? null : fmtEp(pv.endpoint),
      via,
      rtt_ms: pv.rttMs === null ? null : Math.round(pv.rttMs * 100) / 100,
      cipher: live ? d.sessions.cipherOf(p) : null,
      last_handshake: iso(wallOf(lastHs)),
      rx_bytes: v.peerCounters[c + PC_RX_BYTES]! + d.counters.baseline(p.id, "rx_bytes"),
      tx_bytes: v.peerCounters[c + PC_TX_BYTES]! + d.counters.baseline(p.id, "tx_bytes"),
      rx_packets: v.peerCounters[c + PC_RX_PACKETS]! + d.counters.baseline(p.id, "rx_packets"),
      tx_packets: v.peerCounters[c + PC_TX_PACKETS]! + d.counters.baseline(p.id, "tx_packets"),
    });
    peers.push({
      peer_id: p.id,
      name: p.name,
      prefix: p.prefix.text,
      relay_capable: p.relayCapable,
      wireguard_only: p.wireguardOnly,
      bootstrap: p.bootstrap,
      static_endpoint: p.staticEndpointText,
      path: cls,
      session: live,
      last_handshake: iso(wallOf(lastHs)),
      last_seen: iso(wallOf(v.peerCounters[c + PC_LAST_RX_MS]!)),
    });
  }
  const routes: RouteView[] = [
    { prefix: cfg.tun.prefix.text, kind: "local", peer_id: null, name: cfg.node.name, path: "none", installed: true },
    ...d.peers.all().map((p) => ({
      prefix: p.prefix.text,
      kind: "peer" as const,
      peer_id: p.id,
      name: p.name,
      path: sessions.find((s) => s.peer_id === p.id)?.path ?? ("none" as PathClass),
      installed: true,
    })),
  ];
  const status: StatusView = {
    source: "live",
    node: cfg.node.name,
    peer_id: d.identity.peerId,
    fingerprint: d.identity.fingerprint,
    network_id: cfg.node.networkId,
    tun: cfg.tun.name,
    address: `${formatIPv4(cfg.tun.address)}/${cfg.tun.prefixLen}`,
    prefix: cfg.tun.prefix.text,
    listen_port: cfg.node.listenPort,
    daemon: {
      phase: d.phase,
      pid: process.pid,
      started_at: iso(d.startedAt),
      uptime_s: Math.round((monoNow() - d.startedMono) / 1000),
    },
    peers: { total: d.peers.size, with_session: withSession },
    paths,
    aead: aeadBackendInfo().active,
    memory: memoryView(d),
  };
  return { status, peers, routes, sessions, counters: countersToJson(d.counters.snapshot()) };
}

function memoryView(d: Daemon): StatusView["memory"] {
  const m = process.memoryUsage();
  const worker = (slot: number) => {
    const kib = Atomics.load(d.views.misc, slot);
    return kib > 0 ? kib * 1024 : null;
  };
  return { rss_bytes: m.rss, js_heap_used_bytes: { main: m.heapUsed, tx: worker(HEAP_KIB_TX), rx: worker(HEAP_KIB_RX) } };
}
