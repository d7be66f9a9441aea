// The multi-PC showcase on one machine: four vine hosts in network namespaces with real NAT routers,
// configured from examples/multi-pc/*.toml, and the four path stories told by the network itself.
//
//   internet 198.18.0.0/24 (a bridge in namespace "inet")
//   ├── relay  198.18.0.40        public, bootstrap + relay service
//   ├── beta   198.18.0.11        public
//   ├── RA     198.18.0.10  ── hard NAT (masquerade random) ── alpha 198.19.1.10
//   └── RG     198.18.0.12  ── home NAT (masquerade)        ── gamma 198.19.2.10
//
//   1. alpha → beta: direct (alpha's config names beta's public endpoint).
//   2. gamma → beta: signaling_then_direct (endpoints exchanged through relay, then a punched path).
//   3. gamma → alpha: relay (a hard NAT on one side and a filtering NAT on the other: no punch works).
//   4. alpha → beta is cut by a firewall rule: alpha falls back to relay, and returns to direct when
//      the rule is removed.
//
// Usage: bun examples/multi-pc/demo.ts [--keep]     (make demo [KEEP=1])

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor } from "../../test/lib/netns.ts";
import { counters, makeHost, startDaemon, VINE, waitPath, type VineHost } from "../../test/lib/vine.ts";

const keep = process.argv.includes("--keep");
const here = import.meta.dir;
const results: { story: string; ok: boolean; detail: string }[] = [];

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
function heading(s: string): void {
  console.log(`\n${bold(`== ${s}`)}`);
}

async function show(net: TestNet, h: VineHost, args: string[]): Promise<void> {
  const r = await net.exec(h.ns, [VINE, ...args, "--state-dir", h.stateDir], { timeoutMs: 15_000 });
  console.log(`$ ip netns exec ${h.ns} vine ${args.join(" ")}`);
  process.stdout.write(r.stdout.replace(/^/gm, "  "));
}

/** Fill an example config with this run's peer ids, state directory and ports. */
function configFrom(example: string, h: VineHost, ids: Record<string, string>): void {
  let text = readFileSync(join(here, `${example}.toml`), "utf8");
  for (const [name, id] of Object.entries(ids)) text = text.replaceAll(`REPLACE-with-${name}-peer-id`, id);
  text = text.replace(/^state_dir\s*=.*$/m, `state_dir = "${h.stateDir}"`);
  writeFileSync(h.config, text, { mode: 0o600 });
}

async function story(name: string, fn: () => Promise<string>): Promise<void> {
  heading(name);
  try {
    const detail = await fn();
    results.push({ story: name, ok: true, detail });
    console.log(`PASS  ${name}: ${detail}`);
  } catch (e) {
    const detail = String((e as Error)?.message ?? e);
    results.push({ story: name, ok: false, detail });
    console.log(`FAIL  ${name}: ${detail}`);
  }
}

const net = new TestNet();
let exitCode = 1;
try {
  heading("building the network");
  const inet = net.ns("inet");
  net.bridge(inet, "br0");
  const relayNs = net.host("relay", { bridgeNs: inet, bridge: "br0", addr: "198.18.0.40/24" });
  const betaNs = net.host("beta", { bridgeNs: inet, bridge: "br0", addr: "198.18.0.11/24" });
  const ra = net.natRouter("ra", { wan: { ns: inet, bridge: "br0", addr: "198.18.0.10/24" }, lan: { addr: "198.19.1.1/24" }, hard: true });
  const rg = net.natRouter("rg", { wan: { ns: inet, bridge: "br0", addr: "198.18.0.12/24" }, lan: { addr: "198.19.2.1/24" } });
  const alphaNs = net.host("alpha", { bridgeNs: ra.ns, bridge: ra.lanBridge, addr: "198.19.1.10/24", gateway: "198.19.1.1" });
  const gammaNs = net.host("gamma", { bridgeNs: rg.ns, bridge: rg.lanBridge, addr: "198.19.2.10/24", gateway: "198.19.2.1" });
  console.log("relay 198.18.0.40 (public) · beta 198.18.0.11 (public) · alpha 198.19.1.10 behind hard NAT 198.18.0.10 · gamma 198.19.2.10 behind home NAT 198.18.0.12");

  const alpha = makeHost(net, "alpha", alphaNs, "10.42.0.1");
  const beta = makeHost(net, "beta", betaNs, "10.42.1.1");
  const gamma = makeHost(net, "gamma", gammaNs, "10.42.2.1");
  const relay = makeHost(net, "relay", relayNs, "10.42.254.1");
  const ids = { alpha: alpha.peerId, beta: beta.peerId, gamma: gamma.peerId, relay: relay.peerId };
  for (const h of [alpha, beta, gamma, relay]) {
    configFrom(h.name, h, ids);
    console.log(`${h.name.padEnd(6)} ${h.peerId}  (${h.prefix})`);
  }
  heading("starting four daemons");
  for (const h of [relay, beta, alpha, gamma]) {
    await startDaemon(net, h);
    console.log(`${h.name} is up`);
  }

  await story("1. alpha reaches beta over a direct session", async () => {
    await waitFor(async () => (await net.ping(alpha.ns, beta.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, what: "alpha → beta ping" });
    const s = await waitPath(net, alpha, beta, "direct");
    await show(net, alpha, ["sessions"]);
    const p = await net.ping(alpha.ns, beta.overlayIp, { count: 5, intervalS: 0.1 });
    if (p.received !== 5) throw new Error(`${p.received}/5 pings answered`);
    return `path direct to ${s.endpoint}, 5/5 pings`;
  });

  await story("2. gamma reaches beta after signaling (NAT hole punching)", async () => {
    await waitFor(async () => (await net.ping(gamma.ns, beta.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 30_000, what: "gamma → beta ping" });
    const s = await waitPath(net, gamma, beta, "signaling_then_direct", 30_000);
    await show(net, gamma, ["sessions"]);
    const c = await counters(net, relay);
    return `path signaling_then_direct to ${s.endpoint}; relay coordinated ${c.node.punch_coordinations ?? 0} punch(es)`;
  });

  await story("3. gamma reaches alpha through the relay", async () => {
    await waitFor(async () => (await net.ping(gamma.ns, alpha.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 30_000, what: "gamma → alpha ping" });
    const s = await waitPath(net, gamma, alpha, "relay", 30_000);
    if (s.via !== relay.peerId) throw new Error(`via ${s.via}, expected the relay`);
    await show(net, gamma, ["sessions"]);
    const c = await counters(net, relay);
    return `path relay via relay; the relay forwarded ${c.node.relay_forwarded_packets ?? 0} packets it cannot read`;
  });

  await story("4. alpha falls back to relay when its direct path to beta is cut, and returns", async () => {
    await waitPath(net, alpha, beta, "direct");
    const ping = net.spawn(alpha.ns, ["ping", "-n", "-i", "0.05", "-c", "400", "-W", "1", beta.overlayIp]);
    await Bun.sleep(1000);
    const block = net.blockUdp(alpha.ns, { peer: "198.18.0.11" });
    console.log("cut: alpha's UDP to and from beta's address is dropped");
    const t0 = Date.now();
    const onRelay = await waitPath(net, alpha, beta, "relay", 15_000);
    const fallbackMs = Date.now() - t0;
    await show(net, alpha, ["sessions"]);
    await Bun.sleep(2000);
    net.unblock(block);
    console.log("restored");
    const t1 = Date.now();
    await waitPath(net, alpha, beta, "direct", 20_000);
    const promoteMs = Date.now() - t1;
    await show(net, alpha, ["sessions"]);
    await ping.exited;
    const out = net.log(ping);
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    const lost = m ? Number(m[1]) - Number(m[2]) : -1;
    const c = await counters(net, alpha);
    console.log(`fallback_transitions=${c.node.fallback_transitions ?? 0} relay_usage=${c.node.relay_usage ?? 0}`);
    if ((c.node.fallback_transitions ?? 0) < 1) throw new Error("fallback_transitions did not move");
    if (onRelay.via !== relay.peerId) throw new Error("fallback path is not through the relay");
    return `relay after ${fallbackMs} ms, direct again ${promoteMs} ms after restore, ${lost} of 400 pings (50 ms apart) lost`;
  });

  heading("summary");
  for (const r of results) console.log(`${r.ok ? "PASS" : "FAIL"}  ${r.story}`);
  exitCode = results.length === 4 && results.every((r) => r.ok) ? 0 : 1;
  console.log(exitCode === 0 ? "all four stories hold" : "some stories failed");
  if (keep) {
    console.log(`\nThe hosts keep running. Enter one with, for example:\n  ip netns exec ${alpha.ns} ${VINE} sessions --state-dir ${alpha.stateDir}\n  ip netns exec ${gamma.ns} ping ${alpha.overlayIp}\nPress Ctrl-C to tear everything down.`);
    await new Promise<void>((resolve) => process.on("SIGINT", () => resolve()));
  }
} catch (e) {
  console.error(`demo failed: ${(e as Error)?.stack ?? e}`);
} finally {
  await net.cleanup();
}
process.exit(exitCode);

