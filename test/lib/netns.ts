// The namespace test library: hosts, LANs, NAT routers and processes in network namespaces.
//
// Every namespace a TestNet creates is named `vt-<4 hex>-<name>`; the creator's PID (and start time,
// against PID reuse) is recorded in /tmp/vine-testnet/vt-<4 hex>.pid, so a later run removes only the
// leftovers of runs that died, never those of a run still going. Nothing is created in the root
// namespace: veth pairs are created inside a test namespace with the peer placed in another.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parsePing, type PingResult } from "./ping.ts";
import { waitFor, type WaitOptions } from "./wait.ts";

export { waitFor } from "./wait.ts";
export { parsePing, type PingResult } from "./ping.ts";

export const RECORD_DIR = "/tmp/vine-testnet";
const GROUP_PATTERN = /^(vt-[0-9a-f]{4})-/;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ProcessHandle {
  pid: number;
  ns: string;
  cmd: string[];
  logFile: string;
  /** Resolves with the exit code (or 128 + signal) when the process ends. */
  exited: Promise<number>;
  proc: Subprocess;
}

/** A UDP block installed by blockUdp; pass it to unblock. */
export interface UdpBlock {
  ns: string;
  table: string;
}

export interface NatRouterOptions {
  /** The WAN side: attached to `bridge` in namespace `ns` with address `addr` ("198.18.0.11/24"). */
  wan: { ns: string; bridge: string; addr: string; gateway?: string };
  /** The LAN side: a bridge "lan0" inside the router with address `addr` ("198.19.1.1/24"). */
  lan: { addr: string };
  /** A hard (symmetric) NAT: `masquerade random`, a new source port per destination. */
  hard?: boolean;
}

export interface NatRouter {
  ns: string;
  wanIp: string;
  lanIp: string;
  lanBridge: string; // attach LAN hosts to this bridge in `ns`
}

let leftoversCleaned = false;

export class TestNet {
  /** "vt-1a2b-": the prefix of every namespace this instance creates. */
  readonly prefix: string;
  readonly logDir: string;
  private readonly group: string;
  private readonly namespaces: string[] = [];
  private readonly processes: ProcessHandle[] = [];
  private portCounter = 0;
  private blockCounter = 0;

  constructor() {
    if (!leftoversCleaned) {
      leftoversCleaned = true;
      TestNet.cleanupLeftovers();
    }
    mkdirSync(RECORD_DIR, { recursive: true });
    const existing = new Set(listNamespaces().map((n) => GROUP_PATTERN.exec(n)?.[1]));
    let group: string;
    do {
      group = `vt-${crypto.getRandomValues(new Uint16Array(1))[0]!.toString(16).padStart(4, "0")}`;
    } while (existing.has(group) || existsSync(join(RECORD_DIR, `${group}.pid`)));
    this.group = group;
    this.prefix = `${group}-`;
    writeFileSync(join(RECORD_DIR, `${group}.pid`), `${process.pid} ${processStartTime(process.pid)}\n`);
    this.logDir = join(RECORD_DIR, group);
    mkdirSync(this.logDir, { recursive: true });
  }

  /** Create namespace `<prefix><name>` with lo up; returns its full name. */
  ns(name: string): string {
    const full = this.prefix + name;
    run(["ip", "netns", "add", full]);
    this.namespaces.push(full);
    run(["ip", "-n", full, "link", "set", "lo", "up"]);
    return full;
  }

  /** A veth pair between two namespaces, each end up with an optional address ("198.18.0.1/24"). */
  link(nsA: string, ifA: string, addrA: string | null, nsB: string, ifB: string, addrB: string | null): void {
    checkIfName(ifA);
    checkIfName(ifB);
    run(["ip", "-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB]);
    this.up(nsA, ifA, addrA);
    this.up(nsB, ifB, addrB);
  }

  /** A bridge `name` inside `ns`, up, with an optional address. */
  bridge(ns: string, name: string, addr?: string): void {
    checkIfName(name);
    run(["ip", "-n", ns, "link", "add", name, "type", "bridge"]);
    this.up(ns, name, addr ?? null);
  }

  /** Plug interface `ifname` of `ns` into `bridge` of `bridgeNs` (a veth pair), with an optional address. */
  attach(bridgeNs: string, bridge: string, ns: string, ifname: string, addr: string | null): void {
    const port = `vp${++this.portCounter}`;
    this.link(ns, ifname, addr, bridgeNs, port, null);
    run(["ip", "-n", bridgeNs, "link", "set", port, "master", bridge]);
  }

  /** Route `dst` ("default" or a CIDR) via `gateway` inside `ns`. */
  route(ns: string, dst: string, gateway: string): void {
    run(["ip", "-n", ns, "route", "replace", dst, "via", gateway]);
  }

  /** A host namespace on a bridge with an address and, optionally, a default route. */
  host(name: string, opts: { bridgeNs: string; bridge: string; addr: string; gateway?: string; ifname?: string }): string {
    const ns = this.ns(name);
    this.attach(opts.bridgeNs, opts.bridge, ns, opts.ifname ?? "eth0", opts.addr);
    if (opts.gateway) this.route(ns, "default", opts.gateway);
    return ns;
  }

  /**
   * A home-router namespace: WAN "wan0" on the given bridge, LAN bridge "lan0", forwarding on, nftables
   * masquerade on the WAN (`random` for a hard NAT) and a firewall dropping unsolicited WAN packets to
   * the router itself and to the LAN (established/related accepted). See DESIGN.md, "Test network rules".
   */
  natRouter(name: string, opts: NatRouterOptions): NatRouter {
    const ns = this.ns(name);
    this.attach(opts.wan.ns, opts.wan.bridge, ns, "wan0", opts.wan.addr);
    this.bridge(ns, "lan0", opts.lan.addr);
    if (opts.wan.gateway) this.route(ns, "default", opts.wan.gateway);
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    const masquerade = opts.hard ? "masquerade random" : "masquerade";
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], `
table ip vt_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ${masquerade}
  }
}
table inet vt_firewall {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" drop
  }
}
`);
    return { ns, wanIp: stripLen(opts.wan.addr), lanIp: stripLen(opts.lan.addr), lanBridge: "lan0" };
  }

  /** Run a command in `ns` to completion. Never throws for a non-zero exit; check `code`. */
  async exec(ns: string, cmd: string[], opts: { timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    const proc = Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
      stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
      stdout: "pipe",
      stderr: "pipe",
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, opts.timeoutMs ?? 30_000);
    try {
      const [stdout, stderr, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      return { code, stdout, stderr, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Start a long-running command in `ns`; its output goes to `logFile` (default under logDir). */
  spawn(ns: string, cmd: string[], opts: { logFile?: string; env?: Record<string, string> } = {}): ProcessHandle {
    const logFile = opts.logFile ?? join(this.logDir, `${ns.slice(this.prefix.length)}-${this.processes.length}.log`);
    const proc = Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
      stdin: "ignore",
      stdout: Bun.file(logFile),
      stderr: Bun.file(logFile),
      env: opts.env ? { ...process.env, ...opts.env } : undefined,
    });
    // `ip netns exec` execs the command, so this PID is the command's own.
    const handle: ProcessHandle = { pid: proc.pid, ns, cmd, logFile, exited: proc.exited, proc };
    this.processes.push(handle);
    return handle;
  }

  /** The output a spawned process has written so far. */
  log(handle: ProcessHandle): string {
    return existsSync(handle.logFile) ? readFileSync(handle.logFile, "utf8") : "";
  }

  /** Send a signal to a spawned process (by its PID). */
  kill(handle: ProcessHandle, signal: NodeJS.Signals | number = "SIGTERM"): void {
    if (handle.proc.exitCode === null && handle.proc.signalCode === null) process.kill(handle.pid, signal);
  }

  /** Ping from `ns` (iputils), never throwing: an unreachable address gives received 0. */
  async ping(ns: string, ip: string, opts: { count?: number; intervalS?: number; waitS?: number } = {}): Promise<PingResult> {
    const count = opts.count ?? 3;
    const interval = opts.intervalS ?? 0.2;
    const wait = opts.waitS ?? 1;
    const r = await this.exec(ns, ["ping", "-n", "-c", String(count), "-i", String(interval), "-W", String(wait), ip], {
      timeoutMs: (count * interval + wait + 5) * 1000,
    });
    return parsePing(r.stdout);
  }

  /** Poll a command that prints JSON until `predicate` holds; returns the JSON. */
  async pollJson<T = unknown>(
    ns: string,
    cmd: string[],
    predicate: (value: T) => boolean,
    opts: Omit<WaitOptions, "what"> & { what?: string } = {},
  ): Promise<T> {
    return waitFor(async () => {
      const r = await this.exec(ns, cmd, { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
      const value = JSON.parse(r.stdout) as T;
      if (predicate(value)) return { value };
      throw new Error(`predicate false for ${r.stdout.trim().slice(0, 500)}`);
    }, { ...opts, what: opts.what ?? `\`${cmd.join(" ")}\` in ${ns}` }).then((box) => box.value);
  }

  /**
   * Drop UDP in `ns` (input, output and forwarded) to and from `peer` and/or `port`; with neither, all
   * UDP. Returns a handle for unblock.
   */
  blockUdp(ns: string, match: { peer?: string; port?: number } = {}): UdpBlock {
    const table = `vt_block_${++this.blockCounter}`;
    const outbound = ["meta l4proto udp", match.peer ? `ip daddr ${match.peer}` : "", match.port ? `udp dport ${match.port}` : ""];
    const inbound = ["meta l4proto udp", match.peer ? `ip saddr ${match.peer}` : "", match.port ? `udp sport ${match.port}` : ""];
    const rules = `${outbound.filter(Boolean).join(" ")} drop\n    ${inbound.filter(Boolean).join(" ")} drop`;
    const chain = (hook: string) =>
      `  chain ${hook} {\n    type filter hook ${hook} priority filter - 10; policy accept;\n    ${rules}\n  }\n`;
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], `table ip ${table} {\n${chain("input")}${chain("output")}${chain("forward")}}\n`);
    return { ns, table };
  }

  unblock(block: UdpBlock): void {
    run(["ip", "netns", "exec", block.ns, "nft", "delete", "table", "ip", block.table]);
  }

  /**
   * Kill every spawned process (TERM, then KILL after `graceMs`) and delete every namespace. Process
   * logs are removed too unless VINE_TEST_KEEP_LOGS=1.
   */
  async cleanup(graceMs = 3000): Promise<void> {
    const alive = this.processes.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
    for (const p of alive) signal(p.pid, "SIGTERM");
    const deadline = Date.now() + graceMs;
    for (const p of alive) {
      const left = deadline - Date.now();
      const ended = await Promise.race([p.exited.then(() => true), Bun.sleep(Math.max(0, left)).then(() => false)]);
      if (!ended) {
        signal(p.pid, "SIGKILL");
        await p.exited;
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) removeNamespace(ns);
    rmSync(join(RECORD_DIR, `${this.group}.pid`), { force: true });
    if (process.env.VINE_TEST_KEEP_LOGS !== "1") rmSync(this.logDir, { recursive: true, force: true });
  }

  /**
   * Delete `vt-xxxx-*` namespaces whose recorded creator is no longer running (a crashed run), with
   * any process left inside them. Namespaces without a record are not ours and are left alone.
   */
  static cleanupLeftovers(): string[] {
    const removed: string[] = [];
    const byGroup = new Map<string, string[]>();
    for (const ns of listNamespaces()) {
      const group = GROUP_PATTERN.exec(ns)?.[1];
      if (group) byGroup.set(group, [...(byGroup.get(group) ?? []), ns]);
    }
    if (existsSync(RECORD_DIR)) {
      for (const file of readdirSync(RECORD_DIR)) {
        const group = /^(vt-[0-9a-f]{4})\.pid$/.exec(file)?.[1];
        if (group && !byGroup.has(group)) byGroup.set(group, []);
      }
    }
    for (const [group, namespaces] of byGroup) {
      const record = join(RECORD_DIR, `${group}.pid`);
      if (!existsSync(record)) continue;
      const [pid, start] = readFileSync(record, "utf8").trim().split(" ");
      if (creatorAlive(Number(pid), start ?? "")) continue;
      for (const ns of namespaces) {
        removeNamespace(ns);
        removed.push(ns);
      }
      rmSync(record, { force: true });
      rmSync(join(RECORD_DIR, group), { recursive: true, force: true });
    }
    return removed;
  }

  private up(ns: string, ifname: string, addr: string | null): void {
    if (addr) run(["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
    run(["ip", "-n", ns, "link", "set", ifname, "up"]);
  }
}

/** Namespace names (`ip netns list` prints "name" or "name (id: N)"). */
export function listNamespaces(): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"]);
  return r.stdout.toString().split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
}

function removeNamespace(ns: string): void {
  // Processes still inside (started by the test, e.g. children of an exec'd shell) die with it.
  const pids = Bun.spawnSync(["ip", "netns", "pids", ns]).stdout.toString().split("\n").filter(Boolean);
  for (const pid of pids) signal(Number(pid), "SIGKILL");
  Bun.spawnSync(["ip", "netns", "del", ns]);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

// Start time in clock ticks since boot (field 22 of /proc/PID/stat): tells a live creator from a reused PID.
function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

function creatorAlive(pid: number, start: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = processStartTime(pid);
  return now !== "" && (start === "" || now === start);
}

/** Run a setup command synchronously; throw with its stderr when it fails. */
function run(cmd: string[], stdin?: string): void {
  const r = Bun.spawnSync(cmd, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin) });
  if (r.exitCode !== 0) {
    throw new Error(`\`${cmd.join(" ")}\` failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
}

function checkIfName(name: string): void {
  if (name.length > 15) throw new Error(`interface name "${name}" is longer than 15 characters`);
}

function stripLen(cidr: string): string {
  return cidr.split("/")[0]!;
}
