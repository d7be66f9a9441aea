// The TUN interface deleted under a running daemon (issue 8 "Hardening"): every read of the TUN fails
// from then on. The daemon says so once, clearly, counts it (`tun_gone`, `tun_read_errors`), keeps
// answering the CLI, and still stops cleanly.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestNet, waitFor } from "../lib/netns.ts";
import { counters, directPair, VINE, type VineHost } from "../lib/vine.ts";

describe("the TUN disappears under a running daemon", () => {
  let net: TestNet;
  let a: VineHost;
  let b: VineHost;

  beforeAll(async () => {
    net = new TestNet();
    ({ a, b } = await directPair(net, 62));
  }, 90_000);

  afterAll(async () => {
    await net?.cleanup();
  });

  test("logged once and counted, not once per failed read; stop still works", async () => {
    // the overlay works first (the first ping may wait for the handshake)
    await waitFor(async () => (await net.ping(a.ns, b.overlayIp, { count: 3, intervalS: 0.2, waitS: 2 })).received === 3, {
      timeoutMs: 30_000,
      what: "3 of 3 pings a → b",
    });
    expect((await counters(net, a)).node.tun_gone ?? 0).toBe(0);

    expect((await net.exec(a.ns, ["ip", "link", "del", "vine0"])).code).toBe(0);
    const gone = await waitFor(
      async () => {
        const c = (await counters(net, a)).node;
        return (c.tun_gone ?? 0) === 1 ? c : null;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: "tun_gone = 1 on a" },
    );
    expect(gone.tun_read_errors).toBeGreaterThanOrEqual(1);
    // whatever the worker keeps reporting (each failed read is an event), the log says it once
    const log = () => net.log(a.daemon!).split("\n");
    const t0 = Date.now();
    const later = await waitFor(
      async () => {
        const c = (await counters(net, a)).node;
        return c.tun_read_errors! > gone.tun_read_errors! + 1000 || Date.now() - t0 > 3000 ? c : null;
      },
      { timeoutMs: 10_000, intervalMs: 500, what: "more failed TUN reads, or 3 s of them" },
    );
    expect(later.tun_read_errors!).toBeGreaterThanOrEqual(gone.tun_read_errors!);
    const said = log().filter((l) => /TUN interface vine0 is gone/.test(l));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/\((ENODEV|EBADFD|EIO)\).*restart the daemon/);
    expect(log().filter((l) => /tun read failed/.test(l))).toHaveLength(0);
    expect((await counters(net, a)).node.tun_gone).toBe(1);

    const stop = await net.exec(a.ns, [VINE, "daemon", "stop", "--state-dir", a.stateDir], { timeoutMs: 30_000 });
    expect(stop.stderr).toBe("");
    expect(stop.code).toBe(0);
    expect(await a.daemon!.exited).toBe(0);
  }, 120_000);
});
