// Hostile input against a running daemon: random floods, truncated and oversize messages, replayed
// captures (transport packets, and a real handshake initiation), initiations from identities that
// are not allow-listed (which, in a flood, must be met with cookie replies), and a peer claiming
// another peer's prefix. Each is rejected and counted, and legitimate traffic keeps flowing.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TestNet, waitFor } from "../lib/netns.ts";
import { counters, makeHost, sessions, startDaemon, vineSync, writeConfig, type VineHost } from "../lib/vine.ts";

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const SENDER = resolve(import.meta.dir, "fixtures/hostile-sender.ts");

describe("hostile input against a running daemon", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;
  let m: VineHost; // a peer of a that tries to use b's addresses
  let attacker: string;

  beforeAll(async () => {
    net = new TestNet();
    const lan = net.ns("lan");
    net.bridge(lan, "br0");
    a = makeHost(net, "a", net.host("a", { bridgeNs: lan, bridge: "br0", addr: "198.18.6.1/24" }), "10.42.0.1");
    b = makeHost(net, "b", net.host("b", { bridgeNs: lan, bridge: "br0", addr: "198.18.6.2/24" }), "10.42.1.1");
    m = makeHost(net, "m", net.host("m", { bridgeNs: lan, bridge: "br0", addr: "198.18.6.3/24" }), "10.42.5.1");
    attacker = net.host("evil", { bridgeNs: lan, bridge: "br0", addr: "198.18.6.66/24" });
    writeConfig(a, { peers: [{ host: b, endpoint: "udp://198.18.6.2:4100" }, { host: m, endpoint: "udp://198.18.6.3:4100" }] });
    writeConfig(b, { peers: [{ host: a, endpoint: "udp://198.18.6.1:4100" }] });
    // m's own config claims b's prefix as a destination and uses an address in it as its source.
    writeConfig(m, { peers: [{ host: a, endpoint: "udp://198.18.6.1:4100" }] });
    await startDaemon(net, a);
    await startDaemon(net, b);
    await startDaemon(net, m);
    await waitFor(async () => (await net.ping(b.ns, a.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 15_000, what: "b → a ping" });
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  async function hostile(mode: string, count: number, arg = "", env: Record<string, string> = {}): Promise<{ sent: number; received: number }> {
    const r = await net.exec(attacker, ["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), BUN, SENDER, mode, "198.18.6.1", "4100", String(count), arg], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`hostile sender ${mode} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
  }

  function dropsOf(c: Record<string, number>): number {
    return Object.entries(c)
      .filter(([n]) => n.startsWith("drop_") || n.startsWith("handshake_bad") || n === "handshake_failed" || n === "handshake_messages_in")
      .reduce((s, [, v]) => s + v, 0);
  }

  test("a random flood is dropped and counted while b's traffic keeps flowing", async () => {
    const before = (await counters(net, a)).node;
    const ping = net.spawn(b.ns, ["ping", "-n", "-i", "0.05", "-c", "60", "-W", "1", a.overlayIp]);
    const r = await hostile("random", 20_000);
    await ping.exited;
    const after = (await counters(net, a)).node;
    expect(r.sent).toBe(20_000);
    expect(dropsOf(after) - dropsOf(before)).toBeGreaterThan(10_000);
    expect((after.drop_malformed ?? 0) - (before.drop_malformed ?? 0)).toBeGreaterThan(0);
    const m2 = /(\d+) packets transmitted, (\d+) received/.exec(net.log(ping))!;
    expect(Number(m2[2])).toBeGreaterThanOrEqual(57);
  });

  test("truncated and oversize messages are dropped as malformed", async () => {
    const before = (await counters(net, a)).node.drop_malformed ?? 0;
    await hostile("sizes", 200);
    const after = (await counters(net, a)).node.drop_malformed ?? 0;
    expect(after - before).toBeGreaterThanOrEqual(100);
    expect((await net.ping(b.ns, a.overlayIp, { count: 2, intervalS: 0.1 })).received).toBe(2);
  });

  test("replayed captures of real transport packets are rejected", async () => {
    const pcapText = join(net.logDir, "capture.hex");
    // Capture real traffic b → a as hex payloads.
    const dump = net.spawn(a.ns, ["tcpdump", "--immediate-mode", "-i", "eth0", "-U", "-s", "0", "-w", join(net.logDir, "cap.pcap"), "udp", "and", "src", "198.18.6.2"]);
    await waitFor(() => net.log(dump).includes("listening"), { what: "tcpdump" });
    await net.ping(b.ns, a.overlayIp, { count: 10, intervalS: 0.05 });
    net.kill(dump, "SIGINT");
    await dump.exited;
    const hex = extractUdpPayloads(readFileSync(join(net.logDir, "cap.pcap")));
    expect(hex.length).toBeGreaterThanOrEqual(10);
    writeFileSync(pcapText, hex.join("\n"));
    const before = (await counters(net, a)).node;
    await hostile("replay", hex.length * 3, pcapText);
    const after = (await counters(net, a)).node;
    // Replayed from another address: every transport packet is an authentic duplicate → replay.
    expect((after.drop_replay ?? 0) - (before.drop_replay ?? 0)).toBeGreaterThanOrEqual(hex.length);
    expect((after.rx_packets ?? 0) - (before.rx_packets ?? 0)).toBe(0);
  });

  test("replayed captures of a real handshake initiation make no session and are counted", async () => {
    // b restarts, so it initiates to a again; the capture holds that initiation (message type 1).
    const cap = join(net.logDir, "hs.pcap");
    const dump = net.spawn(a.ns, ["tcpdump", "--immediate-mode", "-i", "eth0", "-U", "-s", "0", "-w", cap, "udp", "and", "src", "198.18.6.2"]);
    await waitFor(() => net.log(dump).includes("listening"), { what: "tcpdump" });
    net.kill(b.daemon!, "SIGTERM");
    await b.daemon!.exited;
    await startDaemon(net, b);
    await waitFor(async () => (await net.ping(b.ns, a.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, what: "b → a ping after b's restart" });
    net.kill(dump, "SIGINT");
    await dump.exited;
    const initiations = extractUdpPayloads(readFileSync(cap)).filter((h) => h.startsWith("01") && h.length === 148 * 2);
    expect(initiations.length).toBeGreaterThanOrEqual(1);
    const file = join(net.logDir, "initiations.hex");
    writeFileSync(file, initiations.join("\n"));

    const before = (await counters(net, a)).node;
    const sessionBefore = (await sessions(net, a)).find((s) => s.peer_id === b.peerId)!;
    const copies = initiations.length * 5;
    await hostile("replay", copies, file);
    const after = await waitFor(async () => {
      const c = (await counters(net, a)).node;
      return (c.handshake_messages_in ?? 0) - (before.handshake_messages_in ?? 0) >= copies ? c : null;
    }, { what: "a received every replayed initiation" });
    const d = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    // Each copy is refused: dropped as a copy of an initiation already answered (before any DH), or
    // refused for its old timestamp. None completes a handshake or replaces b's session.
    expect(d("handshake_duplicates") + d("handshake_replayed")).toBe(copies);
    expect(d("handshakes_completed")).toBe(0);
    const sessionAfter = (await sessions(net, a)).find((s) => s.peer_id === b.peerId)!;
    expect(sessionAfter.last_handshake).toBe(sessionBefore.last_handshake);
    expect(sessionAfter.endpoint).toBe(sessionBefore.endpoint); // not moved to the attacker's address
    expect((await net.ping(b.ns, a.overlayIp, { count: 3, intervalS: 0.1 })).received).toBe(3);
  });

  test("initiations from an identity that is not allow-listed never complete; a flood gets cookie replies", async () => {
    const show = vineSync(["identity", "show", "--state-dir", a.stateDir, "--format", "json"]);
    const target = JSON.parse(show.stdout).x25519_public as string;
    const exp = vineSync(["identity", "export-public", "--format", "wireguard", "-c", a.config]);
    const psk = /PresharedKey\s*=\s*(\S+)/.exec(exp.stdout)![1]!;
    const before = (await counters(net, a)).node;
    const ping = net.spawn(b.ns, ["ping", "-n", "-i", "0.05", "-c", "60", "-W", "1", a.overlayIp]);
    const r = await hostile("initiate", 3000, target, { PSK_B64: psk });
    await ping.exited;
    const after = (await counters(net, a)).node;
    expect((after.drop_unauthorized_peer ?? 0) - (before.drop_unauthorized_peer ?? 0)).toBeGreaterThan(0);
    expect((after.handshake_cookie_replies_sent ?? 0) - (before.handshake_cookie_replies_sent ?? 0)).toBeGreaterThan(0);
    expect(r.received).toBeGreaterThan(0); // the cookie replies reached the flooder
    const m2 = /(\d+) packets transmitted, (\d+) received/.exec(net.log(ping))!;
    expect(Number(m2[2])).toBeGreaterThanOrEqual(57);
  });

  test("a peer claiming another peer's prefix is dropped as spoofed", async () => {
    // m tries to send as 10.42.1.77 (inside b's prefix, outside its own 10.42.5.0/24).
    await net.exec(m.ns, ["ip", "addr", "add", "10.42.1.77/32", "dev", "vine0"]);
    await net.exec(m.ns, ["ip", "route", "replace", "10.42.0.0/24", "dev", "vine0", "src", "10.42.1.77"]);
    const before = (await counters(net, a)).peers[m.peerId]?.drop_spoofed_source ?? 0;
    await net.ping(m.ns, a.overlayIp, { count: 3, intervalS: 0.1, waitS: 1 });
    const after = await waitFor(async () => {
      const v = (await counters(net, a)).peers[m.peerId]?.drop_spoofed_source ?? 0;
      return v >= before + 3 ? v : null;
    }, { what: "spoofed packets from m counted" });
    expect(after).toBeGreaterThanOrEqual(before + 3);
  });
});

/** UDP payloads (hex) from a pcap file (LINKTYPE_ETHERNET), no libpcap needed. */
function extractUdpPayloads(buf: Buffer): string[] {
  const out: string[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = buf.readUInt32LE(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (pkt.length < 42 || pkt.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (pkt[14]! & 0x0f) * 4;
    if (pkt[14 + 9] !== 17) continue;
    const udp = 14 + ihl;
    out.push(pkt.subarray(udp + 8).toString("hex"));
  }
  return out;
}
