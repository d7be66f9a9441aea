// Hole punching at startup, repeated: two hosts behind separate NATs punch through with the help of a
// bootstrap peer, and the punched path must then stay up (it used to die about a second after forming
// now and then, sending both sides back to the relay).
//
//   inet 198.18.7.0/24: relay .40 (bootstrap, relay service)
//   r1 .11 (NAT) ── x 198.19.21.10          r2 .12 (NAT) ── y 198.19.22.10

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TestNet, waitFor } from "../lib/netns.ts";
import { makeHost, sessions, startDaemon, writeConfig, type SessionJson, type VineHost } from "../lib/vine.ts";

const ROUNDS = 5;
const FORM_DEADLINE_MS = 30_000;
const STAY_UP_MS = 4_000;

describe("mesh: hole punching at startup", () => {
  let net: TestNet;
  let nsRelay: string;
  let nsX: string;
  let nsY: string;

  beforeAll(() => {
    net = new TestNet();
    const inet = net.ns("inet");
    net.bridge(inet, "br0");
    const r1 = net.natRouter("r1", { wan: { ns: inet, bridge: "br0", addr: "198.18.7.11/24" }, lan: { addr: "198.19.21.1/24" } });
    const r2 = net.natRouter("r2", { wan: { ns: inet, bridge: "br0", addr: "198.18.7.12/24" }, lan: { addr: "198.19.22.1/24" } });
    nsRelay = net.host("relay", { bridgeNs: inet, bridge: "br0", addr: "198.18.7.40/24" });
    nsX = net.host("x", { bridgeNs: r1.ns, bridge: r1.lanBridge, addr: "198.19.21.10/24", gateway: "198.19.21.1" });
    nsY = net.host("y", { bridgeNs: r2.ns, bridge: r2.lanBridge, addr: "198.19.22.10/24", gateway: "198.19.22.1" });
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  const DIRECT = ["direct", "signaling_then_direct"];

  /**
   * h's path to `peer` once it is a direct class. The side whose punch arrives first sees the other's
   * packets before any ENDPOINTS about it: for that side the endpoint is simply "the source of an
   * authenticated packet", class `direct`; the other side learned it by signaling.
   */
  async function directPath(h: VineHost, peer: VineHost): Promise<SessionJson> {
    return waitFor(
      async () => {
        const s = (await sessions(net, h)).find((q) => q.peer_id === peer.peerId);
        return s && DIRECT.includes(s.path) ? s : null;
      },
      { timeoutMs: FORM_DEADLINE_MS, intervalMs: 200, what: `${h.name} → ${peer.name}: a direct path` },
    );
  }

  /** path_change rows for `peer` in h's event table. */
  function pathEvents(h: VineHost, peer: VineHost): string[] {
    const r = Bun.spawnSync(["sqlite3", join(h.stateDir, "vine.db"), `select from_path || ' -> ' || to_path from events where kind = 'path_change' and peer_id = '${peer.peerId}' order by id`]);
    return r.stdout.toString().trim().split("\n").filter(Boolean);
  }

  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: the punched path forms and stays up`, async () => {
      const relay = makeHost(net, `relay${round}`, nsRelay, "10.42.254.1");
      const x = makeHost(net, `x${round}`, nsX, "10.42.1.1");
      const y = makeHost(net, `y${round}`, nsY, "10.42.2.1");
      const boot = [{ host: relay, address: "udp://198.18.7.40:4100" }];
      const viaRelay = { host: relay, relayCapable: true, endpoint: "udp://198.18.7.40:4100" };
      writeConfig(relay, { peers: [{ host: x }, { host: y }], policy: { relay_service: true } });
      writeConfig(x, { bootstrap: boot, peers: [viaRelay, { host: y }] });
      writeConfig(y, { bootstrap: boot, peers: [viaRelay, { host: x }] });
      const hosts = [relay, x, y];
      try {
        for (const h of hosts) await startDaemon(net, h);
        await waitFor(async () => (await net.ping(x.ns, y.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: FORM_DEADLINE_MS, what: "x → y ping" });
        const formedX = await directPath(x, y);
        const formedY = await directPath(y, x);
        expect([formedX.path, formedY.path]).toContain("signaling_then_direct");
        // Stays up: sample both sides for a while, with traffic flowing.
        const ping = net.spawn(x.ns, ["ping", "-n", "-q", "-i", "0.1", "-c", String(STAY_UP_MS / 100), y.overlayIp]);
        // The punched path must survive the first seconds (it used to die about 1 s after forming).
        const end = Date.now() + STAY_UP_MS;
        while (Date.now() < end) {
          const [sx, sy] = await Promise.all([sessions(net, x), sessions(net, y)]);
          expect(sx.find((s) => s.peer_id === y.peerId)?.path).toBe(formedX.path);
          expect(sy.find((s) => s.peer_id === x.peerId)?.path).toBe(formedY.path);
        }
        await ping.exited;
        const evX = pathEvents(x, y);
        const evY = pathEvents(y, x);
        console.log(`round ${round}: x → y ${evX.join(", ")}; y → x ${evY.join(", ")}`);
        // Up to the punched path, never down from it.
        const down = (e: string) => DIRECT.some((d) => e.startsWith(`${d} ->`)) && !DIRECT.some((d) => e.endsWith(`-> ${d}`));
        expect(evX.filter(down)).toEqual([]);
        expect(evY.filter(down)).toEqual([]);
      } finally {
        for (const h of hosts) if (h.daemon) net.kill(h.daemon, "SIGTERM");
        for (const h of hosts) await h.daemon?.exited;
      }
    });
  }
});
