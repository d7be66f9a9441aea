// Soak: two vine daemons under iperf3 and ping for SOAK_SECONDS (default 300), sampling each daemon's
// RSS and CPU every 10 s. Fails if RSS grows by more than 20% after the warm-up, if any ping is lost,
// or if iperf3 fails. Not part of `make test`: run it with `make soak` (SOAK_SECONDS=60 make soak).
//
// Knobs: SOAK_SECONDS (duration), SOAK_RATE (iperf3 bitrate, default 20M: load, not saturation, so a
// lost ping means vine lost it), SOAK_WARMUP (seconds, default 20% of the duration, at least 20).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor, parsePing, type ProcessHandle } from "../lib/netns.ts";
import { counters, directPair, type VineHost } from "../lib/vine.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const RATE = process.env.SOAK_RATE ?? "20M";
const WARMUP = Number(process.env.SOAK_WARMUP ?? Math.max(20, Math.round(SECONDS * 0.2)));
const SAMPLE_S = 10;
const PING_INTERVAL = 0.2;
const CLK_TCK = 100; // USER_HZ on Linux

interface Sample {
  t: number; // seconds since the load started
  host: string;
  rssKb: number;
  cpuPct: number; // of one core, over the last interval
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** utime + stime of a process (all its threads), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

describe(`soak: 2 daemons, iperf3 at ${RATE} + ping every ${PING_INTERVAL}s, ${SECONDS}s`, () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;

  beforeAll(async () => {
    if (!Number.isFinite(SECONDS) || SECONDS < 30) throw new Error(`SOAK_SECONDS must be at least 30, not ${process.env.SOAK_SECONDS}`);
    if (WARMUP >= SECONDS - SAMPLE_S) throw new Error(`SOAK_WARMUP (${WARMUP}s) leaves no sample after it in ${SECONDS}s`);
    net = new TestNet();
    ({ a, b } = await directPair(net, 63));
  }, 90_000);

  afterAll(async () => {
    await net?.cleanup();
  });

  test(
    "RSS stays within 20% of its post-warm-up value, no ping is lost, iperf3 completes",
    async () => {
      const server = net.spawn(b.ns, ["iperf3", "-s", "-B", b.overlayIp, "-p", "5201", "-1"]);
      await waitFor(async () => (await net.exec(b.ns, ["ss", "-Htln", "sport = :5201"])).stdout.includes("5201"), {
        timeoutMs: 10_000,
        what: "iperf3 server listening in b",
      });
      const pingCount = Math.floor(SECONDS / PING_INTERVAL);
      const ping = net.spawn(a.ns, ["ping", "-n", "-i", String(PING_INTERVAL), "-W", "2", "-c", String(pingCount), b.overlayIp]);
      const iperf = net.spawn(a.ns, ["iperf3", "-c", b.overlayIp, "-p", "5201", "-t", String(SECONDS), "-b", RATE, "-i", "0", "--json"]);

      const hosts: [string, ProcessHandle][] = [
        ["a", a.daemon!],
        ["b", b.daemon!],
      ];
      const samples: Sample[] = [];
      const start = Date.now();
      const last = new Map(hosts.map(([h, p]) => [h, { ticks: cpuTicks(p.pid), at: start }]));
      // A fixed sampling period, not a condition to wait for: sleep to the next 10 s mark.
      for (let k = 1; k * SAMPLE_S <= SECONDS; k++) {
        await Bun.sleep(Math.max(0, start + k * SAMPLE_S * 1000 - Date.now()));
        const now = Date.now();
        for (const [h, p] of hosts) {
          expect(p.proc.exitCode).toBeNull();
          const ticks = cpuTicks(p.pid);
          const prev = last.get(h)!;
          samples.push({ t: Math.round((now - start) / 1000), host: h, rssKb: rssKb(p.pid), cpuPct: Math.round(((ticks - prev.ticks) / CLK_TCK / ((now - prev.at) / 1000)) * 1000) / 10 });
          last.set(h, { ticks, at: now });
        }
      }

      const iperfCode = await Promise.race([iperf.exited, Bun.sleep(60_000).then(() => -1)]);
      const pingCode = await Promise.race([ping.exited, Bun.sleep(30_000).then(() => -1)]);
      const p = parsePing(net.log(ping));
      let iperfMbps = 0;
      try {
        iperfMbps = Math.round((JSON.parse(net.log(iperf)) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e5) / 10;
      } catch {}
      const c = await counters(net, a);

      // the report: one line per sample, and a JSON file beside the logs
      const lines = [`soak ${SECONDS}s, warm-up ${WARMUP}s, iperf3 ${RATE} (${iperfMbps} Mbit/s received), ping ${p.received}/${p.sent}`, "t(s)  host  rss(MB)  cpu(%)"];
      for (const s of samples) lines.push(`${String(s.t).padStart(4)}  ${s.host.padEnd(4)}  ${(s.rssKb / 1024).toFixed(1).padStart(7)}  ${s.cpuPct.toFixed(1).padStart(6)}`);
      const verdicts: string[] = [];
      for (const [h] of hosts) {
        const mine = samples.filter((s) => s.host === h);
        const base = mine.find((s) => s.t >= WARMUP);
        const after = mine.filter((s) => s.t >= WARMUP);
        const peak = Math.max(...after.map((s) => s.rssKb));
        const growth = base ? (peak - base.rssKb) / base.rssKb : 0;
        lines.push(`${h}: rss after warm-up ${(base!.rssKb / 1024).toFixed(1)} MB, peak ${(peak / 1024).toFixed(1)} MB (${(growth * 100).toFixed(1)}%), mean cpu ${(mine.reduce((x, s) => x + s.cpuPct, 0) / mine.length).toFixed(1)}%`);
        if (growth > 0.2) verdicts.push(`${h}: RSS grew ${(growth * 100).toFixed(1)}% after warm-up (${base!.rssKb} kB → ${peak} kB)`);
      }
      console.log(lines.join("\n"));
      writeFileSync(join(net.logDir, "soak.json"), JSON.stringify({ seconds: SECONDS, warmup: WARMUP, rate: RATE, iperfMbps, ping: p, samples, counters: c.node }, null, 2));

      expect(iperfCode).toBe(0);
      expect(iperfMbps).toBeGreaterThan(0);
      expect(pingCode).toBe(0);
      expect(p.sent).toBe(pingCount);
      expect(p.received).toBe(p.sent);
      expect(verdicts).toEqual([]);
      expect(c.node.state_write_errors ?? 0).toBe(0);
      expect(c.node.worker_stalls ?? 0).toBe(0);
      void server;
    },
    (SECONDS + 180) * 1000,
  );
});
