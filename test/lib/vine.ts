// vine hosts for namespace tests: identities, configs, daemons, and JSON queries with deadlines.
//
// Uses the compiled binary (dist/vine) so every e2e test exercises what operators run.

import { existsSync, mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ProcessHandle, TestNet } from "./netns.ts";
import { waitFor } from "./wait.ts";

export const VINE = resolve(import.meta.dir, "../../dist/vine");

export function requireBinary(): void {
  if (!existsSync(VINE)) throw new Error(`${VINE} is missing: run \`make build\` first`);
}

export interface PeerEntry {
  host: VineHost;
  relayCapable?: boolean;
  endpoint?: string; // "udp://ip:port"
}

export interface VineHost {
  name: string;
  ns: string;
  dir: string;
  stateDir: string;
  config: string;
  peerId: string;
  x25519: string; // base64
  overlayIp: string; // e.g. 10.42.0.1
  prefix: string; // e.g. 10.42.0.0/24
  port: number;
  daemon: ProcessHandle | null;
}

/** Run a vine command outside any namespace (identity work needs no network). */
export function vineSync(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([VINE, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Create a host's identity in a fresh state directory under the net's log dir. */
export function makeHost(net: TestNet, name: string, ns: string, overlayIp: string, prefixLen = 24, port = 4100): VineHost {
  requireBinary();
  const dir = join(net.logDir, name);
  mkdirSync(dir, { recursive: true });
  const stateDir = join(dir, "state");
  const init = vineSync(["identity", "init", "--state-dir", stateDir]);
  if (init.code !== 0) throw new Error(`identity init for ${name} failed: ${init.stderr}`);
  const show = vineSync(["identity", "show", "--state-dir", stateDir, "--format", "json"]);
  const id = JSON.parse(show.stdout) as { peer_id: string; x25519_public: string };
  const parts = overlayIp.split(".").map(Number);
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  const ipNum = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const net4 = (ipNum & mask) >>> 0;
  const prefix = `${net4 >>> 24}.${(net4 >>> 16) & 255}.${(net4 >>> 8) & 255}.${net4 & 255}/${prefixLen}`;
  return { name, ns, dir, stateDir, config: join(dir, "vine.toml"), peerId: id.peer_id, x25519: id.x25519_public, overlayIp, prefix, port, daemon: null };
}

export interface ConfigOptions {
  network?: string;
  peers: PeerEntry[];
  bootstrap?: { host: VineHost; address: string }[];
  policy?: Partial<{ strict_allowlist: boolean; allow_relay: boolean; allow_signaling_upgrade: boolean; relay_service: boolean }>;
  extraPeers?: string; // raw TOML appended (e.g. a plain WireGuard peer)
  mtu?: number;
}

export function writeConfig(h: VineHost, o: ConfigOptions): void {
  const prefixLen = h.prefix.split("/")[1];
  const lines = [
    `[node]`,
    `name = "${h.name}"`,
    `network_id = "${o.network ?? "test-net"}"`,
    `state_dir = "${h.stateDir}"`,
    `listen_port = ${h.port}`,
    ``,
    `[tun]`,
    `name = "vine0"`,
    `address = "${h.overlayIp}"`,
    `prefix_len = ${prefixLen}`,
    `mtu = ${o.mtu ?? 1420}`,
    ``,
  ];
  for (const b of o.bootstrap ?? []) lines.push(`[[bootstrap_peers]]`, `peer_id = "${b.host.peerId}"`, `address = "${b.address}"`, ``);
  for (const p of o.peers) {
    lines.push(`[[allowed_peers]]`, `name = "${p.host.name}"`, `peer_id = "${p.host.peerId}"`, `prefix = "${p.host.prefix}"`, `relay_capable = ${p.relayCapable ?? false}`);
    if (p.endpoint) lines.push(`endpoint = "${p.endpoint}"`);
    lines.push(``);
  }
  if (o.extraPeers) lines.push(o.extraPeers, ``);
  const pol = { strict_allowlist: true, allow_relay: true, allow_signaling_upgrade: true, relay_service: false, ...o.policy };
  lines.push(`[policy]`, ...Object.entries(pol).map(([k, v]) => `${k} = ${v}`), ``);
  writeFileSync(h.config, lines.join("\n"), { mode: 0o600 });
  chmodSync(h.config, 0o600);
}

/** Start `vine daemon run` inside the host's namespace and wait until its control socket answers. */
export async function startDaemon(net: TestNet, h: VineHost, env: Record<string, string> = {}): Promise<ProcessHandle> {
  const handle = net.spawn(h.ns, [VINE, "daemon", "run", "-c", h.config], { logFile: join(h.dir, "daemon.log"), env });
  h.daemon = handle;
  await waitFor(
    async () => {
      const code = await Promise.race([handle.exited, Bun.sleep(0).then(() => null)]);
      if (code !== null) throw new Error(`daemon ${h.name} exited with ${code}: ${net.log(handle).slice(-2000)}`);
      const r = await net.exec(h.ns, [VINE, "status", "--state-dir", h.stateDir, "--format", "json"], { timeoutMs: 5000 });
      if (r.code !== 0) return null;
      const s = JSON.parse(r.stdout) as { source: string; daemon: { phase: string } };
      return s.source === "live" && s.daemon.phase === "running" ? s : null;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `daemon ${h.name} running` },
  );
  return handle;
}

/** Run a vine command inside the host's namespace against its state dir and parse its JSON. */
export async function vineJson<T = unknown>(net: TestNet, h: VineHost, args: string[]): Promise<T> {
  const r = await net.exec(h.ns, [VINE, ...args, "--state-dir", h.stateDir, "--format", "json"], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`vine ${args.join(" ")} on ${h.name} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface SessionJson {
  peer_id: string;
  name: string;
  prefix: string;
  path: "direct" | "signaling_then_direct" | "relay" | "none";
  endpoint: string | null;
  via: string | null;
  rtt_ms: number | null;
  cipher: "chacha20-poly1305" | "aes-256-gcm" | null;
  last_handshake: string | null;
  rx_bytes: number;
  tx_bytes: number;
}

export async function sessions(net: TestNet, h: VineHost): Promise<SessionJson[]> {
  return (await vineJson<{ sessions: SessionJson[] }>(net, h, ["sessions"])).sessions;
}

export async function counters(net: TestNet, h: VineHost): Promise<{ node: Record<string, number>; peers: Record<string, Record<string, number>> }> {
  return vineJson(net, h, ["counters"]);
}

/** Poll `vine sessions` until the session with `peer` has path `path`. */
export async function waitPath(net: TestNet, h: VineHost, peer: VineHost, path: SessionJson["path"], timeoutMs = 20_000): Promise<SessionJson> {
  return waitFor(
    async () => {
      const s = (await sessions(net, h)).find((x) => x.peer_id === peer.peerId);
      return s && s.path === path ? s : null;
    },
    { timeoutMs, intervalMs: 200, what: `${h.name} → ${peer.name} path ${path}` },
  );
}

/**
 * Two vine hosts a (10.42.0.1) and b (10.42.1.1) joined by one veth in 198.18.<subnet>.0/24, each
 * listing the other with a static endpoint; identities and configs written, no daemon started.
 */
export function configuredPair(net: TestNet, subnet: number): { a: VineHost; b: VineHost } {
  const nsA = net.ns("a");
  const nsB = net.ns("b");
  net.link(nsA, "eth0", `198.18.${subnet}.1/24`, nsB, "eth0", `198.18.${subnet}.2/24`);
  const a = makeHost(net, "a", nsA, "10.42.0.1");
  const b = makeHost(net, "b", nsB, "10.42.1.1");
  writeConfig(a, { peers: [{ host: b, endpoint: `udp://198.18.${subnet}.2:4100` }] });
  writeConfig(b, { peers: [{ host: a, endpoint: `udp://198.18.${subnet}.1:4100` }] });
  return { a, b };
}

/** configuredPair with both daemons running. */
export async function directPair(net: TestNet, subnet: number, env: Record<string, string> = {}): Promise<{ a: VineHost; b: VineHost }> {
  const { a, b } = configuredPair(net, subnet);
  await startDaemon(net, a, env);
  await startDaemon(net, b, env);
  return { a, b };
}
