// State-database faults under real daemons (issue 8 "Hardening"):
//  (a) the state file system fills up under a running daemon: packets keep crossing, the failed
//      writes are counted (`state_write_errors`) and logged once, and once space returns the writes
//      resume and the database passes `PRAGMA integrity_check`;
//  (b) a daemon started on a read-only state directory refuses with a clear message, exit ≠ 0,
//      and changes nothing (no TUN, no pidfile, no log file).
//
// Each faulty state directory is a tmpfs mounted inside a private mount namespace (`unshare -m
// --propagation private`) that only the daemon (and the commands entered into it with nsenter)
// sees: the mount disappears with the daemon, whatever happens to the test.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor, type ProcessHandle } from "../lib/netns.ts";
import { configuredPair, makeHost, startDaemon, VINE, writeConfig, type VineHost } from "../lib/vine.ts";

/**
 * The tmpfs is far larger than the database: SQLite's write-ahead log grows to about 4 MB before it
 * is checkpointed, so a 256k file system would fill by itself. The test fills it on purpose instead.
 */
const TMPFS_SIZE = "16m";

/** sh script: mount a tmpfs on $1, copy the seed state $2 into it, optionally remount it read-only, exec the rest. */
const MOUNT_AND_EXEC = `set -e
mount -t tmpfs -o size=${TMPFS_SIZE},mode=0700 vine-state "$1"
cp -a "$2"/. "$1"/
if [ "$3" = ro ]; then mount -o remount,ro "$1"; fi
shift 3
exec "$@"`;

describe("state database faults", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;
  let daemonA: ProcessHandle;

  /** Run a command inside daemon a's mount namespace (where its tmpfs state directory is). */
  const inA = (cmd: string[], timeoutMs = 15_000) => net.exec(a.ns, ["nsenter", "-t", String(daemonA.pid), "-m", ...cmd], { timeoutMs });
  const countersA = async () => {
    const r = await inA([VINE, "counters", "--state-dir", a.stateDir, "--format", "json"]);
    if (r.code !== 0) throw new Error(`vine counters failed (${r.code}): ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { source: string; node: Record<string, number> };
    if (j.source !== "live") throw new Error(`counters from ${j.source}, not the live daemon`);
    return j.node;
  };
  const sql = async (query: string) => {
    const r = await inA(["sqlite3", join(a.stateDir, "vine.db"), query]);
    if (r.code !== 0) throw new Error(`sqlite3 failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const logLines = (re: RegExp) => net.log(daemonA).split("\n").filter((l) => re.test(l));

  beforeAll(async () => {
    net = new TestNet();
    ({ a, b } = configuredPair(net, 61));
    // a's identity, copied into its tmpfs at start
    const seed = join(a.dir, "seed");
    mkdirSync(seed, { mode: 0o700 });
    cpSync(a.stateDir, seed, { recursive: true });
    await startDaemon(net, b);
    daemonA = net.spawn(a.ns, ["unshare", "-m", "--propagation", "private", "sh", "-c", MOUNT_AND_EXEC, "sh", a.stateDir, seed, "rw", VINE, "daemon", "run", "-c", a.config], {
      logFile: join(a.dir, "daemon.log"),
    });
    await waitFor(
      async () => {
        if (daemonA.proc.exitCode !== null) throw new Error(`daemon a exited: ${net.log(daemonA)}`);
        return (await countersA()) !== null;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "daemon a (state on a tmpfs) answering live" },
    );
    // the tmpfs is there, and only the daemon's mount namespace sees it
    expect(await inA(["findmnt", "-n", "-o", "FSTYPE", a.stateDir]).then((r) => r.stdout.trim())).toBe("tmpfs");
    expect(existsSync(join(a.stateDir, "control.sock"))).toBe(false);
  }, 90_000);

  afterAll(async () => {
    await net?.cleanup();
  });

  test("(a) a full state file system: forwarding continues, errors counted and logged once, writes resume intact", async () => {
    // the overlay works first (the first ping may wait for the handshake)
    await waitFor(async () => (await net.ping(a.ns, "10.42.1.1", { count: 5, intervalS: 0.2, waitS: 2 })).received === 5, {
      timeoutMs: 30_000,
      what: "5 of 5 pings a → b",
    });
    const before = (await countersA()).state_write_errors ?? 0;
    expect(before).toBe(0);

    // fill the file system: dd stops at ENOSPC (exit status 1)
    const fill = await inA(["dd", "if=/dev/zero", `of=${join(a.stateDir, "filler")}`, "bs=64k"], 30_000);
    expect(fill.stderr).toContain("No space left on device");
    const df = await inA(["df", "--output=avail", a.stateDir]);
    expect(Number(df.stdout.trim().split("\n").pop())).toBeLessThan(64);

    // traffic changes counters, so the daemon tries to write every second and fails every time
    const during = await net.ping(a.ns, "10.42.1.1", { count: 30, intervalS: 0.2, waitS: 2 });
    expect(during.sent).toBe(30);
    expect(during.received).toBe(30);
    const failing = await waitFor(
      async () => {
        const n = (await countersA()).state_write_errors ?? 0;
        return n >= 4 ? n : null;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "state_write_errors to reach 4" },
    );
    expect(failing).toBeGreaterThanOrEqual(4);
    // ... and the counter keeps moving while the disk stays full
    await net.ping(a.ns, "10.42.1.1", { count: 5, intervalS: 0.2 });
    await waitFor(async () => ((await countersA()).state_write_errors ?? 0) > failing, { timeoutMs: 20_000, intervalMs: 500, what: "state_write_errors to keep moving" });

    // said once, clearly, although it failed several times
    const said = logLines(/cannot write the state database/);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(join(a.stateDir, "vine.db"));
    expect(said[0]).toContain("the disk is full");
    expect(said[0]).toContain("forwarding continues");
    expect(logLines(/state database writes resumed/)).toHaveLength(0);

    // space returns: the next flush writes, and says so once
    expect((await inA(["rm", "-f", join(a.stateDir, "filler")])).code).toBe(0);
    await net.ping(a.ns, "10.42.1.1", { count: 3, intervalS: 0.2 });
    await waitFor(() => logLines(/state database writes resumed/).length === 1, { timeoutMs: 20_000, intervalMs: 200, what: "\"state database writes resumed\" in a's log" });
    const failed = (await countersA()).state_write_errors!;
    // what was written is the truth of the running daemon (the error counter itself, an event)
    await waitFor(async () => Number(await sql("SELECT value FROM counters WHERE scope = 'node' AND name = 'state_write_errors'")) === failed, {
      timeoutMs: 20_000,
      intervalMs: 300,
      what: "state_write_errors persisted in SQLite",
    });
    await waitFor(async () => Number(await sql("SELECT count(*) FROM events WHERE kind = 'state_writes_resumed'")) === 1, {
      timeoutMs: 20_000,
      intervalMs: 300,
      what: "the state_writes_resumed event in SQLite",
    });
    expect(await sql("PRAGMA integrity_check")).toBe("ok");
    // no more errors once writes work again
    await net.ping(a.ns, "10.42.1.1", { count: 10, intervalS: 0.2 });
    await waitFor(async () => Number(await sql("SELECT value FROM counters WHERE scope = 'node' AND name = 'tx_packets'")) === (await countersA()).tx_packets, {
      timeoutMs: 20_000,
      intervalMs: 300,
      what: "tx_packets persisted",
    });
    expect((await countersA()).state_write_errors).toBe(failed);
    expect(logLines(/cannot write the state database/)).toHaveLength(1);
    const after = await net.ping(a.ns, "10.42.1.1", { count: 5, intervalS: 0.2 });
    expect(after.received).toBe(5);
  }, 180_000);

  test("(b) a read-only state directory: the daemon refuses clearly, exit ≠ 0, and changes nothing", async () => {
    const c = makeHost(net, "c", net.ns("c"), "10.42.2.1");
    writeConfig(c, { peers: [{ host: a, endpoint: "udp://198.18.61.1:4100" }] });
    const seed = join(c.dir, "seed");
    mkdirSync(seed, { mode: 0o700 });
    cpSync(c.stateDir, seed, { recursive: true });
    const seeded = readdirSync(seed).sort();
    expect(seeded).toContain("vine.db");
    const inRo = (cmd: string[]) =>
      net.exec(c.ns, [
        "unshare", "-m", "--propagation", "private", "sh", "-c",
        // after the command: is anything left behind in the state directory or the namespace?
        `${MOUNT_AND_EXEC.replace('exec "$@"', 'set +e; "$@"; rc=$?; ls -A "$0"; ip -o link show type tun; exit $rc')}`,
        c.stateDir, c.stateDir, seed, "ro", ...cmd,
      ], { timeoutMs: 60_000 });
    const msg = `${c.config}:4: node.state_dir: state directory ${c.stateDir} is on a read-only file system: the daemon writes its state, pidfile and control socket there; remount it read-write or point state_dir at a writable directory`;

    const run = await inRo([VINE, "daemon", "run", "-c", c.config]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`error ${msg}`);
    // the state directory holds what the seed held (no pidfile, socket or log), and no TUN was created
    expect(run.stdout.trim().split("\n").sort()).toEqual(seeded);

    const start = await inRo([VINE, "daemon", "start", "-c", c.config]);
    expect(start.code).toBe(1);
    expect(start.stderr).toBe(`vine: ${msg}\n`);
    expect(start.stdout.trim().split("\n").sort()).toEqual(seeded);
    expect((await net.exec(c.ns, ["ip", "link", "show", "vine0"])).code).not.toBe(0);
  }, 120_000);
});
