// Durable state: what the daemon writes to SQLite and reads back at start (warm restart).
//
// Writes are batched: the daemon calls flush() about once a second (and at stop), and each flush
// is one transaction, so a crash loses at most the last second and never leaves half a batch.
// Events are queued as they happen and written with the next flush.

import { desc, eq, sql } from "drizzle-orm";
import type { StateStore } from "../state/db.ts";
import * as schema from "../state/schema.ts";
import type { VineConfig } from "../config/index.ts";
import type { Daemon } from "./daemon.ts";
import type { PeerRecord } from "./peer-set.ts";
import type { Log } from "./log.ts";
import type { SnapshotDocument, SnapshotFile } from "./snapshot.ts";
import { NC } from "../dataplane/tables.ts";
import { monoNow } from "../clock.ts";
import type { TimestampStore } from "../wg/initiation-timestamps.ts";

interface QueuedEvent {
  at: number;
  kind: string;
  peerId: string | null;
  fromPath: string | null;
  toPath: string | null;
  detail: string | null;
}

export interface InstalledState {
  pid: number;
  tun: string;
  routes: string[];
}

/** How often an idle node writes what only probes and keepalives changed (RTTs, probe counters). */
export const IDLE_FLUSH_MS = 10_000;

export class Persistence {
  private readonly queue: QueuedEvent[] = [];
  /** What the last flush wrote, so that an idle daemon writes nothing. */
  private readonly written = new Map<string, string>();

  private changed(key: string, value: unknown): boolean {
    const v = JSON.stringify(value);
    if (this.written.get(key) === v) return false;
    this.written.set(key, v);
    return true;
  }

  /**
   * Row writes that failed (disk full, read-only file system), keyed by what they write: retried at
   * the start of the next flush, so the rows catch up once writes succeed again.
   */
  private readonly pending = new Map<string, () => void>();
  /** Whether the last flush committed a transaction (false: it failed, or had nothing to write). */
  wroteLastFlush = false;

  constructor(
    private readonly store: StateStore,
    private readonly log: Log,
    /** Called for each failed write outside flush(); flush() itself throws. Default: rethrow. */
    private readonly onWriteError: (e: unknown) => void = (e) => {
      throw e;
    },
  ) {}

  /** Run a write now; when it fails, report it and keep it for the next flush. */
  private guard(key: string, write: () => void): void {
    try {
      write();
      this.pending.delete(key);
    } catch (e) {
      this.pending.set(key, write);
      this.onWriteError(e);
    }
  }

  private get db() {
    return this.store.db;
  }

  // ------------------------------------------------------------------ start-up reads

  loadCounters(): { scope: string; name: string; value: number }[] {
    return this.db.select({ scope: schema.counters.scope, name: schema.counters.name, value: schema.counters.value }).from(schema.counters).all();
  }

  /** Last good path per peer: the warm-restart hint (endpoint first, without waiting for bootstrap). */
  lastPaths(): Map<string, { cls: string; endpoint: string | null; via: string | null }> {
    const rows = this.db.select().from(schema.peers).all();
    const out = new Map<string, { cls: string; endpoint: string | null; via: string | null }>();
    for (const r of rows) {
      if (r.lastPath && r.lastPath !== "none" && (r.lastEndpoint || r.lastVia)) out.set(r.peerId, { cls: r.lastPath, endpoint: r.lastEndpoint ?? null, via: r.lastVia ?? null });
    }
    return out;
  }

  // ------------------------------------------------------------------ handshake initiation timestamps

  /**
   * The last initiation timestamp per peer, read once per peer and written at once (not with the
   * batch): it must be on disk before a crash can make the next run forget it. A failed write is
   * reported and retried with the next flush; the daemon keeps the value in memory meanwhile.
   */
  readonly initiationTimestamps: TimestampStore = {
    load: (peerKey) => {
      const row = this.db
        .select({ ts: schema.initiationTimestamps.tai64n })
        .from(schema.initiationTimestamps)
        .where(eq(schema.initiationTimestamps.peerKey, Buffer.from(peerKey).toString("base64")))
        .get();
      return row ? new Uint8Array(row.ts) : null;
    },
    save: (peerKey, timestamp) => {
      const key = Buffer.from(peerKey).toString("base64");
      const value = Buffer.from(timestamp);
      this.guard(`initiation-timestamp:${key}`, () => {
        const now = Date.now();
        this.db
          .insert(schema.initiationTimestamps)
          .values({ peerKey: key, tai64n: value, updatedAt: now })
          .onConflictDoUpdate({ target: schema.initiationTimestamps.peerKey, set: { tai64n: value, updatedAt: now } })
          .run();
      });
    },
  };

  // ------------------------------------------------------------------ daemon bookkeeping (key/value)

  private setKv(key: string, value: string): void {
    const now = Date.now();
    this.db
      .insert(schema.daemon)
      .values({ key, value, updatedAt: now })
      .onConflictDoUpdate({ target: schema.daemon.key, set: { value, updatedAt: now } })
      .run();
  }

  private getKv(key: string): string | null {
    return this.db.select().from(schema.daemon).where(eq(schema.daemon.key, key)).get()?.value ?? null;
  }

  /** The last start, with what `vine status` shows from saved state when the daemon is down. */
  recordStart(pid: number, config: VineConfig, aead = ""): void {
    const value = JSON.stringify({
      pid,
      at: Date.now(),
      node: config.node.name,
      config: config.file,
      network_id: config.node.networkId,
      tun: config.tun.name,
      address: `${config.tun.addressText}/${config.tun.prefixLen}`,
      prefix: config.tun.prefix.text,
      listen_port: config.node.listenPort,
      aead,
    });
    this.guard("last_start", () => this.setKv("last_start", value));
  }

  /** What this run installed in the kernel, so the next start can clean up after a crash. */
  recordInstalled(state: Omit<InstalledState, "pid"> | null): void {
    const value = JSON.stringify(state ? { pid: process.pid, ...state } : null);
    this.guard("installed", () => this.setKv("installed", value));
  }

  previousInstall(): InstalledState | null {
    try {
      return JSON.parse(this.getKv("installed") ?? "null") as InstalledState | null;
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------ config-derived rows

  savePeers(peers: PeerRecord[], config: VineConfig): void {
    const rows = peers.map((p) => ({ ...p }));
    this.guard("peers", () => this.writePeers(rows, config));
  }

  private writePeers(peers: PeerRecord[], config: VineConfig): void {
    const now = Date.now();
    const ids = new Set(peers.map((p) => p.id));
    this.store.sqlite.transaction(() => {
      for (const p of peers) {
        const row = {
          peerId: p.id,
          name: p.name,
          prefix: p.prefix.text,
          source: "config",
          relayCapable: p.relayCapable ? 1 : 0,
          wireguardOnly: p.wireguardOnly ? 1 : 0,
          staticEndpoint: p.staticEndpointText,
          updatedAt: now,
        };
        this.db
          .insert(schema.peers)
          .values(row)
          .onConflictDoUpdate({ target: schema.peers.peerId, set: { name: row.name, prefix: row.prefix, source: row.source, relayCapable: row.relayCapable, wireguardOnly: row.wireguardOnly, staticEndpoint: row.staticEndpoint, updatedAt: now } })
          .run();
      }
      // Peers no longer in the config are removed with their session rows; their events stay.
      for (const r of this.db.select({ peerId: schema.peers.peerId }).from(schema.peers).all()) {
        if (!ids.has(r.peerId)) {
          this.db.delete(schema.sessions).where(eq(schema.sessions.peerId, r.peerId)).run();
          this.db.delete(schema.peers).where(eq(schema.peers.peerId, r.peerId)).run();
        }
      }
      void config;
    })();
  }

  saveRoutes(config: VineConfig, peers: PeerRecord[]): void {
    const rows = peers.map((p) => ({ ...p }));
    this.guard("routes", () => this.writeRoutes(config, rows));
  }

  private writeRoutes(config: VineConfig, peers: PeerRecord[]): void {
    const now = Date.now();
    this.store.sqlite.transaction(() => {
      this.db.delete(schema.routes).run();
      this.db.insert(schema.routes).values({ prefix: config.tun.prefix.text, peerId: null, kind: "local", installed: 1, updatedAt: now }).run();
      for (const p of peers) this.db.insert(schema.routes).values({ prefix: p.prefix.text, peerId: p.id, kind: "peer", installed: 1, updatedAt: now }).run();
    })();
  }

  // ------------------------------------------------------------------ events

  event(kind: string, peerId: string | null, fromPath: string | null, toPath: string | null, detail: unknown): void {
    this.queue.push({ at: Date.now(), kind, peerId, fromPath, toPath, detail: detail === null || detail === undefined ? null : JSON.stringify(detail) });
    if (this.queue.length > 10_000) this.queue.splice(0, this.queue.length - 10_000);
  }

  recentEvents(limit: number): SnapshotDocument["events"] {
    return this.db
      .select()
      .from(schema.events)
      .orderBy(desc(schema.events.id))
      .limit(limit)
      .all()
      .reverse()
      .map((e) => ({ at: new Date(e.at).toISOString(), kind: e.kind, peer_id: e.peerId ?? null, from_path: e.fromPath ?? null, to_path: e.toPath ?? null, detail: e.detail ? safeJson(e.detail) : null }));
  }

  saveSnapshot(s: SnapshotFile): number {
    const r = this.db
      .insert(schema.snapshots)
      .values({ createdAt: Date.parse(s.document.created_at), signer: s.signer, document: JSON.stringify(s.document), signature: s.signature })
      .returning({ id: schema.snapshots.id })
      .get();
    return r.id;
  }

  // ------------------------------------------------------------------ the periodic batch

  private lastFingerprint = "";
  private lastFlushAt = 0;

  /** Write what changed since the last flush; an idle second (no traffic, no events) writes nothing. */
  flush(d: Daemon, force = false): void {
    const now = Date.now();
    const v = d.views;
    // What moves while data flows, handshakes run or packets are dropped. An idle node's own path
    // probes and keepalives (control messages, RTT samples, probe counters) do not count: they are
    // written every IDLE_FLUSH_MS instead of every second, so an idle daemon stays cheap.
    let traffic = 0;
    for (const region of v.nodeRegions) {
      for (let i = 0; i < region.length; i++) if (i !== NC.control_messages_in && i !== NC.keepalives_in) traffic += region[i]!;
    }
    const fingerprint = `${traffic}:${d.phase}:${this.queue.length}`;
    this.wroteLastFlush = false;
    const mono = monoNow();
    if (!force && fingerprint === this.lastFingerprint && this.queue.length === 0 && this.pending.size === 0 && mono - this.lastFlushAt < IDLE_FLUSH_MS) return;
    this.lastFingerprint = fingerprint;
    this.lastFlushAt = mono;
    const views = d.viewsNow();
    const counters = d.counters.snapshot();
    const events = this.queue.splice(0);
    try {
      const retries = [...this.pending.values()];
      this.store.sqlite.transaction(() => {
        for (const write of retries) write();
        for (const e of events) this.db.insert(schema.events).values(e).run();
        for (const [scope, m] of counters) {
          for (const [name, value] of m) {
            if (!this.changed(`c:${scope}:${name}`, value)) continue;
            this.db
              .insert(schema.counters)
              .values({ scope, name, value, updatedAt: now })
              .onConflictDoUpdate({ target: [schema.counters.scope, schema.counters.name], set: { value, updatedAt: now } })
              .run();
          }
        }
        for (const s of views.sessions) {
          if (!this.changed(`s:${s.peer_id}`, s)) continue;
          const hs = s.last_handshake ? Date.parse(s.last_handshake) : null;
          const row = {
            peerId: s.peer_id,
            path: s.path,
            endpoint: s.endpoint,
            via: s.via,
            lastHandshake: hs,
            rttMs: s.rtt_ms,
            cipher: s.cipher,
            rxBytes: s.rx_bytes,
            txBytes: s.tx_bytes,
            rxPackets: s.rx_packets,
            txPackets: s.tx_packets,
            updatedAt: now,
          };
          this.db
            .insert(schema.sessions)
            .values({ ...row, establishedAt: hs })
            .onConflictDoUpdate({ target: schema.sessions.peerId, set: row })
            .run();
        }
        for (const p of views.peers) {
          const s = views.sessions.find((x) => x.peer_id === p.peer_id);
          if (!this.changed(`p:${p.peer_id}`, [p.last_seen, p.last_handshake, s?.path, s?.endpoint, s?.via])) continue;
          if (!s || s.path === "none") {
            this.db.update(schema.peers).set({ lastSeen: p.last_seen ? Date.parse(p.last_seen) : sql`last_seen`, updatedAt: now }).where(eq(schema.peers.peerId, p.peer_id)).run();
            continue;
          }
          this.db
            .update(schema.peers)
            .set({
              lastEndpoint: s.endpoint,
              lastPath: s.path,
              lastVia: s.via,
              lastSeen: p.last_seen ? Date.parse(p.last_seen) : null,
              lastHandshake: s.last_handshake ? Date.parse(s.last_handshake) : null,
              updatedAt: now,
            })
            .where(eq(schema.peers.peerId, p.peer_id))
            .run();
        }
        if (this.changed("phase", d.phase)) this.setKv("phase", JSON.stringify({ phase: d.phase, pid: process.pid, at: now, started_at: d.startedAt }));
      })();
      this.pending.clear();
      this.wroteLastFlush = true;
    } catch (e) {
      // Nothing written: forget what we thought we wrote, so the next flush retries everything
      // (even when nothing changes meanwhile).
      this.written.clear();
      this.lastFingerprint = "";
      // Keep the events for the next attempt (disk full, read-only directory...).
      this.queue.unshift(...events);
      throw e;
    }
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
