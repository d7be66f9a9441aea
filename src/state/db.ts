// Opening the state database: directory 0700, files 0600 (whatever the umask), WAL mode, and the
// embedded migrations applied in one transaction each.

import { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as schema from "./schema.ts";
import { MIGRATIONS } from "./migrations.ts";

export const DEFAULT_STATE_DIR = "/var/lib/libvine";
export const DB_FILE = "vine.db";

export interface StateStore {
  path: string;
  sqlite: Database;
  db: BunSQLiteDatabase<typeof schema>;
  close(): void;
}

export class StateError extends Error {}

export function stateDbPath(stateDir: string): string {
  return join(stateDir, DB_FILE);
}

/**
 * Why the daemon cannot run on `stateDir`, in words an operator can act on, or null when it can:
 * the directory must exist, hold this host's identity (vine.db), and be writable (the daemon writes
 * its state, pidfile, control socket and log there). Checked before anything is created or changed.
 */
export function stateDirProblem(stateDir: string): string | null {
  let st;
  try {
    st = statSync(stateDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return `state directory ${stateDir} does not exist: create this host's identity there with \`vine identity init --state-dir ${stateDir}\`, or point state_dir at the directory that holds it`;
    return `cannot read state directory ${stateDir}: ${(e as Error).message}`;
  }
  if (!st.isDirectory()) return `state directory ${stateDir} is not a directory: point state_dir at a directory (mode 0700)`;
  const path = stateDbPath(stateDir);
  if (!existsSync(path)) return `no state database in ${stateDir} (${DB_FILE} is missing): create this host's identity with \`vine identity init --state-dir ${stateDir}\`, or point state_dir at the directory that holds it`;
  for (const [what, target] of [["state directory", stateDir], ["state database", path]] as const) {
    try {
      accessSync(target, constants.R_OK | constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EROFS") return `${what} ${target} is on a read-only file system: the daemon writes its state, pidfile and control socket there; remount it read-write or point state_dir at a writable directory`;
      if (code === "EACCES" || code === "EPERM") return `${what} ${target} is not writable by this user (uid ${process.getuid?.()}): run the daemon as its owner (root), or fix the owner/mode`;
      return `cannot write ${what} ${target}: ${(e as Error).message}`;
    }
  }
  return null;
}

export function openState(stateDir: string, opts: { create?: boolean; readonly?: boolean } = {}): StateStore {
  const path = stateDbPath(stateDir);
  if (!existsSync(path)) {
    if (!opts.create) throw new StateError(`no state database at ${path}: run \`vine identity init --state-dir ${stateDir}\``);
    if (!existsSync(stateDir)) {
      const old = process.umask(0o077);
      try {
        mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      } finally {
        process.umask(old);
      }
      chmodSync(stateDir, 0o700);
    }
  }
  const st = statSync(stateDir);
  if (!st.isDirectory()) throw new StateError(`${stateDir} is not a directory`);
  // The directory holds the identity: one that others can write is not private (never chmod it for
  // the operator: it may be shared, like /tmp).
  if (!opts.readonly && (st.mode & 0o022) !== 0) {
    throw new StateError(`state directory ${stateDir} is writable by others (mode ${(st.mode & 0o777).toString(8)}): use a private directory (mode 0700)`);
  }
  const old = process.umask(0o077);
  let sqlite: Database;
  try {
    sqlite = opts.readonly ? new Database(path, { readonly: true }) : new Database(path, { create: true });
  } catch (e) {
    throw new StateError(`cannot open ${path}: ${(e as Error).message}`);
  } finally {
    process.umask(old);
  }
  sqlite.exec("PRAGMA busy_timeout = 5000");
  if (!opts.readonly) {
    sqlite.exec("PRAGMA journal_mode = WAL");
    sqlite.exec("PRAGMA synchronous = NORMAL");
    sqlite.exec("PRAGMA foreign_keys = ON");
    migrate(sqlite);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  }
  const db = drizzle(sqlite, { schema });
  return { path, sqlite, db, close: () => sqlite.close() };
}

function migrate(sqlite: Database): void {
  sqlite.exec("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const applied = new Set((sqlite.query("SELECT id FROM schema_migrations").all() as { id: string }[]).map((r) => r.id));
  for (const m of MIGRATIONS) {
    if (applied.has(m.id)) continue;
    sqlite.transaction(() => {
      sqlite.exec(m.sql);
      sqlite.query("INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)").run(m.id, Date.now());
    })();
  }
}
