// Soak: three vine daemons under iperf3 (TCP and UDP) and ping for SOAK_SECONDS (default 600), through
// a direct path and a relayed one at once:
//
//   LAN 198.18.63.0/24: a .1, b .2, r .3 (bootstrap peer and relay). UDP between a and b is dropped,
//   so a ↔ b goes through r (path `relay`), while a ↔ r and b ↔ r are `direct`.
//
//   a → r: iperf3 TCP (SOAK_RATE) + iperf3 UDP (SOAK_UDP_RATE) + ping every 0.2 s   (direct)
//   a → b: iperf3 TCP (SOAK_RATE) + iperf3 UDP (SOAK_UDP_RATE) + ping every 0.2 s   (relayed by r)
//
// Every 10 s each daemon's RSS, open fds and CPU are sampled (test/lib/proc.ts) and every host's
// sessions are read. Fails if, after the warm-up: a daemon's RSS troughs rise by more than
// SOAK_RSS_GROWTH (default 5%: the lowest RSS of the second half of the samples against the lowest of
// the first half; the JS heap makes RSS a ~10 MB sawtooth, so a leak shows in the troughs) or its
// peak exceeds that first low by more than SOAK_RSS_PEAK (default 25%); its fd count rises above its
// post-warm-up value (a leak; a 1-fd allowance for a control-socket query in flight); a session is
// missing or changes path class (or relay); a handshake gives up, a path falls back, a packet finds
// no session; or if more than SOAK_PING_LOSS (default 0.1%, at least 1 ping) of a path's pings are
// lost, or an iperf3 run fails.
//
// Not part of `make test`: `make soak` runs it with the scale test (SOAK_SECONDS=60 make soak for a
// quick check). Knobs: SOAK_SECONDS, SOAK_RATE (TCP, default 20M), SOAK_UDP_RATE (default 10M),
// SOAK_WARMUP (seconds, default 20% of the duration, at least 20), SOAK_SAMPLE_S (default 10),
// SOAK_RSS_GROWTH, SOAK_RSS_PEAK, SOAK_PING_LOSS.
// The samples, counters and verdicts go to soak.json beside the logs (VINE_TEST_KEEP_LOGS=1 keeps them)
// and a summary to /tmp/vine-testnet/soak-report.md.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RECORD_DIR, TestNet, waitFor, parsePing, type ProcessHandle } from "../lib/netns.ts";
import { cpuTicks, CLK_TCK, fdCount, fdKinds, rssKb } from "../lib/proc.ts";
import { counters, makeHost, sessions, startDaemon, writeConfig, type SessionJson, type VineHost } from "../lib/vine.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RATE = process.env.SOAK_RATE ?? "20M";
const UDP_RATE = process.env.SOAK_UDP_RATE ?? "10M";
const WARMUP = Number(process.env.SOAK_WARMUP ?? Math.max(20, Math.round(SECONDS * 0.2)));
const RSS_GROWTH = Number(process.env.SOAK_RSS_GROWTH ?? 0.05);
const RSS_PEAK = Number(process.env.SOAK_RSS_PEAK ?? 0.25);
const PING_LOSS = Number(process.env.SOAK_PING_LOSS ?? 0.001);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 10);
const PING_INTERVAL = 0.2;
const FD_ALLOWANCE = 1;
const REPORT = join(RECORD_DIR, "soak-report.md");

interface Sample {
  t: number; // seconds since the load started
  host: string;
  rssKb: number;
  fds: number;
  cpuPct: number; // of one core, over the last interval
}

interface Expect {
  from: VineHost;
  to: VineHost;
  path: SessionJson["path"];
  via: VineHost | null;
}

describe(`soak: a, b and relay r; iperf3 TCP ${RATE} + UDP ${UDP_RATE} + ping, direct and relayed, ${SECONDS}s`, () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;
  let r: VineHost;
  let expected: Expect[];

  beforeAll(async () => {
    if (!Number.isFinite(SECONDS) || SECONDS < 30) throw new Error(`SOAK_SECONDS must be at least 30, not ${process.env.SOAK_SECONDS}`);
    if (WARMUP > SECONDS - 2 * SAMPLE_S) throw new Error(`SOAK_WARMUP (${WARMUP}s) leaves fewer than two samples after it in ${SECONDS}s`);
    net = new TestNet();
    const lan = net.ns("lan");
    net.bridge(lan, "br0");
    const nsA = net.host("a", { bridgeNs: lan, bridge: "br0", addr: "198.18.63.1/24" });
    const nsB = net.host("b", { bridgeNs: lan, bridge: "br0", addr: "198.18.63.2/24" });
    const nsR = net.host("r", { bridgeNs: lan, bridge: "br0", addr: "198.18.63.3/24" });
    net.blockUdp(nsA, { peer: "198.18.63.2" }); // a and b never reach each other directly
    a = makeHost(net, "a", nsA, "10.42.1.1");
    b = makeHost(net, "b", nsB, "10.42.2.1");
    r = makeHost(net, "r", nsR, "10.42.254.1");
    const boot = [{ host: r, address: "udp://198.18.63.3:4100" }];
    const viaR = { host: r, relayCapable: true, endpoint: "udp://198.18.63.3:4100" };
    writeConfig(r, { peers: [{ host: a, endpoint: "udp://198.18.63.1:4100" }, { host: b, endpoint: "udp://198.18.63.2:4100" }], policy: { relay_service: true } });
    writeConfig(a, { bootstrap: boot, peers: [viaR, { host: b }] });
    writeConfig(b, { bootstrap: boot, peers: [viaR, { host: a }] });
    for (const h of [r, a, b]) await startDaemon(net, h);
    expected = [
      { from: a, to: r, path: "direct", via: null },
      { from: a, to: b, path: "relay", via: r },
      { from: b, to: r, path: "direct", via: null },
      { from: b, to: a, path: "relay", via: r },
      { from: r, to: a, path: "direct", via: null },
      { from: r, to: b, path: "direct", via: null },
    ];
    // The relayed sessions start on their first packet: a ping each way brings them up.
    await waitFor(async () => (await net.ping(a.ns, b.overlayIp, { count: 1, waitS: 1 })).received > 0, { timeoutMs: 30_000, intervalMs: 200, what: "a → b ping through r" });
    await waitFor(async () => (await net.ping(b.ns, a.overlayIp, { count: 1, waitS: 1 })).received > 0, { timeoutMs: 30_000, intervalMs: 200, what: "b → a ping through r" });
    await waitFor(async () => (await net.ping(a.ns, r.overlayIp, { count: 1, waitS: 1 })).received > 0, { timeoutMs: 30_000, intervalMs: 200, what: "a → r ping" });
    for (const e of expected) {
      await waitFor(
        async () => {
          const s = (await sessions(net, e.from)).find((x) => x.peer_id === e.to.peerId);
          return s && s.path === e.path && s.via === (e.via?.peerId ?? null) && s.rtt_ms !== null ? s : null;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `${e.from.name} → ${e.to.name}: path ${e.path}${e.via ? ` via ${e.via.name}` : ""} with a probe answered` },
      );
    }
  }, 150_000);

  afterAll(async () => {
    await net?.cleanup();
  });

  test(
    "RSS and fds stay flat after the warm-up, sessions stay up on their paths, pings arrive, iperf3 completes",
    async () => {
      // iperf3 servers: TCP on 5201 and UDP on 5202, on r (direct from a) and on b (relayed from a).
      for (const h of [r, b]) {
        net.spawn(h.ns, ["iperf3", "-s", "-B", h.overlayIp, "-p", "5201", "-1"]);
        net.spawn(h.ns, ["iperf3", "-s", "-B", h.overlayIp, "-p", "5202", "-1"]);
        await waitFor(
          async () => {
            const out = (await net.exec(h.ns, ["ss", "-Htln"])).stdout;
            return out.includes(`${h.overlayIp}:5201`) && out.includes(`${h.overlayIp}:5202`);
          },
          { timeoutMs: 10_000, what: `iperf3 servers listening in ${h.name}` },
        );
      }
      const pingCount = Math.floor(SECONDS / PING_INTERVAL);
      const ping = (to: VineHost) => net.spawn(a.ns, ["ping", "-n", "-i", String(PING_INTERVAL), "-W", "2", "-c", String(pingCount), to.overlayIp]);
      // UDP datagrams of 1200 bytes: they fit the relayed route's MTU (1360) without fragmenting.
      const iperf = (to: VineHost, udp: boolean) =>
        net.spawn(a.ns, ["iperf3", "-c", to.overlayIp, "-p", udp ? "5202" : "5201", "-t", String(SECONDS), "-b", udp ? UDP_RATE : RATE, "-i", "0", "--json", ...(udp ? ["-u", "-l", "1200"] : [])]);
      const runs = {
        pingDirect: ping(r),
        pingRelayed: ping(b),
        tcpDirect: iperf(r, false),
        udpDirect: iperf(r, true),
        tcpRelayed: iperf(b, false),
        udpRelayed: iperf(b, true),
      };

      const hosts: [string, VineHost][] = [
        ["a", a],
        ["b", b],
        ["r", r],
      ];
      const samples: Sample[] = [];
      const pathFaults: string[] = [];
      const start = Date.now();
      const last = new Map(hosts.map(([n, h]) => [n, { ticks: cpuTicks(h.daemon!.pid), at: start }]));
      let warm: Awaited<ReturnType<typeof counters>>[] | null = null;
      let fdDetailAtWarmup: Record<string, Record<string, number>> = {};
      // A fixed sampling period, not a condition to wait for: sleep to the next 10 s mark.
      for (let k = 1; k * SAMPLE_S <= SECONDS; k++) {
        await Bun.sleep(Math.max(0, start + k * SAMPLE_S * 1000 - Date.now()));
        const now = Date.now();
        const t = Math.round((now - start) / 1000);
        for (const [n, h] of hosts) {
          const p = h.daemon!;
          expect(p.proc.exitCode).toBeNull();
          const ticks = cpuTicks(p.pid);
          const prev = last.get(n)!;
          samples.push({ t, host: n, rssKb: rssKb(p.pid), fds: fdCount(p.pid), cpuPct: Math.round(((ticks - prev.ticks) / CLK_TCK / ((now - prev.at) / 1000)) * 1000) / 10 });
          last.set(n, { ticks, at: now });
        }
        // Sessions: present, on the expected path class (and relay) — sampled after the fd counts, so
        // the control-socket connections of these queries are not counted.
        for (const e of expected) {
          const s = (await sessions(net, e.from)).find((x) => x.peer_id === e.to.peerId);
          const got = s ? `${s.path}${s.via ? ` via ${s.via === r.peerId ? "r" : s.via}` : ""}` : "absent";
          if (!s || s.path !== e.path || s.via !== (e.via?.peerId ?? null)) pathFaults.push(`t=${t}s ${e.from.name} → ${e.to.name}: ${got}, expected ${e.path}${e.via ? ` via ${e.via.name}` : ""}`);
        }
        if (!warm && t >= WARMUP) {
          warm = await Promise.all(hosts.map(([, h]) => counters(net, h)));
          fdDetailAtWarmup = Object.fromEntries(hosts.map(([n, h]) => [n, fdKinds(h.daemon!.pid)]));
        }
      }

      const exited = async (h: ProcessHandle) => Promise.race([h.exited, Bun.sleep(60_000).then(() => -1)]);
      const codes = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([k, h]) => [k, await exited(h)] as const)));
      const pings = { direct: parsePing(net.log(runs.pingDirect)), relayed: parsePing(net.log(runs.pingRelayed)) };
      const tcp = (h: ProcessHandle) => {
        try {
          return Math.round((JSON.parse(net.log(h)) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e5) / 10;
        } catch {
          return 0;
        }
      };
      const udp = (h: ProcessHandle) => {
        try {
          const s = (JSON.parse(net.log(h)) as { end: { sum: { bits_per_second: number; lost_percent: number; lost_packets: number; packets: number } } }).end.sum;
          return { mbps: Math.round(s.bits_per_second / 1e5) / 10, lostPct: Math.round(s.lost_percent * 1000) / 1000, lost: s.lost_packets, packets: s.packets };
        } catch {
          return { mbps: 0, lostPct: 100, lost: -1, packets: 0 };
        }
      };
      const mbps = { tcpDirect: tcp(runs.tcpDirect), tcpRelayed: tcp(runs.tcpRelayed), udpDirect: udp(runs.udpDirect), udpRelayed: udp(runs.udpRelayed) };
      const end = await Promise.all(hosts.map(([, h]) => counters(net, h)));
      const fdDetailAtEnd = Object.fromEntries(hosts.map(([n, h]) => [n, fdKinds(h.daemon!.pid)]));

      // Verdicts.
      const verdicts: string[] = [...pathFaults];
      const summary: string[] = [];
      hosts.forEach(([n], i) => {
        const mine = samples.filter((s) => s.host === n);
        const after = mine.filter((s) => s.t >= WARMUP);
        const base = after[0]!;
        // The daemon's RSS is a sawtooth (the JS heap grows by ~10 MB between collections), so a leak
        // shows in the troughs: the lowest RSS of the second half after warm-up against the lowest of
        // the first half. The peak is bounded too, more loosely.
        const half = Math.max(1, Math.floor(after.length / 2));
        const low1 = Math.min(...after.slice(0, half).map((s) => s.rssKb));
        const low2 = Math.min(...after.slice(half).map((s) => s.rssKb));
        const peak = Math.max(...after.map((s) => s.rssKb));
        const growth = (low2 - low1) / low1;
        const peakOver = (peak - low1) / low1;
        const fdMax = Math.max(...after.map((s) => s.fds));
        const fdLast = after[after.length - 1]!.fds;
        const meanCpu = mine.reduce((x, s) => x + s.cpuPct, 0) / mine.length;
        summary.push(
          `| ${n} | ${(low1 / 1024).toFixed(1)} | ${(low2 / 1024).toFixed(1)} | ${(growth * 100).toFixed(1)}% | ${(peak / 1024).toFixed(1)} (+${(peakOver * 100).toFixed(1)}%) | ${base.fds} | ${fdMax} | ${fdLast} | ${meanCpu.toFixed(1)}% |`,
        );
        if (growth > RSS_GROWTH) verdicts.push(`${n}: RSS troughs grew ${(growth * 100).toFixed(1)}% after warm-up (lowest ${low1} kB in the first half, ${low2} kB in the second), bound ${RSS_GROWTH * 100}%`);
        if (peakOver > RSS_PEAK) verdicts.push(`${n}: RSS peaked ${(peakOver * 100).toFixed(1)}% above its post-warm-up low (${low1} kB → ${peak} kB), bound ${RSS_PEAK * 100}%`);
        if (fdMax > base.fds + FD_ALLOWANCE || fdLast > base.fds)
          verdicts.push(`${n}: open fds ${base.fds} after warm-up → max ${fdMax}, last ${fdLast} (at warm-up ${JSON.stringify(fdDetailAtWarmup[n])}, at the end ${JSON.stringify(fdDetailAtEnd[n])})`);
        const w = warm![i]!.node;
        const e = end[i]!.node;
        for (const name of ["handshake_gave_up", "fallback_transitions", "relay_usage", "drop_no_session", "worker_stalls", "state_write_errors"]) {
          const d = (e[name] ?? 0) - (w[name] ?? 0);
          if (d !== 0) verdicts.push(`${n}: ${name} +${d} after warm-up`);
        }
        if ((e.handshake_gave_up ?? 0) !== 0) verdicts.push(`${n}: handshake_gave_up ${e.handshake_gave_up}`);
      });
      for (const [k, p] of Object.entries(pings)) {
        const allowed = Math.max(1, Math.floor(p.sent * PING_LOSS));
        if (p.sent !== pingCount) verdicts.push(`ping ${k}: sent ${p.sent} of ${pingCount}`);
        if (p.sent - p.received > allowed) verdicts.push(`ping ${k}: lost ${p.sent - p.received} of ${p.sent} (allowed ${allowed})`);
      }
      for (const [k, c] of Object.entries(codes)) if (c !== 0) verdicts.push(`${k}: exit ${c}`);
      if (!(mbps.tcpDirect > 0) || !(mbps.tcpRelayed > 0) || !(mbps.udpDirect.mbps > 0) || !(mbps.udpRelayed.mbps > 0)) verdicts.push(`iperf3 reported no throughput: ${JSON.stringify(mbps)}`);

      const handshakes = hosts.map(([n], i) => `${n} ${(end[i]!.node.handshakes_completed ?? 0) - (warm![i]!.node.handshakes_completed ?? 0)}`).join(", ");
      const lines = [
        `# vine soak report`,
        ``,
        `${new Date().toISOString()} — SOAK_SECONDS=${SECONDS} (warm-up ${WARMUP} s), iperf3 TCP ${RATE} + UDP ${UDP_RATE} per path, ping every ${PING_INTERVAL} s per path`,
        ``,
        `| path | ping received | TCP Mbit/s | UDP Mbit/s | UDP lost |`,
        `|---|---|---|---|---|`,
        `| a → r direct | ${pings.direct.received}/${pings.direct.sent} | ${mbps.tcpDirect} | ${mbps.udpDirect.mbps} | ${mbps.udpDirect.lost}/${mbps.udpDirect.packets} (${mbps.udpDirect.lostPct}%) |`,
        `| a → b relayed by r | ${pings.relayed.received}/${pings.relayed.sent} | ${mbps.tcpRelayed} | ${mbps.udpRelayed.mbps} | ${mbps.udpRelayed.lost}/${mbps.udpRelayed.packets} (${mbps.udpRelayed.lostPct}%) |`,
        ``,
        `| daemon | RSS low, 1st half after warm-up (MB) | RSS low, 2nd half (MB) | trough growth | RSS peak (MB) | fds after warm-up | fds max | fds last | mean CPU |`,
        `|---|---|---|---|---|---|---|---|---|`,
        ...summary,
        ``,
        `Handshakes completed after warm-up (rekeys): ${handshakes}. Session path faults: ${pathFaults.length}.`,
        ``,
        `t(s)  host  rss(MB)  fds  cpu(%)`,
        ...samples.map((s) => `${String(s.t).padStart(4)}  ${s.host.padEnd(4)}  ${(s.rssKb / 1024).toFixed(1).padStart(7)}  ${String(s.fds).padStart(3)}  ${s.cpuPct.toFixed(1).padStart(6)}`),
        ``,
      ];
      if (verdicts.length) lines.push(`Failures:`, ...verdicts.map((v) => `- ${v}`), ``);
      const report = lines.join("\n");
      console.log(report);
      mkdirSync(RECORD_DIR, { recursive: true });
      writeFileSync(REPORT, report);
      writeFileSync(
        join(net.logDir, "soak.json"),
        JSON.stringify({ seconds: SECONDS, warmup: WARMUP, rate: RATE, udpRate: UDP_RATE, mbps, pings, codes, samples, pathFaults, verdicts, counters: Object.fromEntries(hosts.map(([n], i) => [n, end[i]!.node])) }, null, 2),
      );

      expect(verdicts).toEqual([]);
    },
    (SECONDS + 240) * 1000,
  );
});
