// The daemon as an operator runs it: start → status → stop, SIGHUP adding and removing a peer while
// traffic to another peer keeps flowing, kill -9 under traffic then a warm restart with counters
// continuing, and signed snapshots that detect tampering.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor } from "../lib/netns.ts";
import { counters, makeHost, sessions, startDaemon, VINE, vineJson, writeConfig, type VineHost } from "../lib/vine.ts";

function persistedCounters(h: VineHost): Record<string, number> {
  const r = Bun.spawnSync(["sqlite3", "-json", join(h.stateDir, "vine.db"), "select name, value from counters where scope = 'node'"]);
  const rows = JSON.parse(r.stdout.toString() || "[]") as { name: string; value: number }[];
  return Object.fromEntries(rows.map((x) => [x.name, x.value]));
}

describe("daemon lifecycle", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;
  let c: VineHost;

  beforeAll(async () => {
    net = new TestNet();
    const lan = net.ns("lan");
    net.bridge(lan, "br0");
    a = makeHost(net, "a", net.host("a", { bridgeNs: lan, bridge: "br0", addr: "198.18.4.1/24" }), "10.42.0.1");
    b = makeHost(net, "b", net.host("b", { bridgeNs: lan, bridge: "br0", addr: "198.18.4.2/24" }), "10.42.1.1");
    c = makeHost(net, "c", net.host("c", { bridgeNs: lan, bridge: "br0", addr: "198.18.4.3/24" }), "10.42.2.1");
    writeConfig(a, { peers: [{ host: b, endpoint: "udp://198.18.4.2:4100" }] });
    writeConfig(b, { peers: [{ host: a, endpoint: "udp://198.18.4.1:4100" }, { host: c, endpoint: "udp://198.18.4.3:4100" }] });
    writeConfig(c, { peers: [{ host: a, endpoint: "udp://198.18.4.1:4100" }, { host: b, endpoint: "udp://198.18.4.2:4100" }] });
    await startDaemon(net, b);
    await startDaemon(net, c);
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  test("daemon start → status → stop, with pidfile and clean teardown", async () => {
    const start = await net.exec(a.ns, [VINE, "daemon", "start", "-c", a.config], { timeoutMs: 30_000 });
    expect(start.code).toBe(0);
    expect(start.stdout).toContain("started");
    const st = await vineJson<{ running: boolean; pid: number; phase: string }>(net, a, ["daemon", "status"]);
    expect(st.running).toBe(true);
    expect(st.phase).toBe("running");
    expect(Number(readFileSync(join(a.stateDir, "vine.pid"), "utf8"))).toBe(st.pid);
    expect(statSync(join(a.stateDir, "control.sock")).mode & 0o777).toBe(0o600);
    expect((await net.exec(a.ns, ["ip", "link", "show", "vine0"])).code).toBe(0);
    const again = await net.exec(a.ns, [VINE, "daemon", "start", "-c", a.config]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("already running");
    const stop = await net.exec(a.ns, [VINE, "daemon", "stop", "--state-dir", a.stateDir], { timeoutMs: 30_000 });
    expect(stop.code).toBe(0);
    expect((await net.exec(a.ns, ["ip", "link", "show", "vine0"])).code).not.toBe(0);
    const down = await net.exec(a.ns, [VINE, "daemon", "status", "--state-dir", a.stateDir, "--format", "json"]);
    expect(JSON.parse(down.stdout).running).toBe(false);
    expect(existsSync(join(a.stateDir, "vine.pid"))).toBe(false);
  });

  test("a stale pidfile is detected, not trusted", async () => {
    writeFileSync(join(a.stateDir, "vine.pid"), `${process.pid}\n`);
    const st = await net.exec(a.ns, [VINE, "daemon", "status", "--state-dir", a.stateDir, "--format", "json"]);
    const j = JSON.parse(st.stdout);
    expect(j.running).toBe(false);
    expect(j.pidfile).toBe("stale");
    const stop = await net.exec(a.ns, [VINE, "daemon", "stop", "--state-dir", a.stateDir]);
    expect(stop.code).not.toBe(0);
    expect(stop.stderr).toContain("stale");
  });

  test("SIGHUP adds and removes a peer while traffic to another peer continues", async () => {
    await waitFor(async () => (await net.ping(b.ns, c.overlayIp, { count: 1, waitS: 1 })).received === 1, { what: "b → c ping" });
    const ping = net.spawn(b.ns, ["ping", "-n", "-i", "0.05", "-c", "100", "-W", "1", c.overlayIp]);
    // Remove peer a from b's config, then add it back, both while b pings c.
    writeConfig(b, { peers: [{ host: c, endpoint: "udp://198.18.4.3:4100" }] });
    net.kill(b.daemon!, "SIGHUP");
    await waitFor(async () => (await sessions(net, b)).length === 1, { what: "b to drop peer a" });
    writeConfig(b, { peers: [{ host: a, endpoint: "udp://198.18.4.1:4100" }, { host: c, endpoint: "udp://198.18.4.3:4100" }] });
    net.kill(b.daemon!, "SIGHUP");
    await waitFor(async () => (await sessions(net, b)).length === 2, { what: "b to add peer a back" });
    // An invalid config is rejected and the running one kept.
    writeFileSync(b.config, readFileSync(b.config, "utf8").replace('prefix = "10.42.2.0/24"', 'prefix = "10.42.2.7/24"'));
    net.kill(b.daemon!, "SIGHUP");
    await waitFor(() => net.log(b.daemon!).includes("reload rejected"), { what: "reload rejected in b's log" });
    expect((await sessions(net, b)).length).toBe(2);
    await ping.exited;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(net.log(ping));
    expect(m).not.toBeNull();
    expect(Number(m![2])).toBe(Number(m![1]));
  });

  test("kill -9 under traffic: warm restart, counters continue, traffic resumes within a second", async () => {
    writeConfig(b, { peers: [{ host: a, endpoint: "udp://198.18.4.1:4100" }, { host: c, endpoint: "udp://198.18.4.3:4100" }] });
    await waitFor(async () => (await net.ping(b.ns, c.overlayIp, { count: 1, waitS: 1 })).received === 1, { what: "b → c ping" });
    const flood = net.spawn(b.ns, ["ping", "-n", "-i", "0.01", "-c", "300", c.overlayIp]);
    await Bun.sleep(1500); // let a persistence round (1 s) record traffic
    net.kill(b.daemon!, "SIGKILL");
    await b.daemon!.exited;
    await flood.exited;
    const ic = Bun.spawnSync(["sqlite3", join(b.stateDir, "vine.db"), "PRAGMA integrity_check"]);
    expect(ic.stdout.toString().trim()).toBe("ok");
    // What survived the crash: counters are durable to the last flush (at most a second old).
    const before = { node: persistedCounters(b) };
    expect(before.node.tx_packets ?? 0).toBeGreaterThan(0);
    const t0 = Date.now();
    await startDaemon(net, b);
    await waitFor(async () => (await net.ping(b.ns, c.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 10_000, intervalMs: 10, what: "b → c after restart" });
    const resumeMs = Date.now() - t0;
    console.log(`warm restart: first packet delivered ${resumeMs} ms after the daemon was started`);
    const after = await counters(net, b);
    for (const name of ["tx_packets", "rx_packets", "handshakes_completed"]) {
      expect(after.node[name] ?? 0).toBeGreaterThanOrEqual(before.node[name] ?? 0);
    }
    expect(after.node.tx_packets).toBeGreaterThan(before.node.tx_packets!);
    await waitFor(() => {
      const events = Bun.spawnSync(["sqlite3", join(b.stateDir, "vine.db"), "select count(*) from events where kind = 'daemon_started'"]);
      return Number(events.stdout.toString().trim()) >= 2;
    }, { timeoutMs: 3000, what: "two daemon_started events in SQLite" });
  });

  test("snapshot export is signed, verifies, and a tampered copy fails", async () => {
    const file = join(b.dir, "snap.json");
    const ex = await net.exec(b.ns, [VINE, "snapshot", "export", "--state-dir", b.stateDir, "-o", file]);
    expect(ex.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const ok = await net.exec(b.ns, [VINE, "snapshot", "verify", file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(b.peerId);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    expect(doc.document.sessions.length).toBe(2);
    expect(JSON.stringify(doc)).not.toContain("secret");
    doc.document.counters.node.tx_packets += 1;
    const bad = join(b.dir, "tampered.json");
    writeFileSync(bad, JSON.stringify(doc));
    const v = await net.exec(b.ns, [VINE, "snapshot", "verify", bad]);
    expect(v.code).not.toBe(0);
    expect(v.stderr).toContain("altered");
    const rows = Bun.spawnSync(["sqlite3", join(b.stateDir, "vine.db"), "select count(*) from snapshots"]);
    expect(Number(rows.stdout.toString().trim())).toBeGreaterThanOrEqual(1);
  });
});
