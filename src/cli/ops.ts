// Operator commands: status, peers, routes, sessions, counters, ping, snapshot.
// Each asks the running daemon over its control socket; when no daemon answers, the data views
// fall back to the last state persisted in SQLite and say so ("source": "state").

import { defineCommand } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { controlRequest } from "../daemon/control.ts";
import type { DaemonViews, SessionView, StatusView } from "../daemon/views.ts";
import { verifySnapshot } from "../daemon/snapshot.ts";
import { offlineViews, offlineSnapshot } from "./offline.ts";
import { ago, bytes, table } from "./table.ts";
import { daemonError, fail, printJson, resolveStateDir, stateArgs, formatArg, type Format } from "./common.ts";

type Views = DaemonViews & { sourceNote?: string };

async function fetchViews(args: { config?: string; "state-dir"?: string }): Promise<Views> {
  const stateDir = resolveStateDir(args);
  try {
    return (await controlRequest(stateDir, { cmd: "views" }, 3000)) as Views;
  } catch {
    const v = offlineViews(stateDir, args.config);
    return { ...v, sourceNote: `the daemon is not running; showing the last state saved in ${stateDir}/vine.db` };
  }
}

function note(v: Views, format: Format): void {
  if (v.sourceNote && format === "text") process.stderr.write(`note: ${v.sourceNote}\n`);
}

const commonArgs = { ...stateArgs, ...formatArg };

/** A read-only view command: fetch the views (live or saved), print JSON or a text rendering. */
function viewCommand(name: string, description: string, json: (v: Views) => unknown, text: (v: Views) => string) {
  return defineCommand({
    meta: { name, description },
    args: commonArgs,
    async run({ args }) {
      const v = await fetchViews(args);
      if (args.format === "json") return printJson(json(v));
      note(v, args.format as Format);
      console.log(text(v));
    },
  });
}

export const status = viewCommand(
  "status",
  "Identity, network, prefix, daemon phase and uptime, peer and path counts",
  (v) => v.status,
  (v) => {
    const s = v.status;
    const p = s.paths;
    // saved state may not say (a daemon that never started, or state from an older vine)
    const k = (x: unknown) => (x === null || x === undefined || x === "" ? "unknown" : String(x));
    return [
      `node        ${k(s.node)} (${k(s.network_id)})`,
      `peer_id     ${s.peer_id}`,
      `fingerprint ${s.fingerprint}`,
      `overlay     ${k(s.address)} on ${k(s.tun)}, owns ${k(s.prefix)}`,
      `listen      ${s.listen_port ? `udp/${s.listen_port}` : "unknown"}`,
      `daemon      ${s.daemon.phase}${s.daemon.pid ? ` pid ${s.daemon.pid}` : ""}${s.daemon.uptime_s !== null ? `, up ${s.daemon.uptime_s}s` : ""}`,
      `peers       ${s.peers.total} allowed, ${s.peers.with_session} with a session`,
      `paths       direct ${p.direct}, signaling_then_direct ${p.signaling_then_direct}, relay ${p.relay}, none ${p.none}`,
      `crypto      ${k(s.aead)}`,
      ...(s.memory ? [`memory      ${memoryText(s.memory)}`] : []),
      `source      ${s.source === "live" ? "live (daemon)" : "saved state (daemon not running)"}`,
      ...(s.tun ? [] : ["unknown     network, overlay address, TUN and port: no daemon has started on this state yet; give its config with -c FILE to show them"]),
    ].join("\n");
  },
);

function memoryText(m: NonNullable<StatusView["memory"]>): string {
  // A worker that has not reported yet (or the absent RX worker with VINE_WORKERS=1) shows "-".
  const mib = (b: number | null) => (b === null ? "-" : `${(b / 1048576).toFixed(1)} MiB`);
  const h = m.js_heap_used_bytes;
  return `rss ${mib(m.rss_bytes)}; JS heap in use: main ${mib(h.main)}, tx ${mib(h.tx)}, rx ${mib(h.rx)}`;
}

export const peers = viewCommand(
  "peers",
  "Allowed peers: identity, prefix, role, path and last contact",
  (v) => ({ source: v.status.source, peers: v.peers }),
  (v) =>
    table(
      ["NAME", "PREFIX", "PATH", "SESSION", "ROLE", "LAST HANDSHAKE", "PEER ID"],
      v.peers.map((p) => [
        p.name,
        p.prefix,
        p.path,
        p.session ? "up" : "down",
        [p.bootstrap ? "bootstrap" : "", p.relay_capable ? "relay" : "", p.wireguard_only ? "wireguard" : ""].filter(Boolean).join(",") || "peer",
        ago(p.last_handshake),
        p.peer_id,
      ]),
    ),
);

export const routes = viewCommand(
  "routes",
  "Overlay routes: each prefix and the peer that owns it",
  (v) => ({ source: v.status.source, routes: v.routes }),
  (v) => table(["PREFIX", "KIND", "OWNER", "PATH", "INSTALLED"], v.routes.map((r) => [r.prefix, r.kind, r.name, r.kind === "local" ? "local" : r.path, r.installed ? "yes" : "no"])),
);

export function sessionsText(list: SessionView[]): string {
  // A relay is an allowed peer too: show it by name (JSON keeps its peer_id).
  const names = new Map(list.map((s) => [s.peer_id, s.name]));
  return table(
    ["NAME", "PREFIX", "PATH", "ENDPOINT", "VIA", "RTT", "CIPHER", "LAST HANDSHAKE", "RX", "TX"],
    list.map((s) => [
      s.name,
      s.prefix,
      s.path,
      s.endpoint,
      s.via ? (names.get(s.via) ?? s.via.slice(0, 14) + "…") : null,
      s.rtt_ms === null ? null : `${s.rtt_ms.toFixed(2)} ms`,
      s.cipher,
      ago(s.last_handshake),
      bytes(s.rx_bytes),
      bytes(s.tx_bytes),
    ]),
  );
}

export const sessions = viewCommand(
  "sessions",
  "One session per allowed peer: path class, endpoint, relay, RTT, traffic",
  (v) => ({ source: v.status.source, sessions: v.sessions }),
  (v) => sessionsText(v.sessions),
);

export const counters = defineCommand({
  meta: { name: "counters", description: "Node and per-peer counters: traffic, handshakes, paths and every drop reason" },
  args: { ...commonArgs, peer: { type: "string", description: "only this peer (name or peer_id)" } },
  async run({ args }) {
    const v = await fetchViews(args);
    const c = v.counters;
    if (args.peer) {
      const p = v.peers.find((x) => x.name === args.peer || x.peer_id === args.peer);
      if (!p) fail(`no allowed peer named ${args.peer}`);
      const only = c.peers[p!.peer_id] ?? {};
      if (args.format === "json") return printJson({ source: v.status.source, peer_id: p!.peer_id, counters: only });
      console.log(table(["COUNTER", "VALUE"], Object.entries(only)));
      return;
    }
    if (args.format === "json") return printJson({ source: v.status.source, ...c });
    note(v, args.format as Format);
    const names = new Map(v.peers.map((p) => [p.peer_id, p.name]));
    console.log(table(["SCOPE", "COUNTER", "VALUE"], [
      ...Object.entries(c.node).map(([n, val]) => ["node", n, val]),
      ...Object.entries(c.peers).flatMap(([id, m]) => Object.entries(m).filter(([, val]) => val !== 0).map(([n, val]) => [names.get(id) ?? id.slice(0, 12), n, val])),
    ]));
  },
});

export const ping = defineCommand({
  meta: { name: "ping", description: "Probe an overlay address through the path vine uses; prints peer, path, via and RTT" },
  args: {
    ...commonArgs,
    target: { type: "positional", description: "overlay IPv4 address", required: true },
    // -c is --config in every command (here too); the count is -n, as in `vine ping IP -n 3`
    count: { type: "string", alias: "n", description: "number of probes", default: "4" },
    interval: { type: "string", alias: "i", description: "seconds between probes", default: "1" },
  },
  async run({ args }) {
    if (args.config && /^\d+$/.test(String(args.config)) && !existsSync(String(args.config))) {
      fail(`-c is --config (a config file) in every vine command, and there is no file ${args.config}; for ${args.config} probes use -n ${args.config} (--count)`);
    }
    const count = Number(String(args.count));
    const interval = Number(String(args.interval));
    if (!/^\d+$/.test(String(args.count)) || !Number.isSafeInteger(count) || count < 1) fail(`--count (-n) must be a positive integer, not ${JSON.stringify(args.count)}`);
    if (!Number.isFinite(interval) || interval < 0.01 || interval > 3600) fail(`--interval (-i) must be a number of seconds from 0.01 to 3600, not ${JSON.stringify(args.interval)}`);
    const intervalMs = Math.round(interval * 1000);
    const stateDir = resolveStateDir(args);
    let r: { target: string; peer_id: string; name: string; sent: number; received: number; replies: { seq: number; rtt_ms: number | null; path: string; via: string | null }[] };
    try {
      r = (await controlRequest(stateDir, { cmd: "ping", args: { ip: args.target, count, intervalMs } }, count * (intervalMs + 3000) + 2000)) as typeof r;
    } catch (e) {
      // the daemon's own answer ("no route to ...") names what is wrong with the target
      const code = (e as NodeJS.ErrnoException).code;
      fail(code ? daemonError(stateDir, e, "ping") : `ping ${args.target}: ${(e as Error).message}`);
    }
    if (args.format === "json") return printJson(r!);
    for (const x of r!.replies) {
      console.log(
        x.rtt_ms === null
          ? `probe ${x.seq} to ${r!.target} (${r!.name}): no reply [path ${x.path}${x.via ? ` via ${x.via}` : ""}]`
          : `reply from ${r!.target} (${r!.name}): seq=${x.seq} path=${x.path}${x.via ? ` via=${x.via}` : ""} rtt=${x.rtt_ms.toFixed(3)} ms`,
      );
    }
    console.log(`${r!.sent} probes sent, ${r!.received} replies, ${Math.round((100 * (r!.sent - r!.received)) / Math.max(1, r!.sent))}% lost`);
    if (r!.received === 0) process.exitCode = 1;
  },
});

export const snapshot = defineCommand({
  meta: { name: "snapshot", description: "Signed JSON snapshots of the node's state, for audits" },
  subCommands: {
    export: defineCommand({
      meta: { name: "export", description: "Write a signed snapshot (to stdout, or -o FILE) and keep it in the snapshots table" },
      args: { ...stateArgs, output: { type: "string", alias: "o", description: "file to write (mode 0600)" } },
      async run({ args }) {
        const stateDir = resolveStateDir(args);
        let live = true;
        let text: string;
        try {
          const r = (await controlRequest(stateDir, { cmd: "snapshot", args: {} }, 5000)) as { id: number };
          text = offlineSnapshot(stateDir, r.id);
        } catch {
          live = false;
          text = offlineSnapshot(stateDir, null);
        }
        if (args.output) {
          const { writeFileSync } = await import("node:fs");
          writeFileSync(String(args.output), text + "\n", { mode: 0o600 });
          process.stderr.write(`snapshot written to ${args.output}${live ? "" : " (from saved state: the daemon is not running)"}\n`);
        } else process.stdout.write(text + "\n");
      },
    }),
    verify: defineCommand({
      meta: { name: "verify", description: "Check a snapshot's signature and print who signed it" },
      args: { file: { type: "positional", required: true, description: "snapshot file" }, ...formatArg },
      run({ args }) {
        let text: string;
        try {
          text = readFileSync(String(args.file), "utf8");
        } catch (e) {
          fail(`cannot read ${args.file}: ${(e as Error).message}`);
        }
        const r = verifySnapshot(text!);
        if (args.format === "json") {
          printJson(r);
        } else if (r.ok) console.log(`valid: signed by ${r.node} (${r.signer}) at ${r.created_at}`);
        else process.stderr.write(`invalid snapshot ${args.file}: ${r.reason}\n`);
        if (!r.ok) process.exitCode = 1;
      },
    }),
  },
});
