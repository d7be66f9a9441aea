// Interoperability: a stock wireguard-go, configured from `vine identity export-public --format
// wireguard`, and a vine daemon that lists it by `wireguard_key` exchange pings both ways and a
// TCP stream. This is the proof that vine speaks WireGuard byte for byte.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor } from "../lib/netns.ts";
import { makeHost, startDaemon, vineSync, waitPath, writeConfig, type VineHost } from "../lib/vine.ts";

describe("interop with stock wireguard-go", () => {
  let net: TestNet;
  let a: VineHost;
  let nsB: string;
  let wgPub: string;

  beforeAll(async () => {
    net = new TestNet();
    const nsA = net.ns("a");
    nsB = net.ns("wg");
    net.link(nsA, "eth0", "198.18.2.1/24", nsB, "eth0", "198.18.2.2/24");
    a = makeHost(net, "a", nsA, "10.42.0.1");
    const priv = Bun.spawnSync(["wg", "genkey"]).stdout.toString().trim();
    wgPub = Bun.spawnSync(["wg", "pubkey"], { stdin: new TextEncoder().encode(priv + "\n") }).stdout.toString().trim();
    writeConfig(a, {
      peers: [],
      extraPeers: ['[[allowed_peers]]', 'name = "wg"', `wireguard_key = "${wgPub}"`, 'prefix = "10.42.1.0/24"', 'endpoint = "udp://198.18.2.2:51820"'].join("\n"),
    });
    // What an operator pastes into the WireGuard side: vine's own export.
    const exp = vineSync(["identity", "export-public", "--format", "wireguard", "-c", a.config]);
    expect(exp.code).toBe(0);
    expect(exp.stdout).toContain("PublicKey");
    expect(exp.stdout).toContain("PresharedKey");
    const peerSection = exp.stdout
      .split("\n")
      .filter((l) => /^\s*(\[Peer\]|PublicKey|PresharedKey)\s*/.test(l))
      .join("\n");
    const conf = join(net.logDir, "wg0.conf");
    writeFileSync(conf, `[Interface]\nPrivateKey = ${priv}\nListenPort = 51820\n\n${peerSection}\nAllowedIPs = 10.42.0.0/24\nEndpoint = 198.18.2.1:4100\n`, { mode: 0o600 });
    net.spawn(nsB, ["wireguard-go", "-f", "wg0"], { env: { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1", LOG_LEVEL: "verbose" } });
    await waitFor(async () => (await net.exec(nsB, ["ip", "link", "show", "wg0"])).code === 0, { what: "wireguard-go to create wg0" });
    for (const cmd of [
      ["wg", "setconf", "wg0", conf],
      ["ip", "addr", "add", "10.42.1.1/24", "dev", "wg0"],
      ["ip", "link", "set", "wg0", "mtu", "1420", "up"],
      ["ip", "route", "add", "10.42.0.0/24", "dev", "wg0"],
    ]) {
      const r = await net.exec(nsB, cmd);
      if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
    }
    await startDaemon(net, a);
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  test("vine → wireguard-go ping (vine initiates)", async () => {
    await waitFor(async () => (await net.ping(a.ns, "10.42.1.1", { count: 1, waitS: 1 })).received === 1, { timeoutMs: 30_000, what: "vine → wireguard-go ping" });
    const s = await waitPath(net, a, { peerId: `wg:${wgPub}`, name: "wg" } as VineHost, "direct");
    expect(s.endpoint).toBe("198.18.2.2:51820");
    expect(s.cipher).toBe("chacha20-poly1305"); // a stock WireGuard peer never gets a suite offer
  });

  test("wireguard-go → vine ping", async () => {
    const r = await net.ping(nsB, a.overlayIp, { count: 5, intervalS: 0.1, waitS: 2 });
    expect(r.received).toBeGreaterThanOrEqual(4);
  });

  test("a TCP stream crosses between wireguard-go and vine", async () => {
    const server = net.spawn(a.ns, ["iperf3", "-s", "-1", "-B", a.overlayIp]);
    await waitFor(async () => (await net.exec(a.ns, ["ss", "-ltnH", "sport = :5201"])).stdout.includes("5201"), { what: "iperf3 server" });
    const r = await net.exec(nsB, ["iperf3", "-c", a.overlayIp, "-t", "3", "-J"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
    expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    await server.exited;
  });

  test("wireguard-go reports a handshake with vine", async () => {
    const r = await net.exec(nsB, ["wg", "show", "wg0", "latest-handshakes"]);
    const ts = Number(r.stdout.trim().split(/\s+/)[1]);
    expect(ts).toBeGreaterThan(0);
  });
});
