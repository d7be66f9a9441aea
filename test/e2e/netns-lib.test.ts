// Proves the namespace test library: two hosts behind NAT routers (one easy, one hard) and a public
// host. NATed hosts reach the public host, the NAT rewrites as configured, unsolicited traffic from the
// internet never reaches a NATed host, and cleanup leaves no namespace behind.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RECORD_DIR, TestNet, listNamespaces, waitFor, type ProcessHandle } from "../lib/netns.ts";

const BUN = join(import.meta.dir, "../../node_modules/.bin/bun");
const PROBE = join(import.meta.dir, "../lib/udp-probe.ts");

interface ProbeEvent {
  event: string;
  port?: number;
  from?: string;
  data?: string;
}

function events(net: TestNet, handle: ProcessHandle): ProbeEvent[] {
  return net
    .log(handle)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as ProbeEvent);
}

describe("namespace test library", () => {
  let net: TestNet;
  let pub: string;
  let a: string;
  let b: string;
  let r1: string;

  beforeAll(() => {
    net = new TestNet();
    const inet = net.ns("inet");
    net.bridge(inet, "br0", "198.18.0.1/24");
    pub = net.host("pub", { bridgeNs: inet, bridge: "br0", addr: "198.18.0.2/24" });
    const easy = net.natRouter("r1", {
      wan: { ns: inet, bridge: "br0", addr: "198.18.0.11/24" },
      lan: { addr: "198.19.1.1/24" },
    });
    const hard = net.natRouter("r2", {
      wan: { ns: inet, bridge: "br0", addr: "198.18.0.12/24" },
      lan: { addr: "198.19.2.1/24" },
      hard: true,
    });
    r1 = easy.ns;
    a = net.host("a", { bridgeNs: easy.ns, bridge: easy.lanBridge, addr: "198.19.1.2/24", gateway: easy.lanIp });
    b = net.host("b", { bridgeNs: hard.ns, bridge: hard.lanBridge, addr: "198.19.2.2/24", gateway: hard.lanIp });
  });

  afterAll(async () => {
    await net.cleanup();
  });

  test("namespaces carry the run prefix", () => {
    expect(net.prefix).toMatch(/^vt-[0-9a-f]{4}-$/);
    const mine = listNamespaces().filter((n) => n.startsWith(net.prefix));
    expect(mine.sort()).toEqual(["a", "b", "inet", "pub", "r1", "r2"].map((n) => net.prefix + n).sort());
  });

  test("both NATed hosts ping the public host", async () => {
    for (const host of [a, b]) {
      const result = await net.ping(host, "198.18.0.2", { count: 3, intervalS: 0.2 });
      expect(result.sent).toBe(3);
      expect(result.received).toBe(3);
      expect(result.lossPct).toBe(0);
      expect(result.rtts.length).toBe(3);
    }
  });

  test("an easy NAT keeps one mapping per socket; a hard NAT maps each destination apart", async () => {
    const sinks = [net.spawn(pub, [BUN, PROBE, "--bind", "7000", "--listen"]), net.spawn(pub, [BUN, PROBE, "--bind", "7001", "--listen"])];
    for (const sink of sinks) await waitFor(() => events(net, sink).some((e) => e.event === "ready"), { what: "UDP sink ready" });
    const observed = async (host: string, tag: string) => {
      const r = await net.exec(host, [BUN, PROBE, "--bind", "5000", "--send", `198.18.0.2:7000:${tag}`, "--send", `198.18.0.2:7001:${tag}`]);
      expect(r.code).toBe(0);
      return Promise.all(
        sinks.map((sink) =>
          waitFor(() => events(net, sink).find((e) => e.data === tag)?.from, { what: `datagram ${tag} at the public host` }),
        ),
      );
    };
    const [easy1, easy2] = await observed(a, "from-a");
    expect(easy1).toBe("198.18.0.11:5000");
    expect(easy2).toBe("198.18.0.11:5000");
    const [hard1, hard2] = await observed(b, "from-b");
    expect(hard1!.startsWith("198.18.0.12:")).toBe(true);
    expect(hard2!.startsWith("198.18.0.12:")).toBe(true);
    expect(hard1).not.toBe(hard2);
    for (const sink of sinks) net.kill(sink);
  });

  test("unsolicited traffic from the internet does not reach a NATed host or its router; replies do", async () => {
    // The public host knows the way to the private LAN, as an attacker on the same segment could.
    net.route(pub, "198.19.1.0/24", "198.18.0.11");
    const echo = net.spawn(pub, [BUN, PROBE, "--bind", "7000", "--echo"]);
    await waitFor(() => events(net, echo).some((e) => e.event === "ready"), { what: "echo server ready" });
    // Open mappings: host a's port 5000 with pub:7000, and the router's own port 5001 with pub:7003.
    const inside = net.spawn(a, [BUN, PROBE, "--bind", "5000", "--listen", "--send", "198.18.0.2:7000:hello"]);
    const router = net.spawn(r1, [BUN, PROBE, "--bind", "5001", "--listen", "--send", "198.18.0.2:7003:router-hello"]);
    await waitFor(() => events(net, inside).some((e) => e.data === "hello"), { what: "echo reply at host a" });
    await waitFor(() => events(net, router).some((e) => e.event === "ready"), { what: "router listener ready" });
    net.kill(echo);
    await echo.exited;

    // Unsolicited: to a's private address, to the mapped port from another source port, to the router.
    const intrusion = await net.exec(pub, [
      BUN, PROBE, "--bind", "7002",
      "--send", "198.19.1.2:5000:intruder-private",
      "--send", "198.18.0.11:5000:intruder-mapped",
      "--send", "198.18.0.11:5001:intruder-router",
    ]);
    expect(intrusion.code).toBe(0);
    expect((await net.ping(pub, "198.19.1.2", { count: 2, intervalS: 0.2, waitS: 1 })).received).toBe(0);

    // Replies on the open mappings, sent after the intrusions over the same path, arrive.
    const replies = await net.exec(pub, [BUN, PROBE, "--bind", "7000", "--send", "198.18.0.11:5000:solicited"]);
    const routerReply = await net.exec(pub, [BUN, PROBE, "--bind", "7003", "--send", "198.18.0.11:5001:router-solicited"]);
    expect(replies.code).toBe(0);
    expect(routerReply.code).toBe(0);
    await waitFor(() => events(net, inside).some((e) => e.data === "solicited"), { what: "solicited reply at host a" });
    await waitFor(() => events(net, router).some((e) => e.data === "router-solicited"), { what: "solicited reply at the router" });
    const seen = [...events(net, inside), ...events(net, router)].map((e) => e.data ?? "");
    expect(seen.filter((d) => d.startsWith("intruder"))).toEqual([]);
    net.kill(inside);
    net.kill(router);
  }, 30_000);

  test("blockUdp cuts a path and unblock restores it", async () => {
    const sink = net.spawn(pub, [BUN, PROBE, "--bind", "7100", "--listen"]);
    await waitFor(() => events(net, sink).some((e) => e.event === "ready"), { what: "UDP sink ready" });
    const block = net.blockUdp(r1, { peer: "198.18.0.2", port: 7100 });
    await net.exec(a, [BUN, PROBE, "--send", "198.18.0.2:7100:blocked"]);
    net.unblock(block);
    await net.exec(a, [BUN, PROBE, "--send", "198.18.0.2:7100:open"]);
    await waitFor(() => events(net, sink).some((e) => e.data === "open"), { what: "datagram after unblock" });
    // Sent before "open" on the same path, so it would have arrived first.
    expect(events(net, sink).some((e) => e.data === "blocked")).toBe(false);
    net.kill(sink);
  });

  test("pollJson polls until the predicate holds", async () => {
    const value = await net.pollJson<{ links: number }>(
      pub,
      ["sh", "-c", "ip -j link show | jq '{links: length}'"],
      (v) => v.links >= 2,
      { timeoutMs: 5000 },
    );
    expect(value.links).toBeGreaterThanOrEqual(2);
    await expect(
      net.pollJson(pub, ["sh", "-c", "echo '{\"x\":1}'"], () => false, { timeoutMs: 300, what: "an impossible state" }),
    ).rejects.toThrow(/an impossible state/);
  });

  test("cleanup kills processes and removes every namespace", async () => {
    const sleeper = net.spawn(b, ["sleep", "300"]);
    await net.cleanup();
    expect(await sleeper.exited).not.toBe(0);
    expect(listNamespaces().filter((n) => n.startsWith(net.prefix))).toEqual([]);
  });

  test("cleanupLeftovers removes namespaces of a dead creator only", async () => {
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    // A record naming an exited PID, and a namespace in its group.
    const orphanGroup = `vt-${(0xf000 + Math.floor(Math.random() * 0xfff)).toString(16)}`;
    mkdirSync(RECORD_DIR, { recursive: true });
    writeFileSync(join(RECORD_DIR, `${orphanGroup}.pid`), `${dead.pid} 1\n`);
    Bun.spawnSync(["ip", "netns", "add", `${orphanGroup}-orphan`]);
    const live = new TestNet();
    try {
      live.ns("alive");
      const removed = TestNet.cleanupLeftovers();
      expect(removed).toContain(`${orphanGroup}-orphan`);
      const left = listNamespaces();
      expect(left).not.toContain(`${orphanGroup}-orphan`);
      expect(left).toContain(`${live.prefix}alive`);
    } finally {
      await live.cleanup();
      Bun.spawnSync(["ip", "netns", "del", `${orphanGroup}-orphan`]);
    }
  });
});
