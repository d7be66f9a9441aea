// State store: private modes whatever the umask, idempotent migrations, no drift between the SQL
// migrations and the drizzle schema, the table list, identity round trip, and clear errors.

import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { DB_FILE, openState, StateError, stateDbPath } from "../../src/state/db.ts";
import { MIGRATIONS } from "../../src/state/migrations.ts";
import * as schema from "../../src/state/schema.ts";
import { generateIdentity, identityCreatedAt, loadIdentity, saveIdentity } from "../../src/identity/index.ts";

const root = mkdtempSync(join(tmpdir(), "vine-state-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `s${n++}`);

const DRIZZLE_TABLES: SQLiteTable[] = (Object.values(schema) as unknown[]).filter((v): v is SQLiteTable => v instanceof SQLiteTable);
const EXPECTED_TABLES = ["counters", "daemon", "events", "identity", "initiation_timestamps", "peers", "routes", "schema_migrations", "sessions", "snapshots"];

function userTables(store: ReturnType<typeof openState>): string[] {
  return (store.sqlite.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
}

describe("openState", () => {
  test("creates the directory 0700 and the database 0600 even with umask 022", () => {
    const old = process.umask(0o022);
    try {
      const dir = join(fresh(), "nested", "state");
      const store = openState(dir, { create: true });
      store.close();
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(store.path).toBe(join(dir, DB_FILE));
      expect(stateDbPath(dir)).toBe(store.path);
      expect(statSync(store.path).mode & 0o777).toBe(0o600);
      for (const f of [`${store.path}-wal`, `${store.path}-shm`]) if (existsSync(f)) expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(process.umask(0o022)).toBe(0o022); // openState put the caller's umask back
    } finally {
      process.umask(old);
    }
  });

  test("WAL mode and foreign keys are on", () => {
    const store = openState(fresh(), { create: true });
    try {
      expect((store.sqlite.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
      expect((store.sqlite.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
    } finally {
      store.close();
    }
  });

  test("an existing private directory is used as is; the database inside is still 0600", () => {
    const old = process.umask(0o000);
    try {
      const dir = fresh();
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      const store = openState(dir, { create: true });
      store.close();
      expect(statSync(dir).mode & 0o777).toBe(0o755); // never chmods the operator's directory
      expect(statSync(store.path).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  test.each([0o777, 0o775, 0o757])("a directory writable by others (mode %o) is refused", (mode) => {
    const dir = fresh();
    mkdirSync(dir);
    chmodSync(dir, mode);
    expect(() => openState(dir, { create: true })).toThrow(StateError);
    expect(() => openState(dir, { create: true })).toThrow(`state directory ${dir} is writable by others (mode ${mode.toString(8)})`);
    expect(existsSync(join(dir, DB_FILE))).toBe(false);
  });

  test("a missing database without create is a clear error naming the fix", () => {
    const dir = fresh();
    let err: unknown;
    try {
      openState(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toBe(`no state database at ${join(dir, DB_FILE)}: run \`vine identity init --state-dir ${dir}\``);
    expect(existsSync(dir)).toBe(false); // nothing was created
    expect(() => openState(dir, { readonly: true })).toThrow("no state database at");
  });

  test("a state dir that is a file is refused", () => {
    const dir = fresh();
    writeFileSync(dir, "x");
    expect(() => openState(dir, { create: true })).toThrow(new StateError(`${dir} is not a directory`));
  });

  test("migrations are idempotent: open twice, open read-only", () => {
    const dir = fresh();
    const a = openState(dir, { create: true });
    a.sqlite.exec("INSERT INTO daemon (key, value, updated_at) VALUES ('k', 'v', 1)");
    a.close();
    const b = openState(dir);
    try {
      const applied = b.sqlite.query("SELECT id FROM schema_migrations ORDER BY id").all() as { id: string }[];
      expect(applied.map((r) => r.id)).toEqual(MIGRATIONS.map((m) => m.id));
      expect(b.sqlite.query("SELECT value FROM daemon WHERE key = 'k'").get()).toEqual({ value: "v" });
      expect(userTables(b)).toEqual(EXPECTED_TABLES);
    } finally {
      b.close();
    }
    const c = openState(dir, { readonly: true });
    try {
      expect(userTables(c)).toEqual(EXPECTED_TABLES);
      expect(() => c.sqlite.exec("INSERT INTO daemon (key, value, updated_at) VALUES ('x', 'y', 2)")).toThrow();
    } finally {
      c.close();
    }
  });

  test("migration ids are unique and in order", () => {
    const ids = MIGRATIONS.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const m of MIGRATIONS) expect(m.sql.length).toBeGreaterThan(0);
  });
});

describe("schema drift: migrations/*.sql versus src/state/schema.ts", () => {
  const store = openState(fresh(), { create: true });
  afterAll(() => store.close());

  test("the table list (.tables) is exactly the drizzle tables", () => {
    const drizzleNames = DRIZZLE_TABLES.map((t) => getTableConfig(t).name).sort();
    expect(drizzleNames).toEqual(EXPECTED_TABLES);
    expect(userTables(store)).toEqual(drizzleNames);
    // and the operator's list from the task: every table the book promises is there
    for (const t of ["identity", "peers", "sessions", "routes", "counters", "snapshots", "events", "daemon"]) expect(userTables(store)).toContain(t);
  });

  test.each(DRIZZLE_TABLES.map((t) => [getTableConfig(t).name, t] as const))("%s: columns, types, not-null, primary key, defaults", (name, table) => {
    const cfg = getTableConfig(table);
    type Info = { cid: number; name: string; type: string; notnull: number; dflt_value: string | null; pk: number };
    const info = store.sqlite.query(`PRAGMA table_info(${name})`).all() as Info[];
    expect(info.map((c) => c.name).sort()).toEqual(cfg.columns.map((c) => c.name).sort());
    const compositePk = cfg.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name));
    for (const col of cfg.columns) {
      const row = info.find((c) => c.name === col.name)!;
      expect(`${name}.${col.name} ${row.type.toLowerCase()}`).toBe(`${name}.${col.name} ${col.getSQLType().toLowerCase()}`);
      const isPk = col.primary || compositePk.includes(col.name);
      expect(`${name}.${col.name} pk=${row.pk > 0}`).toBe(`${name}.${col.name} pk=${isPk}`);
      // SQLite reports notnull = 0 for PRIMARY KEY columns declared without NOT NULL; drizzle marks
      // primaryKey() columns not-null. Compare not-null for every other column.
      if (!col.primary) expect(`${name}.${col.name} notnull=${row.notnull === 1}`).toBe(`${name}.${col.name} notnull=${col.notNull}`);
      const dflt = col.default === undefined ? null : String(col.default);
      expect(`${name}.${col.name} default=${row.dflt_value}`).toBe(`${name}.${col.name} default=${dflt}`);
    }
    if (compositePk.length > 0) {
      const order = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      expect(order).toEqual(compositePk);
    }
  });

  test("drizzle can insert and read a row in every table (the schema is usable, not just similar)", () => {
    const now = Date.now();
    const db = store.db;
    db.insert(schema.peers).values({ peerId: "p", name: "n", prefix: "10.0.0.0/24", source: "config", updatedAt: now }).run();
    db.insert(schema.sessions).values({ peerId: "p", path: "none", updatedAt: now }).run();
    db.insert(schema.routes).values({ prefix: "10.0.0.0/24", kind: "peer", peerId: "p", updatedAt: now }).run();
    db.insert(schema.counters).values({ scope: "node", name: "rx", value: 5, updatedAt: now }).run();
    db.insert(schema.snapshots).values({ createdAt: now, signer: "s", document: "{}", signature: "sig" }).run();
    db.insert(schema.events).values({ at: now, kind: "start" }).run();
    db.insert(schema.daemon).values({ key: "phase", value: "up", updatedAt: now }).run();
    expect(db.select().from(schema.peers).get()).toMatchObject({ relayCapable: 0, wireguardOnly: 0, staticEndpoint: null });
    expect(db.select().from(schema.sessions).get()).toMatchObject({ rxBytes: 0, txPackets: 0, rttMs: null });
    expect(db.select().from(schema.counters).get()).toMatchObject({ value: 5 });
    expect(db.select().from(schema.snapshots).get()!.id).toBe(1);
    expect(db.select().from(schema.events).get()!.id).toBe(1);
    // the composite key holds
    expect(() => db.insert(schema.counters).values({ scope: "node", name: "rx", updatedAt: now }).run()).toThrow();
  });

  test("identity allows exactly one row (id = 1)", () => {
    expect(() => store.sqlite.exec("INSERT INTO identity (id, secret_seed, public_key, peer_id, fingerprint, created_at) VALUES (2, x'00', x'00', 'p', 'f', 0)")).toThrow();
  });
});

describe("identity in the store", () => {
  test("save and load round trip; created_at is recorded", () => {
    const dir = fresh();
    const store = openState(dir, { create: true });
    expect(loadIdentity(store)).toBeNull();
    expect(identityCreatedAt(store)).toBeNull();
    const id = generateIdentity();
    const before = Date.now();
    saveIdentity(store, id);
    store.close();
    const again = openState(dir, { readonly: true });
    try {
      const got = loadIdentity(again)!;
      for (const k of ["seed", "publicKey", "x25519Private", "x25519Public"] as const) expect(Buffer.from(got[k]).toString("hex")).toBe(Buffer.from(id[k]).toString("hex"));
      expect(got.peerId).toBe(id.peerId);
      expect(got.fingerprint).toBe(id.fingerprint);
      const at = identityCreatedAt(again)!;
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(Date.now());
      const row = again.sqlite.query("SELECT hex(secret_seed) AS s, length(public_key) AS l, peer_id FROM identity").get() as { s: string; l: number; peer_id: string };
      expect(row.s.toLowerCase()).toBe(Buffer.from(id.seed).toString("hex"));
      expect(row.l).toBe(32);
      expect(row.peer_id).toBe(id.peerId);
    } finally {
      again.close();
    }
  });

  test("saving again replaces the single row", () => {
    const store = openState(fresh(), { create: true });
    try {
      saveIdentity(store, generateIdentity());
      const b = generateIdentity();
      saveIdentity(store, b);
      expect(loadIdentity(store)!.peerId).toBe(b.peerId);
      expect((store.sqlite.query("SELECT count(*) AS n FROM identity").get() as { n: number }).n).toBe(1);
    } finally {
      store.close();
    }
  });

  test("a row whose peer_id does not match its key is refused", () => {
    const store = openState(fresh(), { create: true });
    try {
      saveIdentity(store, generateIdentity());
      store.sqlite.exec(`UPDATE identity SET peer_id = '${generateIdentity().peerId}'`);
      expect(() => loadIdentity(store)).toThrow("is inconsistent");
    } finally {
      store.close();
    }
  });
});
