// The product as a new user meets it: dist/vine copied ALONE into an empty directory and run there with
// PATH=/usr/bin:/bin (no Bun, no node_modules) does the identity and config walk-through. Every
// command's stdout and stderr is kept, and at the end none of them may contain a secret seed.
//
// Needs `make build` first; skips (with a message saying so) when dist/vine is missing.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const DIST = resolve(import.meta.dir, "../../dist/vine");
const EXAMPLES = resolve(import.meta.dir, "../../examples/multi-pc");
const HAVE_DIST = existsSync(DIST);
if (!HAVE_DIST) console.warn(`standalone: SKIPPED — ${DIST} is missing; run \`make build\` first`);
const HAVE_SQLITE = existsSync("/usr/bin/sqlite3");
if (HAVE_DIST && !HAVE_SQLITE) console.warn("standalone: /usr/bin/sqlite3 is missing; the .tables and secret-seed checks need it (apt-get install sqlite3)");

describe.skipIf(!HAVE_DIST)("standalone binary (dist/vine copied alone, no Bun on PATH)", () => {
  let dir: string;
  let vine: string;
  const env = { PATH: "/usr/bin:/bin", HOME: "/root", LANG: "C" };
  const outputs: string[] = []; // every stdout and stderr, for the secret check
  const stateDirs: string[] = [];

  function run(args: string[]): { code: number; out: string; err: string } {
    const r = Bun.spawnSync([vine, ...args], { cwd: dir, env, stdout: "pipe", stderr: "pipe" });
    const res = { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
    outputs.push(res.out, res.err);
    return res;
  }
  function sqlite(db: string, sql: string): string {
    const r = Bun.spawnSync(["/usr/bin/sqlite3", db, sql], { env, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`sqlite3 ${sql}: ${r.stderr.toString()}`);
    return r.stdout.toString();
  }
  function init(name: string): string {
    const s = join(dir, name);
    const r = run(["identity", "init", "--state-dir", s]);
    expect(r.code).toBe(0);
    stateDirs.push(s);
    return s;
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vine-standalone-"));
    vine = join(dir, "vine");
    copyFileSync(DIST, vine);
    Bun.spawnSync(["chmod", "755", vine]);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the directory holds only the binary, and there is no bun on the PATH", () => {
    expect(readdirSync(dir)).toEqual(["vine"]);
    expect(existsSync(join(dir, "node_modules"))).toBe(false);
    const which = Bun.spawnSync(["/bin/sh", "-c", "command -v bun"], { cwd: dir, env });
    expect(which.exitCode).not.toBe(0);
  });

  test("--version and --help work with nothing beside the binary", () => {
    const v = run(["--version"]);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toMatch(/^vine \d+\.\d+\.\d+$/);
    const h = run(["--help"]);
    expect(h.code).toBe(0);
    for (const g of ["identity", "config", "daemon", "status", "doctor"]) expect(h.out).toContain(g);
    const bad = run(["no-such-command"]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("Unknown command no-such-command");
  });

  test("identity init/show: peer_id and fingerprint, 0600 database in a 0700 directory", () => {
    const state = init("state");
    const show = run(["identity", "show", "--state-dir", state, "--format", "json"]);
    expect(show.code).toBe(0);
    const j = JSON.parse(show.out);
    expect(j.peer_id).toMatch(/^vine1[a-z2-7]{55}$/);
    expect(j.fingerprint).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    expect(statSync(join(state, "vine.db")).mode & 0o777).toBe(0o600);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    // the other read commands, every format
    for (const args of [["identity", "show"], ["identity", "fingerprint"], ["identity", "fingerprint", "--format", "json"], ["identity", "export-public"], ["identity", "export-public", "--format", "json"], ["identity", "export-public", "--format", "toml"], ["identity", "export-public", "--format", "wireguard"]]) {
      const r = run([...args, "--state-dir", state]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(args.includes("wireguard") ? "PublicKey = " : args[1] === "fingerprint" ? j.fingerprint : j.peer_id);
    }
  });

  test("a second init fails with a clear message and keeps the identity", () => {
    const state = join(dir, "state");
    const before = JSON.parse(run(["identity", "show", "--state-dir", state, "--format", "json"]).out).peer_id;
    const again = run(["identity", "init", "--state-dir", state]);
    expect(again.code).toBe(1);
    expect(again.out).toBe("");
    expect(again.err).toContain(`an identity already exists in ${join(state, "vine.db")} (${before}); use --force to replace it`);
    expect(JSON.parse(run(["identity", "show", "--state-dir", state, "--format", "json"]).out).peer_id).toBe(before);
  });

  test.skipIf(!HAVE_SQLITE)("sqlite3 .tables lists every table the book documents", () => {
    const tables = sqlite(join(dir, "state", "vine.db"), ".tables").split(/\s+/).filter(Boolean);
    for (const t of ["identity", "peers", "sessions", "routes", "counters", "snapshots", "events", "daemon"]) expect(tables).toContain(t);
  });

  test("config validate passes on the showcase configs with real peer ids, and names line and key on a broken copy", () => {
    const ids: Record<string, string> = {};
    for (const h of ["alpha", "beta", "gamma", "relay"]) {
      const s = init(`id-${h}`);
      ids[h] = JSON.parse(run(["identity", "show", "--state-dir", s, "--format", "json"]).out).peer_id;
    }
    for (const h of ["alpha", "beta", "gamma", "relay"]) {
      let text = readFileSync(join(EXAMPLES, `${h}.toml`), "utf8");
      for (const [n, id] of Object.entries(ids)) text = text.replaceAll(`REPLACE-with-${n}-peer-id`, id);
      const f = join(dir, `${h}.toml`);
      writeFileSync(f, text, { mode: 0o600 });
      const ok = run(["config", "validate", "-c", f]);
      expect(ok.code).toBe(0);
      expect(ok.out).toContain(`${f}: ok — node ${h}`);
      // break one peer's prefix (host bits set) and its mtu
      const peerPrefix = /^prefix = "(10\.42\.\d+)\.0\/24"$/m.exec(text)![1]!;
      const broken = text.replace(`prefix = "${peerPrefix}.0/24"`, `prefix = "${peerPrefix}.9/24"`).replace("mtu = 1400", "mtu = 100000");
      const bf = join(dir, `${h}-broken.toml`);
      writeFileSync(bf, broken, { mode: 0o600 });
      const bad = run(["config", "validate", "-c", bf]);
      expect(bad.code).toBe(1);
      const lines = broken.split("\n");
      const pLine = lines.findIndex((l) => l.includes(`${peerPrefix}.9/24`)) + 1;
      const mLine = lines.findIndex((l) => l.startsWith("mtu = ")) + 1;
      expect(bad.err).toContain(`${bf}:${mLine}: tun.mtu: mtu must be 576 to 9000, not 100000`);
      expect(bad.err).toMatch(new RegExp(`${bf.replace(/[.]/g, "\\.")}:${pLine}: allowed_peers\\[0\\]\\.prefix: .*has host bits set`));
      expect(bad.err).toContain(`2 problem(s) in ${bf}`);
      // and as shipped (placeholders): each placeholder line is named
      const shipped = join(dir, `${h}-shipped.toml`);
      writeFileSync(shipped, readFileSync(join(EXAMPLES, `${h}.toml`)), { mode: 0o600 });
      const sj = run(["config", "validate", "-c", shipped, "--format", "json"]);
      expect(sj.code).toBe(1);
      const placeholderLines = readFileSync(shipped, "utf8").split("\n").flatMap((l, i) => (/^peer_id = "REPLACE-with-/.test(l) ? [i + 1] : []));
      expect(JSON.parse(sj.out).problems.map((p: { line: number }) => p.line).sort((a: number, b: number) => a - b)).toEqual(placeholderLines);
    }
  });

  test("config init writes a private template that validates", () => {
    const f = join(dir, "new.toml");
    const r = run(["config", "init", "-o", f, "--name", "solo", "--address", "10.42.77.1/24"]);
    expect(r.code).toBe(0);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(run(["config", "validate", "-c", f]).code).toBe(0);
  });

  test.skipIf(!HAVE_SQLITE)("no command ever printed a secret seed (hex or base64), read back from each database", () => {
    expect(stateDirs.length).toBeGreaterThanOrEqual(5);
    const all = outputs.join("\n");
    expect(all.length).toBeGreaterThan(1000);
    for (const s of stateDirs) {
      const seedHex = sqlite(join(s, "vine.db"), "SELECT hex(secret_seed) FROM identity").trim().toLowerCase();
      expect(seedHex).toMatch(/^[0-9a-f]{64}$/);
      const seed = Buffer.from(seedHex, "hex");
      for (const form of [seedHex, seed.toString("base64"), seed.toString("base64url"), seedHex.slice(0, 16), seed.toString("base64").slice(0, 16)]) {
        expect(all.toLowerCase().includes(form.toLowerCase())).toBe(false);
      }
    }
  });
});
