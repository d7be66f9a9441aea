// Turns one `make bench` run into book/src/benchmarks.md: the peers.sh table, vine's ratios to Nebula and
// wireguard-go computed from the same run's raw.tsv, relay / handshake / idle figures, and each
// performance target marked met or not met.
//
// Run: ./node_modules/.bin/bun bench/report.ts --peers RUNDIR [--relay F] [--handshake F] [--idle F]
//        [--raw-dir DIR] [--out FILE]
// RUNDIR is a peers.sh result directory (raw.tsv, summary.md, meta.txt). The other inputs are the JSON
// lines printed by bench/relay.sh, bench/handshake.ts and bench/idle.sh; a missing one is "not measured".
// The tables also go to stdout.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { parseArgs } from "node:util";

/** metric -> vpn -> values over rounds, from peers.sh raw.tsv (round, pos, vpn, metric, value). */
export type RawMetrics = Map<string, Map<string, number[]>>;

export interface RoundStatus {
  ok: number;
  total: number;
}

export function parseRaw(tsv: string): { metrics: RawMetrics; status: Map<string, RoundStatus> } {
  const metrics: RawMetrics = new Map();
  const status = new Map<string, RoundStatus>();
  for (const line of tsv.split("\n").slice(1)) {
    const [, , vpn, metric, value] = line.split("\t");
    if (!vpn || !metric || value === undefined) continue;
    if (metric === "status") {
      const s = status.get(vpn) ?? { ok: 0, total: 0 };
      s.total++;
      if (value === "ok") s.ok++;
      status.set(vpn, s);
      continue;
    }
    const v = Number(value);
    if (value === "" || value === "NA" || !Number.isFinite(v)) continue;
    const byVpn = metrics.get(metric) ?? new Map<string, number[]>();
    byVpn.set(vpn, [...(byVpn.get(vpn) ?? []), v]);
    metrics.set(metric, byVpn);
  }
  return { metrics, status };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function medianOf(m: RawMetrics, metric: string, vpn: string): number | null {
  return median(m.get(metric)?.get(vpn) ?? []);
}

/** The rows of the ratio table: what vine is compared on, and which direction is better. */
export const COMPARED = [
  { metric: "tcp1_mbps", label: "TCP×1 Mbit/s", digits: 0 },
  { metric: "tcp4_mbps", label: "TCP×4 Mbit/s", digits: 0 },
  { metric: "udp_mbps", label: "UDP Mbit/s", digits: 0 },
  { metric: "tcp1_mbit_per_cpus", label: "Mbit per CPU-s (TCP×1)", digits: 0 },
  { metric: "ping_avg_ms", label: "ping avg ms (lower is better)", digits: 3 },
] as const;

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function fmt(v: number | null | undefined, digits: number, suffix = ""): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : `${v.toFixed(digits)}${suffix}`;
}

export function ratioTable(m: RawMetrics): string {
  const rows = [
    "| metric | vine | nebula | wireguard-go | vine / nebula | vine / wireguard-go |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const c of COMPARED) {
    const [v, n, w] = ["vine", "nebula", "wireguard"].map((vpn) => medianOf(m, c.metric, vpn));
    rows.push(
      `| ${c.label} | ${fmt(v, c.digits)} | ${fmt(n, c.digits)} | ${fmt(w, c.digits)} | ${fmt(ratio(v ?? null, n ?? null), 2, "×")} | ${fmt(ratio(v ?? null, w ?? null), 2, "×")} |`,
    );
  }
  return rows.join("\n");
}

/** One fallback configuration: vine alone in peers.sh under switches (noble crypto, no offloads...). */
export interface FallbackRun {
  label: string;
  metrics: RawMetrics | null;
}

/** vine's default figures against each fallback configuration measured in the same make bench. */
export function fallbackTable(main: RawMetrics, runs: readonly FallbackRun[]): string {
  const rows = ["| configuration | " + COMPARED.map((c) => c.label).join(" | ") + " |", "|---|" + COMPARED.map(() => "---:").join("|") + "|"];
  const row = (label: string, m: RawMetrics | null) =>
    `| ${label} | ${COMPARED.map((c) => (m ? fmt(medianOf(m, c.metric, "vine"), c.digits) : "not measured")).join(" | ")} |`;
  rows.push(row("default (libcrypto, offloads, AES-256-GCM between vine hosts)", main));
  for (const r of runs) rows.push(row(r.label, r.metrics));
  return rows.join("\n");
}

export interface RelayResult {
  relayed_tcp1_mbps: number;
  direct_tcp1_mbps: number;
  relayed_pct_of_direct: number | null;
  overlay_mtu: number;
  duration_s: number;
  relay_cpu_s: number;
  relay_full_size_packet_ok?: boolean;
  underlay_fragments_created?: number;
}
export interface HandshakeResult {
  responder_per_s: number;
  responder_windows_per_s?: number[];
  round_trip_per_s: number;
  aead: string;
}
export interface IdleResult {
  peers: number;
  seconds: number;
  cpu_pct: number;
  rss_mib: number;
}

export type TargetState = "met" | "not met" | "not measured";
export interface Target {
  target: string;
  measured: string;
  state: TargetState;
}

function judge(value: number | null, ok: (v: number) => boolean): TargetState {
  return value === null || !Number.isFinite(value) ? "not measured" : ok(value) ? "met" : "not met";
}

/** The targets of the "Performance" issue, each judged from this run only. */
export function targets(m: RawMetrics, relay: RelayResult | null, hs: HandshakeResult | null, idle: IdleResult | null): Target[] {
  const vsNebula = (metric: string) => ratio(medianOf(m, metric, "vine"), medianOf(m, metric, "nebula"));
  const out: Target[] = [];
  const nebulaTarget = (label: string, metric: string, factor: number) => {
    const r = vsNebula(metric);
    out.push({ target: `${label} ≥ ${factor}× Nebula`, measured: fmt(r, 2, "×"), state: judge(r, (v) => v >= factor) });
  };
  nebulaTarget("TCP×1", "tcp1_mbps", 3);
  nebulaTarget("Mbit per CPU-s", "tcp1_mbit_per_cpus", 3);
  nebulaTarget("TCP×4", "tcp4_mbps", 2);
  nebulaTarget("UDP", "udp_mbps", 2);
  const pv = medianOf(m, "ping_avg_ms", "vine");
  const pw = medianOf(m, "ping_avg_ms", "wireguard");
  out.push({
    target: "ping avg ≤ wireguard-go's",
    measured: `${fmt(pv, 3)} ms vs ${fmt(pw, 3)} ms`,
    state: pv === null || pw === null ? "not measured" : pv <= pw ? "met" : "not met",
  });
  const pct = relay?.relayed_pct_of_direct ?? null;
  out.push({ target: "relayed TCP×1 ≥ 50 % of direct", measured: fmt(pct, 1, " %"), state: judge(pct, (v) => v >= 50) });
  const atSpec = idle !== null && idle.peers >= 10 && idle.seconds >= 60;
  out.push({
    target: "idle CPU < 1 % over 60 s with 10 peers",
    measured: idle ? `${fmt(idle.cpu_pct, 2, " %")} (${idle.peers} peers, ${idle.seconds} s)` : "–",
    state: atSpec ? judge(idle.cpu_pct, (v) => v < 1) : "not measured",
  });
  out.push({
    target: "idle RSS ≤ 64 MiB",
    measured: idle ? fmt(idle.rss_mib, 1, " MiB") : "–",
    state: judge(idle?.rss_mib ?? null, (v) => v <= 64),
  });
  out.push({
    target: "≥ 2,000 handshakes/s per responder",
    measured: hs ? `${hs.responder_per_s}/s` : "–",
    state: judge(hs?.responder_per_s ?? null, (v) => v >= 2000),
  });
  return out;
}

export function targetTable(ts: Target[]): string {
  const mark = (s: TargetState) => (s === "met" ? "**met**" : s === "not met" ? "**not met**" : "not measured");
  return ["| target | measured | |", "|---|---:|---|", ...ts.map((t) => `| ${t.target} | ${t.measured} | ${mark(t.state)} |`)].join("\n");
}

/** The last line of a file that parses as a JSON object, or null (missing file, failed step). */
export function readJsonLine<T>(file: string | undefined): T | null {
  if (!file || !existsSync(file)) return null;
  const lines = readFileSync(file, "utf8").trim().split("\n").reverse();
  for (const line of lines) {
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === "object") return v as T;
    } catch {
      // progress output, keep looking
    }
  }
  return null;
}

export interface PageInput {
  date: string;
  machine: string;
  versions: string[];
  settings: string;
  rawDir: string;
  peersSummary: string;
  /** Free text from whoever ran the bench (e.g. other load on the machine). */
  note?: string;
  metrics: RawMetrics;
  relay: RelayResult | null;
  handshake: HandshakeResult | null;
  idle: IdleResult | null;
  fallbacks?: FallbackRun[];
}

export function renderPage(p: PageInput): string {
  const r = p.relay;
  const h = p.handshake;
  const i = p.idle;
  const relayText = r
    ? `Relayed TCP×1 **${r.relayed_tcp1_mbps} Mbit/s**, direct **${r.direct_tcp1_mbps} Mbit/s** between the same two hosts: ` +
      `**${fmt(r.relayed_pct_of_direct, 1)} %** of direct (overlay MTU ${r.overlay_mtu}, ${r.duration_s} s runs; the relay used ` +
      `${r.relay_cpu_s} CPU-s).${r.relay_full_size_packet_ok === false ? " A full-size overlay packet did not cross the relay." : ""}` +
      (r.underlay_fragments_created
        ? ` The underlay created ${r.underlay_fragments_created} IP fragments during the relayed run: the relay's extra ` +
          `headers push full-size overlay packets past the 1500-byte underlay MTU.`
        : "")
    : "Not measured: bench/relay.sh did not complete (its log is in the raw directory).";
  const hsText = h
    ? `**${h.responder_per_s} handshakes/s** per responder (` +
      (h.responder_windows_per_s ? `median of windows at ${h.responder_windows_per_s.join(", ")}/s; ` : "") +
      `check mac1 + consume initiation + create response, one thread, ` +
      `${h.aead} AEAD); a full round trip (both sides) runs at ${h.round_trip_per_s}/s.`
    : "Not measured: bench/handshake.ts did not complete.";
  const idleText = i
    ? `Hub with ${i.peers} peers, idle: **${fmt(i.cpu_pct, 2)} % CPU** over ${i.seconds} s, RSS **${fmt(i.rss_mib, 1)} MiB**.`
    : "Not measured: bench/idle.sh was skipped or did not complete.";
  return `# Benchmarks

Produced by \`make bench\` (bench/run.sh) on ${p.date}. Every number on this page comes from that one run;
rerun it to refresh the page. Compare vine only against peers measured in the same run.

- Machine: ${p.machine}
${p.versions.map((v) => `- ${v}`).join("\n")}
- Settings: ${p.settings}
- Raw output: \`${p.rawDir}\`
${p.note ? `- Note: ${p.note}\n` : ""}
## Targets (issue "Performance")

${targetTable(targets(p.metrics, r, h, i))}

## vine against Nebula and wireguard-go

Medians over rounds from the same peers.sh run as the table below; a ratio above 1× means vine is
ahead, except for ping, where below 1× is better.

${ratioTable(p.metrics)}

## Two hosts, side by side (../shared/bench/peers.sh)

${p.peersSummary.trim()}

## Fallback matrix

vine alone through the same peers.sh, once per configuration (fewer rounds than the table above, so
noisier), with the switches a host without libcrypto or with an old kernel ends up with:

${p.fallbacks && p.fallbacks.length > 0 ? fallbackTable(p.metrics, p.fallbacks) : "Not measured in this run (FALLBACKS=0)."}

## Relay

${relayText}

Three namespaces A – R – B on separate links, R not forwarding IP: A and B know each other only through
R (\`relay_capable\`, \`relay_service = true\` on R). The run waits until \`vine sessions\` shows path
\`relay\` on both ends, then runs iperf3 TCP×1 A→B; the direct figure links A and B with a veth pair
and static endpoints. Source: bench/relay.sh.

## Handshakes

${hsText}

Source: bench/handshake.ts, the WireGuard engine in src/wg/handshake.ts without the daemon around it.

## Idle

${idleText}

Eleven namespaces on one bridge, every host runs vine; CPU is utime+stime of the hub's daemon from
/proc/PID/stat across the window, after the sessions are up. Source: bench/idle.sh.

## Running it

\`make bench\` as root (it builds \`dist/vine\` first); \`bash bench/run.sh --install\` apt-gets missing tools.
Knobs: \`ROUNDS\` [3] and \`DURATION\` [10 s] for peers.sh and relay.sh, \`VPNS\`, \`IDLE=0\` to skip the
idle run, \`BENCH_OUT\` for the raw output, \`NOTE\` for a line on this page. Each step also runs alone:
\`bash bench/relay.sh\` (\`RELAY_MTU\`, \`--check-topology\`), \`./node_modules/.bin/bun bench/handshake.ts\`,
\`bash bench/idle.sh\` (\`IDLE_SECONDS\`, \`IDLE_PEERS\`, \`--check-topology\`). Namespaces are named
\`vb-*\` (peers.sh: \`bA\`, \`bB\`) and removed when a script exits, also on failure.

## How the numbers are taken

- peers.sh: two namespaces joined by a veth pair, fresh for every VPN and round, rounds interleaved;
  iperf3 client in A, server in B. CPU-s is utime+stime of both VPN processes during the TCP×1 run.
- Both tunnel ends, iperf3 client and server share ${cpus().length} cores, so userspace VPNs are
  CPU-bound; the ratios and Mbit per CPU-s are the comparable figures.
- UDP uses \`-b 0\`: the loss is the sender overrunning the tunnel; UDP Mbit/s is what arrived.
`;
}

function peersVersions(metaFile: string): string[] {
  if (!existsSync(metaFile)) return [];
  return readFileSync(metaFile, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("version ") || l.startsWith("iperf3:") || l.startsWith("rounds:"))
    .map((l) => l.replace(/^version /, ""));
}

/** When peers.sh started (its meta.txt "date:" line); now if that is missing. */
function runDate(metaFile: string): string {
  const line = existsSync(metaFile) ? readFileSync(metaFile, "utf8").split("\n").find((l) => l.startsWith("date: ")) : undefined;
  return line ? line.slice("date: ".length).trim() : new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function cpuModel(): string {
  return cpus()[0]?.model?.trim() ?? "unknown CPU";
}

function vineVersion(bin: string): string {
  const r = Bun.spawnSync([bin, "--version"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "vine --version failed";
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      peers: { type: "string" },
      relay: { type: "string" },
      handshake: { type: "string" },
      idle: { type: "string" },
      "raw-dir": { type: "string" },
      out: { type: "string" },
      vine: { type: "string", default: "./dist/vine" },
      note: { type: "string" },
      fallback: { type: "string", multiple: true },
    },
  });
  if (!values.peers || !existsSync(`${values.peers}/raw.tsv`)) {
    console.error(`report: --peers must name a peers.sh result directory with raw.tsv (got ${values.peers ?? "nothing"})`);
    process.exit(2);
  }
  const { metrics } = parseRaw(readFileSync(`${values.peers}/raw.tsv`, "utf8"));
  const summaryFile = `${values.peers}/summary.md`;
  const meta = peersVersions(`${values.peers}/meta.txt`);
  const relay = readJsonLine<RelayResult>(values.relay);
  const handshake = readJsonLine<HandshakeResult>(values.handshake);
  const idle = readJsonLine<IdleResult>(values.idle);
  const page = renderPage({
    date: runDate(`${values.peers}/meta.txt`),
    machine: `${cpus().length} cores (${cpuModel()}), Linux ${release()}`,
    // peers.sh's own "vine:" line repeats the version printed here
    versions: [`vine: ${vineVersion(values.vine!)}`, ...meta.filter((l) => !l.startsWith("rounds:") && !l.startsWith("vine:"))],
    settings: meta.find((l) => l.startsWith("rounds:")) ?? "see raw output",
    rawDir: values["raw-dir"] ?? values.peers,
    note: values.note,
    peersSummary: existsSync(summaryFile) ? readFileSync(summaryFile, "utf8") : "peers.sh wrote no summary.",
    metrics,
    relay,
    handshake,
    idle,
    fallbacks: (values.fallback ?? []).map((spec) => {
      const [label, dir] = [spec.slice(0, spec.lastIndexOf("=")), spec.slice(spec.lastIndexOf("=") + 1)];
      return { label, metrics: existsSync(`${dir}/raw.tsv`) ? parseRaw(readFileSync(`${dir}/raw.tsv`, "utf8")).metrics : null };
    }),
  });
  if (values.out) writeFileSync(values.out, page);
  console.log(`\n${ratioTable(metrics)}\n\n${targetTable(targets(metrics, relay, handshake, idle))}\n`);
  if (values.out) console.log(`wrote ${values.out}`);
}
