// The book documents what exists: every command, config key, counter and state table in the code
// appears in book/src, and the book's TOML examples parse.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { getTableName, is } from "drizzle-orm";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import { KEYS } from "../../src/config/schema.ts";
import { NODE_COUNTERS } from "../../src/dataplane/tables.ts";
import { PEER_TABLE_COUNTERS } from "../../src/daemon/counters.ts";
import * as schema from "../../src/state/schema.ts";
import { identity } from "../../src/cli/identity.ts";
import { config } from "../../src/cli/config.ts";
import { daemon } from "../../src/cli/daemon.ts";
import { doctor } from "../../src/cli/doctor.ts";
import { counters, peers, ping, routes, sessions, snapshot, status } from "../../src/cli/ops.ts";

const root = join(import.meta.dir, "../..");
const bookDir = join(root, "book/src");
const book = readdirSync(bookDir)
  .filter((f) => f.endsWith(".md"))
  .map((f) => readFileSync(join(bookDir, f), "utf8"))
  .join("\n");

type Cmd = { subCommands?: unknown; args?: unknown };

function commandPaths(prefix: string, cmd: Cmd): string[] {
  const subs = cmd.subCommands as Record<string, Cmd> | undefined;
  if (!subs) return [prefix];
  return Object.entries(subs).flatMap(([name, sub]) => commandPaths(`${prefix} ${name}`, sub));
}

describe("the book", () => {
  test("documents every command", () => {
    const groups: Record<string, Cmd> = { identity, config, daemon, doctor, status, peers, routes, sessions, counters, ping, snapshot };
    const paths = Object.entries(groups).flatMap(([name, cmd]) => commandPaths(`vine ${name}`, cmd));
    expect(paths.length).toBeGreaterThan(15);
    const missing = paths.filter((p) => {
      const [, group, sub] = p.split(" ");
      return !book.includes(p) && !(sub && book.includes(`vine ${group}`) && book.includes(`\`${sub}\``));
    });
    expect(missing).toEqual([]);
  });

  test("documents every config key", () => {
    const missing = Object.entries(KEYS).flatMap(([section, keys]) => Object.keys(keys).filter((k) => !book.includes(`\`${k}\``)).map((k) => `${section}.${k}`));
    expect(missing).toEqual([]);
  });

  test("documents every counter", () => {
    const src = readdirSync(join(root, "src/daemon"))
      .map((f) => readFileSync(join(root, "src/daemon", f), "utf8"))
      .join("\n");
    const incremented = [...src.matchAll(/counters\.inc\("([a-z0-9_]+)"/g)].map((m) => m[1]!);
    const names = new Set([...NODE_COUNTERS, ...Object.keys(PEER_TABLE_COUNTERS), ...incremented]);
    expect(names.size).toBeGreaterThan(40);
    const missing = [...names].filter((n) => !book.includes(n));
    expect(missing).toEqual([]);
  });

  test("documents every state table", () => {
    const tables = Object.values(schema)
      .filter((t) => is(t, SQLiteTable))
      .map((t) => getTableName(t as SQLiteTable));
    expect(tables.length).toBeGreaterThanOrEqual(8);
    const missing = tables.filter((t) => !book.includes(`\`${t}\``));
    expect(missing).toEqual([]);
  });

  test("TOML examples with a [node] section parse", () => {
    const blocks = [...book.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes("[node]"));
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) expect(() => parse(b)).not.toThrow();
  });
});
