// Batched UDP (recvmmsg/sendmmsg through ffi) inside a namespace: a throughput measurement over the
// namespace's loopback (functional tests of UdpIo are in test/unit/linux-udp.test.ts).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TestNet } from "../lib/netns.ts";

const BUN = join(import.meta.dir, "../../node_modules/.bin/bun");
const THROUGHPUT = join(import.meta.dir, "../lib/fixtures/udp-throughput.ts");

describe("UdpIo in a namespace", () => {
  let net: TestNet;
  let ns: string;

  beforeAll(() => {
    net = new TestNet();
    ns = net.ns("udp");
  });
  afterAll(async () => {
    await net.cleanup();
  });

  test("moves batches of 1400-byte datagrams over loopback", async () => {
    const r = await net.exec(ns, [BUN, THROUGHPUT, "1", "1400", "64"], { timeoutMs: 20_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { sent: number; received: number; badLength: number; perSecond: number };
    console.log(`UdpIo loopback: ${result.perSecond} datagrams/s (1400 B, batch 64), sent ${result.sent}, received ${result.received}`);
    expect(result.badLength).toBe(0);
    expect(result.received).toBeGreaterThan(0);
    expect(result.received).toBeLessThanOrEqual(result.sent);
    // A floor far below what batching gives, that a per-datagram or blocking path would not miss by much.
    expect(result.perSecond).toBeGreaterThan(20_000);
  }, 30_000);
});
