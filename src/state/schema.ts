// The state database schema (drizzle). migrations/*.sql create exactly these tables; a unit test
// compares PRAGMA table_info with this file so the two cannot drift. Timestamps are Unix ms.

import { sqliteTable, text, integer, real, blob, primaryKey } from "drizzle-orm/sqlite-core";

/** The host's identity: a single row (id = 1). */
export const identity = sqliteTable("identity", {
  id: integer("id").primaryKey(),
  secretSeed: blob("secret_seed", { mode: "buffer" }).notNull(),
  publicKey: blob("public_key", { mode: "buffer" }).notNull(),
  peerId: text("peer_id").notNull(),
  fingerprint: text("fingerprint").notNull(),
  createdAt: integer("created_at").notNull(),
});

/** Allowed peers (from the config) with what the daemon learned about them. */
export const peers = sqliteTable("peers", {
  peerId: text("peer_id").primaryKey(), // vine peer id, or "wg:<base64 key>" for a plain WireGuard peer
  name: text("name").notNull(),
  prefix: text("prefix").notNull(),
  source: text("source").notNull(), // config | learned
  relayCapable: integer("relay_capable").notNull().default(0),
  wireguardOnly: integer("wireguard_only").notNull().default(0),
  staticEndpoint: text("static_endpoint"),
  lastEndpoint: text("last_endpoint"),
  lastPath: text("last_path"),
  lastVia: text("last_via"),
  lastSeen: integer("last_seen"),
  lastHandshake: integer("last_handshake"),
  updatedAt: integer("updated_at").notNull(),
});

/** One session row per allowed peer: the current path and traffic totals. */
export const sessions = sqliteTable("sessions", {
  peerId: text("peer_id").primaryKey(),
  path: text("path").notNull(), // direct | signaling_then_direct | relay | none
  endpoint: text("endpoint"),
  via: text("via"),
  establishedAt: integer("established_at"),
  lastHandshake: integer("last_handshake"),
  rttMs: real("rtt_ms"),
  cipher: text("cipher"), // chacha20-poly1305 | aes-256-gcm; null without a session
  rxBytes: integer("rx_bytes").notNull().default(0),
  txBytes: integer("tx_bytes").notNull().default(0),
  rxPackets: integer("rx_packets").notNull().default(0),
  txPackets: integer("tx_packets").notNull().default(0),
  updatedAt: integer("updated_at").notNull(),
});

/** Overlay routes: the local prefix and one per peer prefix. */
export const routes = sqliteTable("routes", {
  prefix: text("prefix").primaryKey(),
  peerId: text("peer_id"),
  kind: text("kind").notNull(), // local | peer
  installed: integer("installed").notNull().default(0),
  updatedAt: integer("updated_at").notNull(),
});

/** Counters, monotonic across restarts. scope = "node" or a peer_id. */
export const counters = sqliteTable(
  "counters",
  {
    scope: text("scope").notNull(),
    name: text("name").notNull(),
    value: integer("value").notNull().default(0),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.name] })],
);

/** Signed snapshots for audits. */
export const snapshots = sqliteTable("snapshots", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  createdAt: integer("created_at").notNull(),
  signer: text("signer").notNull(),
  document: text("document").notNull(),
  signature: text("signature").notNull(),
});

/** Session and path changes, daemon starts and stops, reloads. */
export const events = sqliteTable("events", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  at: integer("at").notNull(),
  kind: text("kind").notNull(),
  peerId: text("peer_id"),
  fromPath: text("from_path"),
  toPath: text("to_path"),
  detail: text("detail"),
});

/** The TAI64N timestamp of the last handshake initiation sent to each peer (src/wg/initiation-timestamps.ts). */
export const initiationTimestamps = sqliteTable("initiation_timestamps", {
  peerKey: text("peer_key").primaryKey(), // X25519 public key, base64
  tai64n: blob("tai64n", { mode: "buffer" }).notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Daemon bookkeeping (key/value): last start, phase, what is installed in the kernel. */
export const daemon = sqliteTable("daemon", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Applied migrations. */
export const schemaMigrations = sqliteTable("schema_migrations", {
  id: text("id").primaryKey(),
  appliedAt: integer("applied_at").notNull(),
});
