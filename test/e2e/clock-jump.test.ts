// A peer's wall clock jumps, as with an NTP step or an RTC reset, and the mesh recovers on its own.
//
//   a 198.18.9.1 ── b 198.18.9.2 (one veth); b's daemon runs under libfaketime with a wall clock the
//   test moves at runtime (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1). FAKETIME_DONT_FAKE_MONOTONIC=1
//   leaves the monotonic clocks alone, as a real step does. Nothing else on the machine is touched.
//
// WireGuard's timers run scaled down (VINE_TEST_TIME_SCALE 0.06: a rekey every ~7 s), so rekeys and
// keepalives happen many times while the clock is off. What must hold:
//  - traffic keeps flowing while b's clock is an hour behind, a day ahead, and back again;
//  - a accepts b's initiations (a's own are dropped on the way, so only b's can make sessions), even
//    after b restarts with its clock still behind the timestamps a has already seen: b sends the next
//    timestamp after the last one it sent (kept in its database), and counts
//    `handshake_timestamp_clock_behind`. Without that, a refuses them (`handshake_replayed`) until b's
//    clock catches up, and b is locked out.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestNet, waitFor } from "../lib/netns.ts";
import { configuredPair, counters, startDaemon, vineJson, type VineHost } from "../lib/vine.ts";

const LIBFAKETIME = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"].find(existsSync);
const SCALE = { VINE_TEST_TIME_SCALE: "0.06" };
const HOUR_S = 3600;
const DAY_S = 86_400;

describe.skipIf(!LIBFAKETIME)("a peer's clock jumps", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;
  let clockFile: string;
  let bEnv: Record<string, string>;

  /** Set b's wall clock offset from the real one (libfaketime syntax: "+0", "-1h", "+1d"). */
  function setClock(offset: string): void {
    writeFileSync(clockFile, `${offset}\n`);
  }

  /** How far b's daemon's wall clock is from ours, in seconds, as b itself reports it (last_seen of a). */
  async function bClockOffsetS(): Promise<number> {
    const peers = (await vineJson<{ peers: { peer_id: string; last_seen: string | null }[] }>(net, b, ["peers"])).peers;
    const seen = peers.find((p) => p.peer_id === a.peerId)?.last_seen;
    if (!seen) throw new Error("b has not heard from a yet");
    return (Date.parse(seen) - Date.now()) / 1000;
  }

  async function waitClockOffset(expectedS: number): Promise<number> {
    return waitFor(
      async () => {
        await net.ping(a.ns, b.overlayIp, { count: 1, waitS: 1 }); // makes b hear from a now
        const off = await bClockOffsetS();
        return Math.abs(off - expectedS) < 60 ? off : null;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: `b's wall clock ${expectedS} s off (libfaketime in effect)` },
    );
  }

  const node = async (h: VineHost, name: string) => (await counters(net, h)).node[name] ?? 0;
  const ofPeer = async (h: VineHost, peer: VineHost, name: string) => (await counters(net, h)).peers[peer.peerId]?.[name] ?? 0;

  /** A ping from b to a that lasts ~15 s (two rekeys or more): every echo but a handful answered. */
  async function steadyPing(what: string): Promise<void> {
    const before = await node(b, "handshakes_completed");
    const r = await net.ping(b.ns, a.overlayIp, { count: 150, intervalS: 0.1, waitS: 2 });
    const after = await node(b, "handshakes_completed");
    console.log(`${what}: ${r.received}/150 echoes, ${after - before} handshakes completed on b`);
    expect(after - before).toBeGreaterThanOrEqual(1);
    expect(r.received).toBeGreaterThanOrEqual(147);
  }

  beforeAll(async () => {
    net = new TestNet();
    ({ a, b } = configuredPair(net, 9));
    clockFile = join(b.dir, "faketime");
    setClock("+0");
    // a's handshake initiations never reach b: every session is one b initiates, so each step below
    // holds only if a accepts b's initiations (a could otherwise hide a lockout by initiating itself).
    const r = await net.exec(a.ns, ["nft", "-f", "-"], {
      stdin: "table ip vt_no_init {\n  chain output {\n    type filter hook output priority filter - 10; policy accept;\n    udp dport 4100 @th,64,8 1 counter drop\n  }\n}\n",
    });
    if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
    bEnv = { ...SCALE, LD_PRELOAD: LIBFAKETIME!, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
    await startDaemon(net, a, SCALE);
    await startDaemon(net, b, bEnv);
    // a now holds a TAI64N timestamp from b's (correct) clock.
    await waitFor(async () => (await net.ping(b.ns, a.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 20_000, what: "b → a ping" });
    expect(await ofPeer(b, a, "handshake_initiations_sent")).toBeGreaterThanOrEqual(1);
    expect(Math.abs(await waitClockOffset(0))).toBeLessThan(60);
  });

  afterAll(async () => {
    await net?.cleanup();
  });

  test("b's clock steps back an hour while running: traffic and rekeys go on, b's initiations are accepted", async () => {
    const behind0 = await ofPeer(b, a, "handshake_timestamp_clock_behind");
    setClock("-1h");
    const off = await waitClockOffset(-HOUR_S);
    console.log(`b's clock is ${Math.round(off)} s off`);
    await steadyPing("an hour behind");
    // b's rekeys left with its clock behind the last timestamp it sent, and a accepted them.
    expect(await ofPeer(b, a, "handshake_timestamp_clock_behind")).toBeGreaterThan(behind0);
  });

  test("b restarts with its clock still an hour behind: its initiations are accepted, traffic resumes", async () => {
    const behind0 = await ofPeer(b, a, "handshake_timestamp_clock_behind");
    const accepted0 = await ofPeer(a, b, "handshakes_completed");
    net.kill(b.daemon!, "SIGKILL");
    await b.daemon!.exited;
    const t0 = Date.now();
    await startDaemon(net, b, bEnv);
    await waitFor(async () => (await net.ping(b.ns, a.overlayIp, { count: 1, waitS: 1 })).received === 1, { timeoutMs: 30_000, what: "b → a ping after b's restart" });
    console.log(`b restarted an hour behind: first echo ${Date.now() - t0} ms after the restart began`);
    // b's first initiation after the restart was below what a had seen: b sent the next timestamp instead.
    expect(await ofPeer(b, a, "handshake_timestamp_clock_behind")).toBeGreaterThan(behind0);
    expect(await ofPeer(a, b, "handshakes_completed")).toBeGreaterThan(accepted0);
    await steadyPing("after the restart, an hour behind");
  });

  test("b's clock steps a day ahead, then back: traffic, rekeys and keepalives go on", async () => {
    setClock("+1d");
    await waitClockOffset(DAY_S);
    await steadyPing("a day ahead");
    const behind0 = await ofPeer(b, a, "handshake_timestamp_clock_behind");
    setClock("+0");
    await waitClockOffset(0);
    await steadyPing("back to the right time");
    const behind1 = await ofPeer(b, a, "handshake_timestamp_clock_behind");
    console.log(`initiations b sent with its clock behind the last timestamp: ${behind1 - behind0}`);
    expect(behind1).toBeGreaterThan(behind0);
    // Membership claims carry the sender's time and are checked within ±24 h: advisory, never cutting traffic.
    const ca = (await counters(net, a)).peers[b.peerId] ?? {};
    console.log(`claims from b at a: accepted ${ca.claims_accepted ?? 0}, stale ${ca.claim_rejected_stale ?? 0}`);
    // b's state database took every write through the jumps.
    const ic = await net.exec(b.ns, ["sqlite3", join(b.stateDir, "vine.db"), "PRAGMA integrity_check"]);
    expect(ic.stdout.trim()).toBe("ok");
    expect(await node(b, "state_write_errors")).toBe(0);
  });
});
