// Relay abuse against running daemons: a host the relay does not admit cannot use it, and a host it
// admits cannot reach, through it, a peer it does not admit.
//
//   inet 198.18.7.0/24: relay r .40 (bootstrap, relay service; admits a and b only),
//                       a .1, b .2, c .3, d .4; UDP between a and each of b, c, d dropped.
//
// a ↔ b can only talk through r. c lists r (bootstrap, relay) and a, and a admits c too: only r stands
// between them, and r does not admit c. a lists d (a real running host, which lists a back) reachable
// only through r, and r does not admit d (d lists a, with a's address, and nothing else).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestNet, waitFor } from "../lib/netns.ts";
import { counters, makeHost, sessions, startDaemon, writeConfig, type VineHost } from "../lib/vine.ts";

const DEADLINE_MS = 30_000;

describe("relay abuse", () => {
  let net: TestNet;
  let r: VineHost;
  let a: VineHost;
  let b: VineHost;
  let c: VineHost;
  let d: VineHost;

  beforeAll(async () => {
    net = new TestNet();
    const inet = net.ns("inet");
    net.bridge(inet, "br0");
    const host = (name: string, last: number) => net.host(name, { bridgeNs: inet, bridge: "br0", addr: `198.18.7.${last}/24` });
    r = makeHost(net, "r", host("r", 40), "10.42.254.1");
    a = makeHost(net, "a", host("a", 1), "10.42.1.1");
    b = makeHost(net, "b", host("b", 2), "10.42.2.1");
    c = makeHost(net, "c", host("c", 3), "10.42.3.1");
    d = makeHost(net, "d", host("d", 4), "10.42.4.1");
    for (const other of ["198.18.7.2", "198.18.7.3", "198.18.7.4"]) net.blockUdp(a.ns, { peer: other });
    const boot = [{ host: r, address: "udp://198.18.7.40:4100" }];
    const viaR = { host: r, relayCapable: true, endpoint: "udp://198.18.7.40:4100" };
    writeConfig(r, { peers: [{ host: a }, { host: b }], policy: { relay_service: true } });
    writeConfig(a, { bootstrap: boot, peers: [viaR, { host: b }, { host: c }, { host: d }] });
    writeConfig(b, { bootstrap: boot, peers: [viaR, { host: a }] });
    writeConfig(c, { bootstrap: boot, peers: [viaR, { host: a, endpoint: "udp://198.18.7.1:4100" }] });
    // d does not know r at all: r's drop_unauthorized_peer then counts c's handshakes only.
    writeConfig(d, { peers: [{ host: a, endpoint: "udp://198.18.7.1:4100" }] });
    for (const h of [r, a, b, c, d]) await startDaemon(net, h);
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  const sessionOf = async (h: VineHost, peer: VineHost) => (await sessions(net, h)).find((s) => s.peer_id === peer.peerId)!;

  test("a ↔ b, admitted by the relay, reach each other through it", async () => {
    for (const [h, peer] of [[a, b], [b, a]] as const) {
      await waitFor(
        async () => {
          const s = await sessionOf(h, peer);
          return s.path === "relay" && s.via === r.peerId && s.rtt_ms !== null ? s : null;
        },
        { timeoutMs: DEADLINE_MS, intervalMs: 200, what: `${h.name} → ${peer.name}: path relay via r, probe answered` },
      );
    }
    const p = await net.ping(a.ns, b.overlayIp, { count: 5, intervalS: 0.1, waitS: 2 });
    expect(p.received).toBe(5);
    const rc = await counters(net, r);
    expect(rc.peers[a.peerId]!.relayed_for_packets ?? 0).toBeGreaterThan(0);
    expect(rc.peers[b.peerId]!.relayed_for_packets ?? 0).toBeGreaterThan(0);
  });

  test("c, not admitted by the relay, never gets a session with it and cannot reach a through it", async () => {
    // r refuses c's handshakes, and counts them.
    await waitFor(async () => ((await counters(net, r)).node.drop_unauthorized_peer ?? 0) >= 2, {
      timeoutMs: DEADLINE_MS,
      intervalMs: 200,
      what: "r counts c's handshakes as drop_unauthorized_peer",
    });
    const p = await net.ping(c.ns, a.overlayIp, { count: 3, intervalS: 0.3, waitS: 1 });
    expect(p.received).toBe(0);
    const cs = await sessionOf(c, r);
    expect(cs.path).toBe("none");
    expect(cs.last_handshake).toBeNull();
    expect((await sessionOf(c, a)).path).toBe("none");
    expect((await sessions(net, r)).some((s) => s.peer_id === c.peerId)).toBe(false);
    // a admits c, yet never heard from it: r forwarded nothing of c's.
    const ac = await counters(net, a);
    expect(ac.peers[c.peerId]?.rx_packets ?? 0).toBe(0);
    expect((await sessionOf(a, c)).last_handshake).toBeNull();
    const cc = await counters(net, c);
    expect(cc.peers[r.peerId]?.handshake_initiations_sent ?? 0).toBeGreaterThan(0);
  });

  test("a cannot reach d, which the relay does not admit: refused, counted, and a is told; a ↔ b keeps flowing", async () => {
    const r0 = (await counters(net, r)).node.drop_relay_refused ?? 0;
    const a0 = (await counters(net, a)).peers[d.peerId]?.relay_refused_received ?? 0;
    const flow = net.spawn(a.ns, ["ping", "-n", "-i", "0.1", "-c", "60", "-W", "1", b.overlayIp]);
    // Traffic from a to d asks for a handshake through r.
    const p = await net.ping(a.ns, d.overlayIp, { count: 3, intervalS: 0.3, waitS: 1 });
    expect(p.received).toBe(0);
    await waitFor(
      async () => {
        const rn = (await counters(net, r)).node.drop_relay_refused ?? 0;
        const an = (await counters(net, a)).peers[d.peerId]?.relay_refused_received ?? 0;
        return rn > r0 && an > a0 ? { rn, an } : null;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 200, what: "r counts drop_relay_refused and a counts relay_refused_received for d" },
    );
    // Both logs name the peer that could not be reached and why.
    expect(net.log(a.daemon!)).toMatch(/relay refused our packet.*relay=r.*to=d.*reason=destination_not_admitted/);
    expect(net.log(r.daemon!)).toMatch(/relay request refused.*from=a.*to=unknown key.*reason=destination_not_admitted/);
    const ad = await sessionOf(a, d);
    expect(ad.path).toBe("none");
    expect(ad.last_handshake).toBeNull();
    expect((await sessionOf(d, a)).last_handshake).toBeNull();
    const dc = await counters(net, d);
    expect(dc.peers[a.peerId]?.rx_packets ?? 0).toBe(0);
    await flow.exited;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(net.log(flow))!;
    expect(Number(m[2])).toBeGreaterThanOrEqual(57);
    expect((await sessionOf(a, b)).path).toBe("relay");
  });
});
