// The book documents what exists: every command and option reachable from src/main.ts, every config
// key, counter, state table and column in the code appears in book/src; the book's TOML examples parse;
// and the sqlite3 queries it prints run as written against a freshly migrated state database.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { getTableColumns, getTableName, is } from "drizzle-orm";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import { KEYS } from "../../src/config/schema.ts";
import { NODE_COUNTERS } from "../../src/dataplane/tables.ts";
import { PEER_TABLE_COUNTERS } from "../../src/daemon/counters.ts";
import * as schema from "../../src/state/schema.ts";
import { openState } from "../../src/state/db.ts";

const root = join(import.meta.dir, "../..");
const bookDir = join(root, "book/src");
const pages = readdirSync(bookDir)
  .filter((f) => f.endsWith(".md"))
  .map((f) => ({ name: f, text: readFileSync(join(bookDir, f), "utf8") }));
const book = pages.map((p) => p.text).join("\n");

type Arg = { type?: string; alias?: string | string[] };
type Cmd = { subCommands?: Record<string, Cmd>; args?: Record<string, Arg> };

/**
 * src/main.ts runs the CLI when imported, so read it instead: the names in its `subCommands: { ... }`
 * and the modules its imports name, then import those modules and walk their citty subCommands.
 */
async function mainCommands(): Promise<{ path: string; cmd: Cmd }[]> {
  const src = readFileSync(join(root, "src/main.ts"), "utf8");
  const listed = /subCommands:\s*\{([^}]*)\}/.exec(src)?.[1];
  if (!listed) throw new Error("no subCommands in src/main.ts");
  const names = listed.split(",").map((s) => s.trim().split(":")[0]!.trim()).filter(Boolean);
  const from = new Map<string, string>();
  for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"(\.\/cli\/[^"]+)"/g)) {
    for (const n of m[1]!.split(",").map((s) => s.trim()).filter(Boolean)) from.set(n, m[2]!);
  }
  const out: { path: string; cmd: Cmd }[] = [];
  const walk = (path: string, cmd: Cmd) => {
    if (cmd.subCommands && Object.keys(cmd.subCommands).length) {
      for (const [n, sub] of Object.entries(cmd.subCommands)) walk(`${path} ${n}`, sub);
    } else out.push({ path, cmd });
  };
  for (const n of names) {
    const file = from.get(n);
    if (!file) throw new Error(`src/main.ts lists ${n} without importing it from ./cli/`);
    const mod = (await import(join(root, "src", file))) as Record<string, Cmd>;
    if (!mod[n]) throw new Error(`${file} exports no ${n}`);
    walk(`vine ${n}`, mod[n]);
  }
  return out;
}

const commands = await mainCommands();

const tables = Object.values(schema).filter((t) => is(t, SQLiteTable)) as SQLiteTable[];

describe("the book", () => {
  test("documents every command reachable from src/main.ts", () => {
    expect(commands.length).toBeGreaterThan(15);
    expect(commands.map((c) => c.path)).toContain("vine daemon reload");
    // "vine identity export-public" verbatim, or its group named with the subcommand in backquotes
    // (a table row such as `vine identity init | show | fingerprint | export-public`)
    const missing = commands
      .map((c) => c.path)
      .filter((p) => {
        const [, group, sub] = p.split(" ");
        return !book.includes(p) && !(sub && book.includes(`vine ${group} `) && new RegExp(`[\`| ]${sub}[\`| ]`).test(book));
      });
    expect(missing).toEqual([]);
  });

  test("documents every option of every command on that command's page", () => {
    const missing: string[] = [];
    for (const { path, cmd } of commands) {
      // the page about this command: the one that names it in its title, else any page naming the command
      const group = path.split(" ")[1]!;
      const page = pages.find((p) => p.text.split("\n")[0]!.includes(`vine ${group}`)) ?? { text: book };
      for (const [name, def] of Object.entries(cmd.args ?? {})) {
        if (def.type === "positional") continue;
        // the long form, or its one-letter alias written as an option (`-c FILE`, `-c,`)
        const aliases = [def.alias ?? []].flat();
        const shown = page.text.includes(`--${name}`) || aliases.some((a) => new RegExp(`(^|[\\s\`(|\\[])-${a}[\\s\`,/]`).test(page.text));
        if (!shown) missing.push(`${path} --${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("documents every config key", () => {
    const missing = Object.entries(KEYS).flatMap(([section, keys]) =>
      Object.keys(keys)
        .filter((k) => !book.includes(`\`${k}\``))
        .map((k) => `${section}.${k}`),
    );
    expect(missing).toEqual([]);
    for (const section of Object.keys(KEYS)) expect(book).toContain(section.includes("peers") ? `[[${section}]]` : `[${section}]`);
  });

  test("documents every counter", () => {
    const src = readdirSync(join(root, "src/daemon"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(root, "src/daemon", f), "utf8"))
      .join("\n");
    const incremented = [...src.matchAll(/counters\.inc\(\s*"([a-z0-9_]+)"/g)].map((m) => m[1]!);
    expect(incremented.length).toBeGreaterThan(10);
    const names = new Set([...NODE_COUNTERS, ...Object.keys(PEER_TABLE_COUNTERS), ...incremented]);
    expect(names.size).toBeGreaterThan(40);
    const counterPage = pages.find((p) => p.name === "counters.md")!.text;
    const missing = [...names].filter((n) => !counterPage.includes(n));
    expect(missing).toEqual([]);
  });

  test("documents every state table and column", () => {
    expect(tables.length).toBeGreaterThanOrEqual(8);
    const statePage = pages.find((p) => p.name === "state.md")!.text;
    const missing: string[] = [];
    for (const t of tables) {
      const name = getTableName(t);
      if (!statePage.includes(`\`${name}\``)) missing.push(name);
      for (const col of Object.values(getTableColumns(t))) {
        if (!statePage.includes(`\`${col.name}\``)) missing.push(`${name}.${col.name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("documents every event kind the daemon records", () => {
    const src = readdirSync(join(root, "src/daemon"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(root, "src/daemon", f), "utf8"))
      .join("\n");
    const kinds = new Set([...src.matchAll(/\.event\(\s*"([a-z_]+)"/g)].map((m) => m[1]!));
    expect(kinds.size).toBeGreaterThanOrEqual(5);
    const statePage = pages.find((p) => p.name === "state.md")!.text;
    expect([...kinds].filter((k) => !statePage.includes(k))).toEqual([]);
  });

  test("TOML examples with a [node] section parse", () => {
    const blocks = [...book.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes("[node]"));
    expect(blocks.length).toBeGreaterThan(1);
    for (const b of blocks) {
      const doc = parse(b) as { node?: { name?: unknown } };
      expect(typeof doc.node?.name).toBe("string");
    }
  });

  describe("sqlite3 queries run as written", () => {
    const dir = mkdtempSync(join(tmpdir(), "vine-book-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    // every `sqlite3 /var/lib/libvine/vine.db "..."` or '...' line in the book (dot commands aside)
    const queries = [...book.matchAll(/sqlite3 \S+vine\.db (?:"([^"]+)"|'([^']+)')/g)].map((m) => (m[1] ?? m[2])!).filter((q) => !q.startsWith("."));

    test("the book prints queries", () => {
      expect(queries.length).toBeGreaterThanOrEqual(8);
    });

    test("each runs against a migrated database", () => {
      const store = openState(dir, { create: true });
      try {
        // one row per table the queries join, so joins and datetime() run on real values
        store.sqlite.run("insert into peers (peer_id, name, prefix, source, relay_capable, wireguard_only, updated_at) values ('vine1x', 'beta', '10.42.1.0/24', 'config', 0, 0, 1764060000000)");
        const failed: string[] = [];
        for (const q of queries) {
          try {
            store.sqlite.query(q).all();
          } catch (e) {
            failed.push(`${q}: ${(e as Error).message}`);
          }
        }
        expect(failed).toEqual([]);
      } finally {
        store.close();
      }
    });
  });
});
