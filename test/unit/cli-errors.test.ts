// Operator-facing errors (issue 8 "Hardening"): unambiguous aliases, what each ping error says, the
// unknown-option hint, `vine status` from saved state, `vine daemon start` on a missing state_dir,
// the data-plane error filter, and state writes that fail and catch up.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Database } from "bun:sqlite";
import { identity } from "../../src/cli/identity.ts";
import { config } from "../../src/cli/config.ts";
import { daemon } from "../../src/cli/daemon.ts";
import { doctor } from "../../src/cli/doctor.ts";
import { counters, peers, ping, routes, sessions, snapshot, status } from "../../src/cli/ops.ts";
import { DataPlaneErrors } from "../../src/dataplane/host.ts";
import { Persistence } from "../../src/daemon/persist.ts";
import { Log } from "../../src/daemon/log.ts";
import { Counters } from "../../src/daemon/counters.ts";
import { openState, stateDirProblem } from "../../src/state/db.ts";
import { allocateTables, TableViews } from "../../src/dataplane/tables.ts";
import { loadConfig } from "../../src/config/index.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const MAIN = join(ROOT, "src/main.ts");
const tmp = mkdtempSync(join(tmpdir(), "vine-cli-errors-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !["NO_COLOR", "VINE_DEBUG"].includes(k)) env[k] = v;

async function vine(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([BUN, MAIN, ...args], { cwd: tmp, env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

type Arg = { type?: string; alias?: string | string[] };
type Cmd = { subCommands?: Record<string, Cmd>; args?: Record<string, Arg> };

function leaves(path: string, cmd: Cmd, out: { path: string; cmd: Cmd }[] = []): { path: string; cmd: Cmd }[] {
  if (cmd.subCommands && Object.keys(cmd.subCommands).length) for (const [n, sub] of Object.entries(cmd.subCommands)) leaves(`${path} ${n}`, sub, out);
  else out.push({ path, cmd });
  return out;
}

function writeToml(file: string, stateDir: string, extra = ""): void {
  writeFileSync(
    file,
    `[node]\nname = "alpha"\nnetwork_id = "err-net"\nstate_dir = "${stateDir}"\nlisten_port = 4177\n\n[tun]\nname = "vine7"\naddress = "10.42.0.1"\nprefix_len = 24\n${extra}`,
    { mode: 0o600 },
  );
}

describe("aliases", () => {
  test("each one-letter alias means one option across the whole CLI", () => {
    const all = Object.entries({ identity, config, daemon, status, peers, routes, sessions, counters, ping, snapshot, doctor }).flatMap(([n, c]) => leaves(`vine ${n}`, c as Cmd));
    expect(all.length).toBeGreaterThan(15);
    const meaning = new Map<string, string>();
    const clashes: string[] = [];
    for (const { path, cmd } of all) {
      const seen = new Map<string, string>();
      for (const [name, def] of Object.entries(cmd.args ?? {})) {
        for (const a of [def.alias ?? []].flat()) {
          if (a === "h" || a === "v") clashes.push(`${path}: -${a} is reserved for --help/--version`);
          if (seen.has(a)) clashes.push(`${path}: -${a} is both --${seen.get(a)} and --${name}`);
          seen.set(a, name);
          const before = meaning.get(a);
          if (before && before !== name) clashes.push(`${path}: -${a} is --${name} here but --${before} elsewhere`);
          meaning.set(a, name);
        }
      }
    }
    expect(clashes).toEqual([]);
    expect(meaning.get("c")).toBe("config");
    expect(meaning.get("n")).toBe("count");
  });

  test("vine ping -c NUMBER (the old count alias) says -c is --config and names -n", async () => {
    const r = await vine(["ping", "10.42.1.1", "-c", "3"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("vine: -c is --config (a config file) in every vine command, and there is no file 3; for 3 probes use -n 3 (--count)\n");
  });

  test("vine ping -c FILE uses the config's state_dir, -n is the count", async () => {
    const state = join(tmp, "ping-cfg-state");
    const cfg = join(tmp, "ping.toml");
    writeToml(cfg, state);
    const r = await vine(["ping", "10.42.1.1", "-c", cfg, "-n", "2"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`no vine daemon is running for ${state} `);
    const bad = await vine(["ping", "10.42.1.1", "-n", "two"]);
    expect(bad.err).toBe('vine: --count (-n) must be a positive integer, not "two"\n');
    const badI = await vine(["ping", "10.42.1.1", "-i", "0"]);
    expect(badI.err).toContain("--interval (-i) must be a number of seconds");
  });
});

describe("ping errors say what is wrong", () => {
  let server: Server | null = null;
  afterAll(() => server?.close());

  test("no daemon: names the state directory, the socket and how to start one", async () => {
    const r = await vine(["ping", "10.42.1.1", "--state-dir", join(tmp, "nothing-here")]);
    expect(r.code).toBe(1);
    expect(r.err).toStartWith(`vine: no vine daemon is running for ${join(tmp, "nothing-here")} (no control socket ${join(tmp, "nothing-here", "control.sock")}): start it with \`vine daemon start -c FILE\`, ping needs it\n`);
  });

  test("a stale socket (nothing listens): says the daemon stopped or crashed", async () => {
    const dir = join(tmp, "stale");
    mkdirSync(dir);
    // a socket file nothing listens on, as a crashed daemon leaves it
    const py = Bun.spawnSync(["python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", join(dir, "control.sock")]);
    expect(py.exitCode).toBe(0);
    const r = await vine(["ping", "10.42.1.1", "--state-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toStartWith(`vine: no vine daemon answers on ${join(dir, "control.sock")} (the daemon stopped or crashed and left its socket): start it with`);
    expect(r.err).not.toContain("needs the running daemon:");
  });

  test("a running daemon's refusal is passed on as it is, without blaming the daemon", async () => {
    const dir = join(tmp, "live");
    mkdirSync(dir);
    server = createServer((sock) => {
      sock.on("data", (d) => {
        const req = JSON.parse(d.toString().split("\n")[0]!) as { cmd: string; args: { ip: string } };
        expect(req.cmd).toBe("ping");
        sock.end(JSON.stringify({ ok: false, error: `no route to ${req.args.ip}: no allowed peer owns it` }) + "\n");
      });
    });
    await new Promise<void>((r) => server!.listen(join(dir, "control.sock"), r));
    const r = await vine(["ping", "10.99.0.1", "-n", "1", "--state-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("vine: ping 10.99.0.1: no route to 10.99.0.1: no allowed peer owns it\n");
  });
});

describe("the unknown-option hint names the command, never a value", () => {
  test.each([
    [["status", "--foo", "bar"], "vine: unknown option --foo; see `vine status --help`\n"],
    [["status", "--foo=bar"], "vine: unknown option --foo; see `vine status --help`\n"],
    [["identity", "show", "--foo=bar", "x"], "vine: unknown option --foo; see `vine identity show --help`\n"],
    [["ping", "10.42.1.1", "--bogus", "3"], "vine: unknown option --bogus; see `vine ping --help`\n"],
    [["daemon", "status", "--state-dir", "/x", "--nope=1"], "vine: unknown option --nope; see `vine daemon status --help`\n"],
  ])("%p", async (argv, expected) => {
    const r = await vine(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(expected as string);
  });
});

describe("vine status from saved state", () => {
  const state = join(tmp, "status-state");
  const cfg = join(tmp, "status.toml");

  test("a state no daemon ever ran on: unknown facts are null in JSON and 'unknown' in text", async () => {
    expect((await vine(["identity", "init", "--state-dir", state])).code).toBe(0);
    const j = await vine(["status", "--state-dir", state, "--format", "json"]);
    expect(j.code).toBe(0);
    const s = JSON.parse(j.out);
    expect(s.source).toBe("state");
    for (const k of ["network_id", "tun", "address", "listen_port", "aead"]) expect(s[k]).toBeNull();
    const t = await vine(["status", "--state-dir", state]);
    expect(t.out).toContain("overlay     unknown on unknown, owns unknown");
    expect(t.out).toContain("listen      unknown");
    expect(t.out).toMatch(/^unknown .*give its config with -c FILE/m);
    expect(t.out).not.toMatch(/ on ,|\(\)|udp\/0/);
  });

  test("with -c FILE the gaps are filled from the config", async () => {
    writeToml(cfg, state);
    const s = JSON.parse((await vine(["status", "-c", cfg, "--format", "json"])).out);
    expect(s).toMatchObject({ source: "state", node: "alpha", network_id: "err-net", tun: "vine7", address: "10.42.0.1/24", prefix: "10.42.0.0/24", listen_port: 4177 });
  });

  test("what the last start recorded is shown without a config", async () => {
    const store = openState(state);
    const p = new Persistence(store, new Log("text", () => {}));
    p.recordStart(4242, loadConfig(cfg).config!, "libcrypto");
    store.close();
    const s = JSON.parse((await vine(["status", "--state-dir", state, "--format", "json"])).out);
    expect(s).toMatchObject({ node: "alpha", network_id: "err-net", tun: "vine7", address: "10.42.0.1/24", prefix: "10.42.0.0/24", listen_port: 4177, aead: "libcrypto" });
    const t = (await vine(["status", "--state-dir", state])).out;
    expect(t).toContain("overlay     10.42.0.1/24 on vine7, owns 10.42.0.0/24");
    expect(t).not.toContain("unknown");
  });

  test("state from an older vine (last_start without the facts) is filled from the config it names", async () => {
    const db = new Database(join(state, "vine.db"));
    db.query("UPDATE daemon SET value = ? WHERE key = 'last_start'").run(JSON.stringify({ pid: 1, at: 1, node: "alpha", config: cfg }));
    db.close();
    const s = JSON.parse((await vine(["status", "--state-dir", state, "--format", "json"])).out);
    expect(s).toMatchObject({ network_id: "err-net", tun: "vine7", address: "10.42.0.1/24", listen_port: 4177 });
  });
});

describe("vine daemon start/run on a state_dir it cannot use", () => {
  test("a missing state_dir: path, file:line, key and the fix; nothing is created", async () => {
    const missing = join(tmp, "no-such-state");
    const cfg = join(tmp, "missing.toml");
    writeToml(cfg, missing);
    for (const cmd of [["daemon", "start"], ["daemon", "run"]]) {
      const r = await vine([...cmd, "-c", cfg]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${cfg}:4: node.state_dir: state directory ${missing} does not exist: create this host's identity there with \`vine identity init --state-dir ${missing}\``);
      expect(r.err).not.toContain("ENOENT");
      expect(existsSync(missing)).toBe(false);
    }
  });

  test("a state_dir without vine.db is refused before anything is written", () => {
    const dir = join(tmp, "empty-state");
    mkdirSync(dir, { mode: 0o700 });
    expect(stateDirProblem(dir)).toContain(`no state database in ${dir}`);
    expect(stateDirProblem(join(tmp, "missing.toml"))).toContain("is not a directory");
  });
});

describe("data-plane error events", () => {
  test("a gone TUN (ENODEV, EBADFD, EIO) is reported once, however many reads fail", () => {
    for (const [errno, name] of [[19, "ENODEV"], [77, "EBADFD"], [5, "EIO"]] as const) {
      const f = new DataPlaneErrors();
      const first = f.note(`tun read failed: errno ${errno}`, 0);
      expect(first).toMatchObject({ kind: "tun-gone", tun: true, errno, errnoName: name, log: true });
      for (let t = 1; t < 100_000; t += 7) {
        const v = f.note(`tun read failed: errno ${errno}`, t);
        expect(v.kind).toBe("tun");
        expect(v.log).toBe(false);
      }
    }
  });

  test("other errors: at most one logged per 10 s per kind, with the suppressed count", () => {
    const f = new DataPlaneErrors(10_000);
    expect(f.note("tun read failed: errno 14", 0)).toMatchObject({ kind: "tun", log: true, suppressed: 0 });
    let logged = 0;
    for (let t = 1; t < 10_000; t++) if (f.note("tun read failed: errno 14", t).log) logged++;
    expect(logged).toBe(0);
    expect(f.note("tun read failed: errno 14", 10_000)).toMatchObject({ log: true, suppressed: 9_999 });
    expect(f.note("rx: worker crashed", 10_001)).toMatchObject({ kind: "other", tun: false, log: true });
    expect(f.note("rx: worker crashed", 10_002).log).toBe(false);
    for (let i = 0; i < 1000; i++) f.note(`distinct message ${String.fromCharCode(65 + (i % 26))}${i}`, 20_000);
  });
});

describe("state writes that fail", () => {
  function fakeDaemon(store: ReturnType<typeof openState>) {
    const views = new TableViews(allocateTables());
    const c = new Counters();
    return {
      views,
      counters: c,
      phase: "running",
      startedAt: Date.now(),
      viewsNow: () => ({ status: {}, peers: [], routes: [], sessions: [], counters: { node: {}, peers: {} } }),
      store,
    };
  }

  test("a refused write is reported, kept, and written by the next flush that succeeds", () => {
    const dir = join(tmp, "persist-state");
    const store = openState(dir, { create: true });
    const errors: string[] = [];
    const p = new Persistence(store, new Log("text", () => {}), (e) => errors.push(String((e as Error).message)));
    const cfg = join(tmp, "persist.toml");
    writeToml(cfg, dir);
    const d = fakeDaemon(store) as unknown as Parameters<Persistence["flush"]>[0];
    p.flush(d);
    expect(p.wroteLastFlush).toBe(true);
    // nothing changed: an idle flush writes nothing
    p.flush(d);
    expect(p.wroteLastFlush).toBe(false);

    store.sqlite.exec("PRAGMA query_only = ON"); // every write now fails, as on a read-only disk
    p.recordStart(7, loadConfig(cfg).config!, "noble");
    p.recordInstalled({ tun: "vine7", routes: [] });
    expect(errors.length).toBe(2);
    p.event("something", null, null, null, { x: 1 });
    expect(() => p.flush(d)).toThrow();
    expect(p.wroteLastFlush).toBe(false);
    // still failing, and still retried although nothing changed meanwhile
    expect(() => p.flush(d)).toThrow();

    store.sqlite.exec("PRAGMA query_only = OFF");
    p.flush(d);
    expect(p.wroteLastFlush).toBe(true);
    const kv = new Map((store.sqlite.query("SELECT key, value FROM daemon").all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    expect(JSON.parse(kv.get("last_start")!)).toMatchObject({ pid: 7, tun: "vine7", aead: "noble" });
    expect(JSON.parse(kv.get("installed")!)).toMatchObject({ tun: "vine7" });
    expect((store.sqlite.query("SELECT count(*) AS n FROM events WHERE kind = 'something'").get() as { n: number }).n).toBe(1);
    expect((store.sqlite.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check).toBe("ok");
    store.close();
  });
});
