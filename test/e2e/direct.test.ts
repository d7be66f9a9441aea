// Two hosts with static endpoints carry real IPv4 traffic through two `dist/vine` daemons:
// pings both ways, a 10 s iperf3 TCP stream, a spoofed source dropped and counted, and the
// session visible in `vine sessions` and in SQLite.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestNet, waitFor } from "../lib/netns.ts";
import { rssKb } from "../lib/proc.ts";
import { resolve } from "node:path";
import { aesGcmFast } from "../../src/crypto/aead.ts";
import { counters, directPair, sessions, VINE, vineJson, waitPath, type VineHost } from "../lib/vine.ts";

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const TCP_CHECK = resolve(import.meta.dir, "fixtures/tcp-check.ts");

describe("direct overlay between two namespaces", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;

  beforeAll(async () => {
    net = new TestNet();
    ({ a, b } = await directPair(net, 1));
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  test("ping crosses the overlay both ways and the session is direct", async () => {
    await waitFor(async () => (await net.ping(a.ns, b.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 15_000, what: "a → b ping" });
    const back = await net.ping(b.ns, a.overlayIp, { count: 5, intervalS: 0.1 });
    expect(back.received).toBe(5);
    const s = await waitPath(net, a, b, "direct");
    expect(s.endpoint).toBe("198.18.1.2:4100");
    expect(s.via).toBeNull();
    expect(s.last_handshake).not.toBeNull();
    // Two vine hosts on a CPU with AES instructions settle on AES-256-GCM (wireguard-interop checks
    // that stock WireGuard peers still get ChaCha20-Poly1305).
    expect(s.cipher).toBe(aesGcmFast() ? "aes-256-gcm" : "chacha20-poly1305");
    const sb = await waitPath(net, b, a, "direct");
    expect(sb.rx_bytes).toBeGreaterThan(0);
  });

  test("a 10 s TCP stream (iperf3) and a verified 64 MiB transfer arrive, counted", async () => {
    const server = net.spawn(b.ns, ["iperf3", "-s", "-1", "-B", b.overlayIp]);
    await waitFor(async () => (await net.exec(b.ns, ["ss", "-ltnH", "sport = :5201"])).stdout.includes("5201"), { what: "iperf3 server listening" });
    const before = (await sessions(net, b)).find((s) => s.peer_id === a.peerId)!.rx_bytes;
    const r = await net.exec(a.ns, ["iperf3", "-c", b.overlayIp, "-t", "10", "-J"], { timeoutMs: 40_000 });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
    expect(j.end.sum_received.bytes).toBeGreaterThan(10_000_000);
    const after = (await sessions(net, b)).find((s) => s.peer_id === a.peerId)!.rx_bytes;
    expect(after - before).toBeGreaterThanOrEqual(j.end.sum_received.bytes);
    console.log(`vine direct TCP: ${(j.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s`);
    await server.exited;
    // The bulk stream moved a's TUN to its TX worker; once it ended, the TUN went back to the RX
    // worker (light traffic runs on one thread).
    const ca = await counters(net, a);
    expect(ca.node.tun_handover_bulk ?? 0).toBeGreaterThan(0);
    await waitFor(async () => ((await counters(net, a)).node.tun_handover_light ?? 0) >= (ca.node.tun_handover_bulk ?? 0), {
      timeoutMs: 5000,
      what: "a's TUN back with the RX worker after the stream",
    });

    // Every byte, in order: both ends hash the stream.
    const sink = net.spawn(b.ns, [BUN, TCP_CHECK, "serve", b.overlayIp, "5301"]);
    await waitFor(() => net.log(sink).includes("listening"), { what: "tcp sink listening" });
    const sent = await net.exec(a.ns, [BUN, TCP_CHECK, "send", b.overlayIp, "5301", String(64 * 1024 * 1024)], { timeoutMs: 60_000 });
    expect(sent.code).toBe(0);
    await sink.exited;
    const got = JSON.parse(net.log(sink).trim().split("\n").pop()!);
    expect(got).toEqual(JSON.parse(sent.stdout.trim()));
  });

  test("offloads: TCP super-packets are cut on send and merged on receive; UDP runs are merged too", async () => {
    // Linux 6.2+ takes UDP segmentation (USO) on a TUN; older kernels run with TCP offloads only.
    const [major, minor] = (await net.exec(a.ns, ["uname", "-r"])).stdout.split(".").map(Number) as [number, number];
    const uso = major > 6 || (major === 6 && minor >= 2);
    expect(net.log(a.daemon!)).toContain(uso ? "offload=csum+tso4+uso" : "offload=csum+tso4");
    // The RX worker's packet path was warmed up before the first packet (src/dataplane/warmup.ts).
    expect(net.log(a.daemon!)).toMatch(/warmup=1000 packets in \d+ ms/);
    // The TCP stream above went through the offloads.
    const tcp = [await counters(net, a), await counters(net, b)];
    expect(tcp[0]!.node.tso_superpackets_in ?? 0).toBeGreaterThan(0);
    expect(tcp[1]!.node.gro_superpackets_out ?? 0).toBeGreaterThan(0);
    if (!uso) return;
    const server = net.spawn(b.ns, ["iperf3", "-s", "-1", "-B", b.overlayIp]);
    await waitFor(async () => (await net.exec(b.ns, ["ss", "-ltnH", "sport = :5201"])).stdout.includes("5201"), { what: "iperf3 server listening" });
    const r = await net.exec(a.ns, ["iperf3", "-c", b.overlayIp, "-u", "-b", "300M", "-l", "1200", "-t", "3", "-J"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    await server.exited;
    const cb = await counters(net, b);
    // Only UDP datagrams (and a few small packets of iperf3's control connection, never merged) flowed.
    expect(cb.node.gro_superpackets_out! - tcp[1]!.node.gro_superpackets_out!).toBeGreaterThan(0);
    expect(cb.node.drop_tun_write ?? 0).toBe(0);
  });

  test("a packet from outside the sender's prefix is dropped and counted as spoofed_source", async () => {
    const before = (await counters(net, b)).node.drop_spoofed_source ?? 0;
    // a owns 10.42.0.0/24; give its TUN an address outside that and send from it.
    expect((await net.exec(a.ns, ["ip", "addr", "add", "10.42.9.9/32", "dev", "vine0"])).code).toBe(0);
    const p = await net.ping(a.ns, b.overlayIp, { count: 3, intervalS: 0.1, waitS: 1 });
    const sp = await net.exec(a.ns, ["ping", "-n", "-c", "3", "-i", "0.1", "-W", "1", "-I", "10.42.9.9", b.overlayIp]);
    expect(p.received).toBe(3); // legitimate traffic keeps flowing
    expect(sp.code).not.toBe(0);
    const c = await waitFor(async () => {
      const c = await counters(net, b);
      return (c.node.drop_spoofed_source ?? 0) >= before + 3 ? c : null;
    }, { what: "drop_spoofed_source to count 3 packets" });
    expect(c.peers[a.peerId]?.drop_spoofed_source).toBeGreaterThanOrEqual(3);
  });

  test("vine status shows the daemon's memory: resident size and each thread's JS heap", async () => {
    type Memory = { rss_bytes: number; js_heap_used_bytes: { main: number; tx: number | null; rx: number | null } };
    // The workers report every 2 s; poll until both have.
    const m = await waitFor(async () => {
      const s = await vineJson<{ source: string; memory: Memory | null }>(net, a, ["status"]);
      return s.source === "live" && s.memory?.js_heap_used_bytes.tx && s.memory.js_heap_used_bytes.rx ? s.memory : null;
    }, { timeoutMs: 10_000, what: "status with both workers' heaps" });
    const statusRss = rssKb(a.daemon!.pid) * 1024;
    expect(Math.abs(m.rss_bytes - statusRss)).toBeLessThan(statusRss * 0.2); // the same process, moments apart
    for (const heap of [m.js_heap_used_bytes.main, m.js_heap_used_bytes.tx!, m.js_heap_used_bytes.rx!]) {
      expect(heap).toBeGreaterThan(100_000);
      expect(heap).toBeLessThan(m.rss_bytes);
    }
    const text = await net.exec(a.ns, [VINE, "status", "--state-dir", a.stateDir]);
    expect(text.stdout).toMatch(/^memory +rss [\d.]+ MiB; JS heap in use: main [\d.]+ MiB, tx [\d.]+ MiB, rx [\d.]+ MiB$/m);
  });

  test("the session, peers and counters are in SQLite", async () => {
    const row = await waitFor(async () => {
      const r = Bun.spawnSync(["sqlite3", `${b.stateDir}/vine.db`, `select path, endpoint, cipher from sessions where peer_id = '${a.peerId}'`]);
      const out = r.stdout.toString().trim();
      return out.startsWith("direct|") ? out : null;
    }, { timeoutMs: 5000, what: "a direct session row in b's sessions table" });
    expect(row).toBe(`direct|198.18.1.1:4100|${aesGcmFast() ? "aes-256-gcm" : "chacha20-poly1305"}`);
    const tx = Bun.spawnSync(["sqlite3", `${a.stateDir}/vine.db`, "select value from counters where scope = 'node' and name = 'tx_packets'"]);
    expect(Number(tx.stdout.toString().trim())).toBeGreaterThan(0);
  });
});
