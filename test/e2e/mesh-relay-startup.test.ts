// Relay setup at startup, repeated: two hosts that can never reach each other directly must find
// each other through the relay every time, whatever order the handshakes happen to race in.
//
//   inet 198.18.6.0/24: relay .40 (bootstrap, relay service), a .1, b .2; UDP between a and b dropped.
//
// Each round starts three fresh daemons (new identities, empty state) and requires, within a
// deadline, that each side's path to the other is `relay` through the relay AND has answered a probe
// (rtt_ms set): a `relay` path whose probes the relay refuses would show `relay` with no RTT.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestNet, waitFor } from "../lib/netns.ts";
import { makeHost, sessions, startDaemon, writeConfig, type VineHost } from "../lib/vine.ts";

const ROUNDS = 5;
const DEADLINE_MS = 20_000; // an answered probe can take probeIntervalIdleMs (5 s) once the session proved the path

describe("mesh: relay setup at startup", () => {
  let net: TestNet;
  let nsRelay: string;
  let nsA: string;
  let nsB: string;

  beforeAll(() => {
    net = new TestNet();
    const inet = net.ns("inet");
    net.bridge(inet, "br0");
    nsRelay = net.host("relay", { bridgeNs: inet, bridge: "br0", addr: "198.18.6.40/24" });
    nsA = net.host("a", { bridgeNs: inet, bridge: "br0", addr: "198.18.6.1/24" });
    nsB = net.host("b", { bridgeNs: inet, bridge: "br0", addr: "198.18.6.2/24" });
    net.blockUdp(nsA, { peer: "198.18.6.2" });
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  async function relayedPath(h: VineHost, peer: VineHost, relay: VineHost) {
    return waitFor(
      async () => {
        const s = (await sessions(net, h)).find((x) => x.peer_id === peer.peerId);
        return s && s.path === "relay" && s.via === relay.peerId && s.rtt_ms !== null ? s : null;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 100, what: `${h.name} → ${peer.name}: path relay via ${relay.name} with a probe answered` },
    );
  }

  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: both sides reach each other through the relay within ${DEADLINE_MS / 1000} s of startup`, async () => {
      const relay = makeHost(net, `relay${round}`, nsRelay, "10.42.254.1");
      const a = makeHost(net, `a${round}`, nsA, "10.42.1.1");
      const b = makeHost(net, `b${round}`, nsB, "10.42.2.1");
      const boot = [{ host: relay, address: "udp://198.18.6.40:4100" }];
      const viaRelay = { host: relay, relayCapable: true, endpoint: "udp://198.18.6.40:4100" };
      writeConfig(relay, { peers: [{ host: a }, { host: b }], policy: { relay_service: true } });
      writeConfig(a, { bootstrap: boot, peers: [viaRelay, { host: b }] });
      writeConfig(b, { bootstrap: boot, peers: [viaRelay, { host: a }] });
      const hosts = [relay, a, b];
      try {
        const t0 = Date.now();
        for (const h of hosts) await startDaemon(net, h);
        const [sb, sa] = await Promise.all([relayedPath(b, a, relay), relayedPath(a, b, relay)]);
        console.log(`round ${round}: relayed paths up ${Date.now() - t0} ms after the first daemon started (rtt b→a ${sb.rtt_ms} ms, a→b ${sa.rtt_ms} ms)`);
        const r = await net.ping(b.ns, a.overlayIp, { count: 3, intervalS: 0.1, waitS: 2 });
        expect(r.received).toBe(3);
      } finally {
        for (const h of hosts) if (h.daemon) net.kill(h.daemon, "SIGTERM");
        for (const h of hosts) await h.daemon?.exited;
      }
    });
  }
});
