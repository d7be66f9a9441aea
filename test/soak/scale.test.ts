// Scale: SCALE_HOSTS (default 20) vine daemons on one LAN bridge, full mesh — every host lists every
// other with its static endpoint; host 1 is also everyone's bootstrap peer and relay (as in
// examples/multi-pc), so initiators send the same initiation to a direct endpoint and through the
// relay, and the responders' duplicate suppression is exercised. All mesh daemons are started at
// once (fresh state); they bring their sessions up on their own (lookups through the bootstrap peer).
// Every host pings every other host's overlay address (N·(N−1) ordered pairs, each retried until it
// answers or a deadline passes), then every host's `vine sessions --format json` must show a direct
// session with each of its N−1 peers.
//
// Measured in the same run, and written to /tmp/vine-testnet/scale-report.md (and printed):
//   - RSS of every mesh daemon, and of a daemon with 1 peer (a separate pair on the same bridge,
//     another network): memory per peer = (median mesh RSS − 1-peer RSS) / (N − 2);
//   - handshake CPU: the mesh daemons' CPU-seconds from spawn to converged, less N times the CPU a
//     daemon spends booting (measured on the 1-peer daemons, started first, at "running"), divided by
//     the handshakes completed (counters; each handshake counts once at each end);
//   - convergence time: from spawning the mesh daemons to all pairs answered and all sessions direct.
//
// Not part of `make test`: `make soak` runs it (with the soak test). Knobs: SCALE_HOSTS (>= 3),
// SCALE_PING_CONCURRENCY (default 8 pings in flight), SCALE_DEADLINE_S (default 150 s for the mesh).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RECORD_DIR, TestNet, waitFor } from "../lib/netns.ts";
import { cpuTicks, CLK_TCK, fdCount, rssKb } from "../lib/proc.ts";
import { counters, makeHost, sessions, startDaemon, VINE, writeConfig, type VineHost } from "../lib/vine.ts";

/** Path classes, worst first (a change to a lower index is a downgrade). */
const RANK = ["none", "relay", "signaling_then_direct", "direct"];

const N = Number(process.env.SCALE_HOSTS ?? 20);
const CONCURRENCY = Number(process.env.SCALE_PING_CONCURRENCY ?? 8);
const DEADLINE_S = Number(process.env.SCALE_DEADLINE_S ?? 150);
const REPORT = join(RECORD_DIR, "scale-report.md");
const SUBNET = 40; // underlay 198.18.40.0/24

const lanIp = (i: number) => `198.18.${SUBNET}.${i}`;

type Counters = Awaited<ReturnType<typeof counters>>;

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

describe(`scale: ${N} daemons, full mesh on one LAN`, () => {
  let net: TestNet;
  const mesh: VineHost[] = [];
  let soloA: VineHost;
  let soloB: VineHost;

  beforeAll(() => {
    if (!Number.isInteger(N) || N < 3 || N > 200) throw new Error(`SCALE_HOSTS must be an integer in 3..200, not ${process.env.SCALE_HOSTS}`);
    net = new TestNet();
    const lan = net.ns("lan");
    net.bridge(lan, "br0");
    for (let i = 1; i <= N; i++) {
      const name = `h${String(i).padStart(2, "0")}`;
      const ns = net.host(name, { bridgeNs: lan, bridge: "br0", addr: `${lanIp(i)}/24` });
      mesh.push(makeHost(net, name, ns, `10.42.${i}.1`));
    }
    const hub = mesh[0]!;
    const boot = [{ host: hub, address: `udp://${lanIp(1)}:4100` }];
    for (const h of mesh) {
      const peers = mesh
        .filter((p) => p !== h)
        .map((p) => ({ host: p, endpoint: `udp://${lanIp(mesh.indexOf(p) + 1)}:4100`, relayCapable: p === hub }));
      if (h === hub) writeConfig(h, { peers, policy: { relay_service: true } });
      else writeConfig(h, { peers, bootstrap: boot });
    }
    // The 1-peer reference: two daemons of another network on the same bridge, peered only with each other.
    const nsA = net.host("solo-a", { bridgeNs: lan, bridge: "br0", addr: `${lanIp(201)}/24` });
    const nsB = net.host("solo-b", { bridgeNs: lan, bridge: "br0", addr: `${lanIp(202)}/24` });
    soloA = makeHost(net, "solo-a", nsA, "10.42.221.1");
    soloB = makeHost(net, "solo-b", nsB, "10.42.222.1");
    writeConfig(soloA, { network: "scale-solo", peers: [{ host: soloB, endpoint: `udp://${lanIp(202)}:4100` }] });
    writeConfig(soloB, { network: "scale-solo", peers: [{ host: soloA, endpoint: `udp://${lanIp(201)}:4100` }] });
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  test(
    `all ${N * (N - 1)} ordered pairs answer pings; every session is direct`,
    async () => {
      // The 1-peer reference first, one daemon at a time: its CPU at "running" is the cost of a boot.
      for (const h of [soloA, soloB]) await startDaemon(net, h);
      const bootTicks = median([soloA, soloB].map((h) => cpuTicks(h.daemon!.pid)));

      // The mesh: every daemon spawned at once, then each waited for.
      const tStart = Date.now();
      for (const h of mesh) h.daemon = net.spawn(h.ns, [VINE, "daemon", "run", "-c", h.config], { logFile: join(h.dir, "daemon.log") });
      for (const h of mesh) {
        await waitFor(
          async () => {
            if (h.daemon!.proc.exitCode !== null) throw new Error(`daemon ${h.name} exited with ${h.daemon!.proc.exitCode}: ${net.log(h.daemon!).slice(-2000)}`);
            const r = await net.exec(h.ns, [VINE, "status", "--state-dir", h.stateDir, "--format", "json"], { timeoutMs: 5000 });
            if (r.code !== 0) return null;
            const st = JSON.parse(r.stdout) as { source: string; daemon: { phase: string } };
            return st.source === "live" && st.daemon.phase === "running";
          },
          { timeoutMs: 60_000, intervalMs: 100, what: `daemon ${h.name} running` },
        );
      }
      const tRunning = Date.now();

      // Every ordered pair, retried until it answers: a first packet waits for a handshake.
      const pairs: [VineHost, VineHost][] = [];
      for (const a of mesh) for (const b of mesh) if (a !== b) pairs.push([a, b]);
      const deadline = tStart + DEADLINE_S * 1000;
      const answeredAt = new Map<string, number>();
      const attempts = new Map<string, number>();
      let next = 0;
      const worker = async () => {
        for (;;) {
          const k = next++;
          if (k >= pairs.length) return;
          const [a, b] = pairs[k]!;
          const key = `${a.name}>${b.name}`;
          for (let n = 1; Date.now() < deadline; n++) {
            attempts.set(key, n);
            const r = await net.ping(a.ns, b.overlayIp, { count: 1, intervalS: 0.2, waitS: 1 });
            if (r.received > 0) {
              answeredAt.set(key, Date.now());
              break;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const tPinged = Date.now();
      const unanswered = pairs.map(([a, b]) => `${a.name}>${b.name}`).filter((k) => !answeredAt.has(k));

      // Every host: a direct session with every peer.
      const notDirect: string[] = [];
      let tConverged = tPinged;
      if (unanswered.length === 0) {
        for (const h of mesh) {
          try {
            await waitFor(
              async () => {
                const s = await sessions(net, h);
                const peers = mesh.filter((p) => p !== h);
                return peers.every((p) => s.find((x) => x.peer_id === p.peerId)?.path === "direct") ? s : null;
              },
              { timeoutMs: Math.max(5_000, deadline - Date.now()), intervalMs: 250, what: `${h.name}: a direct session with each of its ${N - 1} peers` },
            );
          } catch {
            const s = await sessions(net, h).catch(() => []);
            for (const p of mesh) {
              if (p === h) continue;
              const x = s.find((y) => y.peer_id === p.peerId);
              if (x?.path !== "direct") notDirect.push(`${h.name}→${p.name}: ${x ? x.path : "absent"}`);
            }
          }
        }
        tConverged = Date.now();
      }
      const cpu1 = new Map(mesh.map((h) => [h, cpuTicks(h.daemon!.pid)]));
      const after = new Map<VineHost, Counters>();
      for (const h of mesh) after.set(h, await counters(net, h));

      // The 1-peer reference: its session up and a ping answered, measured after the mesh converged.
      const soloPing = await waitFor(
        async () => ((await net.ping(soloA.ns, soloB.overlayIp, { count: 1, waitS: 1 })).received > 0 ? true : null),
        { timeoutMs: 20_000, intervalMs: 200, what: "solo-a → solo-b ping" },
      ).catch(() => false);
      const soloRss = [soloA, soloB].map((h) => rssKb(h.daemon!.pid));

      // Numbers.
      const meshRss = mesh.map((h) => rssKb(h.daemon!.pid));
      const fds = mesh.map((h) => fdCount(h.daemon!.pid));
      const count = (h: VineHost, name: string) => after.get(h)!.node[name] ?? 0;
      const sum = (name: string) => mesh.reduce((t, h) => t + count(h, name), 0);
      const handshakes = sum("handshakes_completed");
      const cpuTotalS = mesh.reduce((t, h) => t + cpu1.get(h)!, 0) / CLK_TCK;
      const bootS = bootTicks / CLK_TCK;
      const cpuS = cpuTotalS - N * bootS;
      const cpuPerHandshakeMs = handshakes > 0 ? (cpuS / handshakes) * 1000 : NaN;
      const soloMedian = median(soloRss);
      const perPeerVsSolo = (median(meshRss) - soloMedian) / (N - 2);
      const convergenceS = (tConverged - tStart) / 1000;
      const ordered = [...answeredAt.values()].sort((x, y) => x - y);
      const p50 = ordered.length ? (ordered[Math.floor(ordered.length * 0.5)]! - tStart) / 1000 : NaN;
      const retried = [...attempts.values()].filter((n) => n > 1).length;

      const lines = [
        `# vine scale report`,
        ``,
        `${new Date().toISOString()} — \`bun test test/soak/scale.test.ts\` (SCALE_HOSTS=${N}, ping concurrency ${CONCURRENCY}); kernel ${(await Bun.$`uname -r`.text()).trim()}, ${navigator.hardwareConcurrency} CPUs`,
        ``,
        `${N} daemons (dist/vine) on one bridge, full mesh (each lists ${N - 1} peers with static endpoints; h01 is`,
        `also bootstrap and relay for all); every host pings every other (${pairs.length} ordered pairs).`,
        ``,
        `| what | value |`,
        `|---|---|`,
        `| all ${N} daemons running (spawned at once) | ${((tRunning - tStart) / 1000).toFixed(1)} s |`,
        `| pairs answered | ${answeredAt.size} / ${pairs.length} (${retried} needed more than one ping; half answered by ${p50.toFixed(1)} s) |`,
        `| all pairs answered | ${((tPinged - tStart) / 1000).toFixed(1)} s after spawn |`,
        `| convergence (all pairs answered and all ${N * (N - 1)} sessions direct) | ${convergenceS.toFixed(1)} s after spawn |`,
        `| RSS per mesh daemon (${N - 1} peers) | median ${mb(median(meshRss))} MB, min ${mb(Math.min(...meshRss))}, max ${mb(Math.max(...meshRss))} |`,
        `| RSS of a 1-peer daemon (same run) | ${soloRss.map(mb).join(" MB, ")} MB |`,
        `| memory per peer, vs the 1-peer daemon | ${perPeerVsSolo.toFixed(0)} kB ((median mesh − median 1-peer) / ${N - 2}) |`,
        `| handshakes completed | ${handshakes} (counted at both ends: ${handshakes / 2} handshakes for ${pairs.length / 2} pairs) |`,
        `| daemon CPU, spawn → converged | ${cpuTotalS.toFixed(1)} CPU-s (all ${N} daemons), less ${N} × ${bootS.toFixed(2)} s boot = ${cpuS.toFixed(1)} CPU-s (includes pings, probes, claims, lookups) |`,
        `| handshake CPU | ${cpuPerHandshakeMs.toFixed(1)} ms per completed handshake end (CPU-s after boot / handshakes_completed; an upper bound) |`,
        `| handshake messages in | ${sum("handshake_messages_in")} |`,
        `| initiations sent / resent | ${sum("handshake_initiations_sent")} / ${sum("handshake_initiations_resent")} |`,
        `| duplicates dropped (handshake_duplicates) | ${sum("handshake_duplicates")} |`,
        `| replays refused (handshake_replayed) | ${sum("handshake_replayed")} |`,
        `| cookie replies sent | ${sum("handshake_cookie_replies_sent")} |`,
        // Convergence detours: a pair whose direct handshake is slow falls back to the relay for a while,
        // and the relay refuses envelopes until its own session with the destination is up.
        `| convergence detours: fallback_transitions / relay_usage / relay refusals (drop_relay_refused on the relay, relay_refused_received on senders) | ${sum("fallback_transitions")} / ${sum("relay_usage")} / ${sum("drop_relay_refused")}, ${sum("relay_refused_received")} |`,
        `| open fds per daemon | median ${median(fds)}, max ${Math.max(...fds)} |`,
        ``,
      ];
      if (unanswered.length) lines.push(`Unanswered pairs (${unanswered.length}): ${unanswered.slice(0, 40).join(", ")}`, ``);
      if (notDirect.length) lines.push(`Sessions not direct (${notDirect.length}): ${notDirect.slice(0, 40).join(", ")}`, ``);
      // Which downgrades, and why (each daemon's events table; read-only, the daemons keep running).
      const downgrades = new Map<string, number>();
      for (const h of mesh) {
        const db = new Database(join(h.stateDir, "vine.db"), { readonly: true });
        try {
          const rows = db
            .query("SELECT from_path AS f, to_path AS t, json_extract(detail, '$.reason') AS r FROM events WHERE kind = 'path_change'")
            .all() as { f: string; t: string; r: string | null }[];
          for (const { f, t, r } of rows) {
            if (f === "none" || RANK.indexOf(t) >= RANK.indexOf(f)) continue;
            const key = `${f} → ${t} (${r ?? "no reason"})`;
            downgrades.set(key, (downgrades.get(key) ?? 0) + 1);
          }
        } finally {
          db.close();
        }
      }
      if (downgrades.size) lines.push(`Path downgrades while converging, from the events tables: ${[...downgrades].map(([k, n]) => `${k} × ${n}`).join("; ")}`, ``);
      lines.push(`| host | RSS (MB) | fds | CPU-s since spawn | handshakes_completed | handshake_messages_in | duplicates | replayed |`, `|---|---|---|---|---|---|---|---|`);
      mesh.forEach((h, i) => {
        lines.push(
          `| ${h.name} | ${mb(meshRss[i]!)} | ${fds[i]} | ${(cpu1.get(h)! / CLK_TCK).toFixed(2)} | ${count(h, "handshakes_completed")} | ${count(h, "handshake_messages_in")} | ${count(h, "handshake_duplicates")} | ${count(h, "handshake_replayed")} |`,
        );
      });
      const report = lines.join("\n") + "\n";
      mkdirSync(RECORD_DIR, { recursive: true });
      writeFileSync(REPORT, report);
      console.log(report);

      for (const h of [...mesh, soloA, soloB]) expect(h.daemon!.proc.exitCode).toBeNull();
      expect(unanswered).toEqual([]);
      expect(notDirect).toEqual([]);
      expect(soloPing).toBe(true);
      for (const h of mesh) expect(after.get(h)!.node.worker_stalls ?? 0).toBe(0);
      // Fresh state: at least one handshake per pair, counted at both ends.
      expect(handshakes).toBeGreaterThanOrEqual(N * (N - 1));
    },
    (N * 3 + DEADLINE_S + 120) * 1000,
  );
});
