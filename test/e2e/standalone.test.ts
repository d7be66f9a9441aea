// The product as a new user meets it: dist/vine copied alone into an empty directory, run with no
// Bun and no node_modules on the PATH, does the identity and config walk-through.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const DIST = resolve(import.meta.dir, "../../dist/vine");
const EXAMPLES = resolve(import.meta.dir, "../../examples/multi-pc");

describe("standalone binary", () => {
  let dir: string;
  let vine: string;
  const env = { PATH: "/usr/bin:/bin", HOME: "/root" };

  function run(args: string[]): { code: number; out: string; err: string } {
    const r = Bun.spawnSync([vine, ...args], { cwd: dir, env, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vine-standalone-"));
    vine = join(dir, "vine");
    copyFileSync(DIST, vine);
    Bun.spawnSync(["chmod", "755", vine]);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("--version and --help work with nothing beside the binary", () => {
    expect(run(["--version"]).out.trim()).toMatch(/^vine \d+\.\d+\.\d+$/);
    expect(run(["--help"]).out).toContain("identity");
  });

  test("identity init/show: peer_id and fingerprint, 0600 database in a 0700 directory, no secret printed", () => {
    const state = join(dir, "state");
    const init = run(["identity", "init", "--state-dir", state]);
    expect(init.code).toBe(0);
    const show = run(["identity", "show", "--state-dir", state, "--format", "json"]);
    const j = JSON.parse(show.out);
    expect(j.peer_id).toMatch(/^vine1[a-z2-7]{55}$/);
    expect(j.fingerprint).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    expect(statSync(join(state, "vine.db")).mode & 0o777).toBe(0o600);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    const seedHex = Bun.spawnSync(["sqlite3", join(state, "vine.db"), "select hex(secret_seed) from identity"]).stdout.toString().trim().toLowerCase();
    expect(seedHex).toHaveLength(64);
    const seedB64 = Buffer.from(seedHex, "hex").toString("base64");
    for (const args of [["identity", "show"], ["identity", "show", "--format", "json"], ["identity", "export-public", "--format", "json"]]) {
      const o = run([...args, "--state-dir", state]).out.toLowerCase();
      expect(o.includes(seedHex) || o.includes(seedB64.toLowerCase())).toBe(false);
    }
    const again = run(["identity", "init", "--state-dir", state]);
    expect(again.code).not.toBe(0);
    expect(again.err).toContain("already exists");
    const tables = Bun.spawnSync(["sqlite3", join(state, "vine.db"), ".tables"]).stdout.toString();
    for (const t of ["identity", "peers", "sessions", "routes", "counters", "snapshots", "events", "daemon"]) expect(tables).toContain(t);
  });

  test("config validate passes on the showcase configs with real peer ids, and names line and key on a broken copy", () => {
    const ids: Record<string, string> = {};
    for (const h of ["alpha", "beta", "gamma", "relay"]) {
      const s = join(dir, `id-${h}`);
      run(["identity", "init", "--state-dir", s]);
      ids[h] = JSON.parse(run(["identity", "show", "--state-dir", s, "--format", "json"]).out).peer_id;
    }
    for (const h of ["alpha", "beta", "gamma", "relay"]) {
      let text = readFileSync(join(EXAMPLES, `${h}.toml`), "utf8");
      for (const [n, id] of Object.entries(ids)) text = text.replaceAll(`REPLACE-with-${n}-peer-id`, id);
      const f = join(dir, `${h}.toml`);
      writeFileSync(f, text, { mode: 0o600 });
      const ok = run(["config", "validate", "-c", f]);
      expect(ok.code).toBe(0);
      const broken = text.replace('prefix = "10.42.254.0/24"', 'prefix = "10.42.254.9/24"');
      const bf = join(dir, `${h}-broken.toml`);
      writeFileSync(bf, broken, { mode: 0o600 });
      const bad = run(["config", "validate", "-c", bf]);
      if (h === "relay") continue; // relay does not list itself
      expect(bad.code).toBe(1);
      const line = broken.split("\n").findIndex((l) => l.includes("10.42.254.9/24")) + 1;
      expect(bad.err).toContain(`${bf}:${line}: allowed_peers[`);
      expect(bad.err).toContain(".prefix: ");
    }
  });
});
