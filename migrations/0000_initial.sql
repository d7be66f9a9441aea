-- vine state database, version 1. Timestamps are Unix milliseconds.
CREATE TABLE identity (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  secret_seed BLOB NOT NULL,
  public_key BLOB NOT NULL,
  peer_id TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE peers (
  peer_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  source TEXT NOT NULL,
  relay_capable INTEGER NOT NULL DEFAULT 0,
  wireguard_only INTEGER NOT NULL DEFAULT 0,
  static_endpoint TEXT,
  last_endpoint TEXT,
  last_path TEXT,
  last_via TEXT,
  last_seen INTEGER,
  last_handshake INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  peer_id TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  endpoint TEXT,
  via TEXT,
  established_at INTEGER,
  last_handshake INTEGER,
  rtt_ms REAL,
  rx_bytes INTEGER NOT NULL DEFAULT 0,
  tx_bytes INTEGER NOT NULL DEFAULT 0,
  rx_packets INTEGER NOT NULL DEFAULT 0,
  tx_packets INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);
CREATE TABLE routes (
  prefix TEXT PRIMARY KEY,
  peer_id TEXT,
  kind TEXT NOT NULL,
  installed INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);
CREATE TABLE counters (
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
);
CREATE TABLE snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at INTEGER NOT NULL,
  signer TEXT NOT NULL,
  document TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  peer_id TEXT,
  from_path TEXT,
  to_path TEXT,
  detail TEXT
);
CREATE INDEX events_at ON events (at);
CREATE TABLE daemon (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
