// Views rebuilt from SQLite when the daemon is not running: the last state it persisted.

import type { Suite } from "../crypto/aead.ts";
import { desc, eq } from "drizzle-orm";
import { openState } from "../state/db.ts";
import * as schema from "../state/schema.ts";
import { loadIdentity } from "../identity/index.ts";
import { countersToJson, iso, type DaemonViews, type PathClass } from "../daemon/views.ts";
import { signSnapshot, SNAPSHOT_KIND, type SnapshotFile } from "../daemon/snapshot.ts";
import type { CounterMap } from "../daemon/counters.ts";
import { loadConfig } from "../config/index.ts";

interface LastStart {
  node?: string;
  pid?: number;
  at?: number;
  config?: string;
  network_id?: string;
  tun?: string;
  address?: string;
  prefix?: string;
  listen_port?: number;
  aead?: string;
}

/**
 * What the status shows about the node when the daemon is down: what the last start recorded, else
 * the config (the one given with -c, else the one the last start used). null when neither says.
 */
function nodeFacts(start: LastStart, configPath: string | undefined) {
  const facts = {
    node: start.node ?? null,
    network_id: start.network_id ?? null,
    tun: start.tun ?? null,
    address: start.address ?? null,
    prefix: start.prefix ?? null,
    listen_port: start.listen_port ?? null,
    aead: start.aead || null,
  };
  if (facts.network_id !== null && facts.tun !== null && facts.address !== null && facts.listen_port !== null) return facts;
  // state written before these were recorded: fill the gaps from the config
  const file = configPath ?? start.config;
  const cfg = file ? loadConfig(file).config : null;
  if (cfg) {
    facts.node ??= cfg.node.name;
    facts.network_id ??= cfg.node.networkId;
    facts.tun ??= cfg.tun.name;
    facts.address ??= `${cfg.tun.addressText}/${cfg.tun.prefixLen}`;
    facts.prefix ??= cfg.tun.prefix.text;
    facts.listen_port ??= cfg.node.listenPort;
  }
  return facts;
}

export function offlineViews(stateDir: string, configPath?: string): DaemonViews {
  const store = openState(stateDir, { readonly: true });
  try {
    const db = store.db;
    const id = loadIdentity(store);
    if (!id) throw new Error(`no identity in ${stateDir}: run \`vine identity init --state-dir ${stateDir}\``);
    const kv = new Map(db.select().from(schema.daemon).all().map((r) => [r.key, r.value]));
    const start = parse<LastStart>(kv.get("last_start")) ?? {};
    const phase = parse<{ phase?: string; at?: number; started_at?: number }>(kv.get("phase")) ?? {};
    const peerRows = db.select().from(schema.peers).all();
    const sessionRows = new Map(db.select().from(schema.sessions).all().map((s) => [s.peerId, s]));
    const routeRows = db.select().from(schema.routes).all();
    const counterRows = db.select().from(schema.counters).all();
    const local = routeRows.find((r) => r.kind === "local");
    const paths: Record<PathClass, number> = { direct: 0, signaling_then_direct: 0, relay: 0, none: 0 };
    const sessions = peerRows.map((p) => {
      const s = sessionRows.get(p.peerId);
      const path = (s?.path ?? "none") as PathClass;
      paths[path]++;
      return {
        peer_id: p.peerId,
        name: p.name,
        prefix: p.prefix,
        path,
        endpoint: s?.endpoint ?? null,
        via: s?.via ?? null,
        rtt_ms: s?.rttMs ?? null,
        cipher: (s?.cipher ?? null) as Suite | null,
        last_handshake: iso(s?.lastHandshake ?? null),
        rx_bytes: s?.rxBytes ?? 0,
        tx_bytes: s?.txBytes ?? 0,
        rx_packets: s?.rxPackets ?? 0,
        tx_packets: s?.txPackets ?? 0,
      };
    });
    const counters: CounterMap = new Map();
    for (const c of counterRows) {
      if (!counters.has(c.scope)) counters.set(c.scope, new Map());
      counters.get(c.scope)!.set(c.name, c.value);
    }
    const facts = nodeFacts(start, configPath);
    // Unknown facts are null (JSON) and "unknown" in text; the StatusView strings are what a live
    // daemon always knows.
    const unknown = null as unknown as string;
    return {
      status: {
        source: "state",
        node: facts.node ?? unknown,
        peer_id: id.peerId,
        fingerprint: id.fingerprint,
        network_id: facts.network_id ?? unknown,
        tun: facts.tun ?? unknown,
        address: facts.address ?? unknown,
        prefix: facts.prefix ?? local?.prefix ?? unknown,
        listen_port: facts.listen_port ?? (null as unknown as number),
        daemon: { phase: "stopped", pid: null, started_at: iso(phase.started_at ?? null), uptime_s: null },
        peers: { total: peerRows.length, with_session: 0 },
        paths,
        aead: facts.aead ?? unknown,
        memory: null,
      },
      peers: peerRows.map((p) => ({
        peer_id: p.peerId,
        name: p.name,
        prefix: p.prefix,
        relay_capable: p.relayCapable === 1,
        wireguard_only: p.wireguardOnly === 1,
        bootstrap: false,
        static_endpoint: p.staticEndpoint ?? null,
        path: (p.lastPath ?? "none") as PathClass,
        session: false,
        last_handshake: iso(p.lastHandshake ?? null),
        last_seen: iso(p.lastSeen ?? null),
      })),
      routes: routeRows.map((r) => ({
        prefix: r.prefix,
        kind: r.kind as "local" | "peer",
        peer_id: r.peerId ?? null,
        name: r.kind === "local" ? (start.node ?? "local") : (peerRows.find((p) => p.peerId === r.peerId)?.name ?? ""),
        path: "none" as PathClass,
        installed: false,
      })),
      sessions,
      counters: countersToJson(counters),
    };
  } finally {
    store.close();
  }
}

/** A snapshot document as text: the stored row `id`, or a new one signed from saved state. */
export function offlineSnapshot(stateDir: string, id: number | null): string {
  if (id === null) {
    const views = offlineViews(stateDir);
    const store = openState(stateDir);
    try {
      const ident = loadIdentity(store)!;
      const events = store.db
        .select()
        .from(schema.events)
        .orderBy(desc(schema.events.id))
        .limit(100)
        .all()
        .reverse()
        .map((e) => ({ at: new Date(e.at).toISOString(), kind: e.kind, peer_id: e.peerId ?? null, from_path: e.fromPath ?? null, to_path: e.toPath ?? null, detail: e.detail ? parse(e.detail) : null }));
      const snap = signSnapshot(ident, views, events);
      store.db.insert(schema.snapshots).values({ createdAt: Date.parse(snap.document.created_at), signer: snap.signer, document: JSON.stringify(snap.document), signature: snap.signature }).run();
      return JSON.stringify(snap, null, 2);
    } finally {
      store.close();
    }
  }
  const store = openState(stateDir, { readonly: true });
  try {
    const row = store.db.select().from(schema.snapshots).where(eq(schema.snapshots.id, id)).get();
    if (!row) throw new Error(`snapshot ${id} not found`);
    const file: SnapshotFile = { kind: SNAPSHOT_KIND, signer: row.signer, signature: row.signature, document: JSON.parse(row.document) };
    return JSON.stringify(file, null, 2);
  } finally {
    store.close();
  }
}

function parse<T = unknown>(s: string | undefined | null): T | null {
  if (!s) return null;
  try {
    return JSON.parse(s) as T;
  } catch {
    return null;
  }
}
