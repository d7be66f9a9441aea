// TUN + rtnetlink inside a namespace: a child process creates the TUN, addresses and routes it through
// Rtnetlink, and answers pings for the routed prefix from the TUN fd; `ping` in the namespace succeeds.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TestNet, waitFor, type ProcessHandle } from "../lib/netns.ts";

const BUN = join(import.meta.dir, "../../node_modules/.bin/bun");
const RESPONDER = join(import.meta.dir, "../lib/fixtures/tun-responder.ts");
const OPEN = join(import.meta.dir, "../lib/fixtures/tun-open.ts");

interface Event {
  event: string;
  [key: string]: unknown;
}

function events(net: TestNet, handle: ProcessHandle): Event[] {
  return net.log(handle).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Event);
}

describe("TUN and rtnetlink in a namespace", () => {
  let net: TestNet;
  let ns: string;

  beforeAll(() => {
    net = new TestNet();
    ns = net.ns("tun");
  });
  afterAll(async () => {
    await net.cleanup();
  });

  test("ping through a TUN answered from its fd; routes listed; link deleted", async () => {
    const responder = net.spawn(ns, [BUN, RESPONDER, "vt0", "3"]);
    const ready = await waitFor(() => events(net, responder).find((e) => e.event === "ready"), {
      what: "TUN responder ready",
      timeoutMs: 15_000,
    });
    expect(ready.name).toBe("vt0");
    expect(ready.busy).toContain("EBUSY");
    expect(ready.index).toBeGreaterThan(1);
    expect(ready.routes).toContainEqual({ dst: "10.42.2.0", prefixLen: 24, ifname: "vt0", table: 254, protocol: 4 });
    expect(ready.routes).toContainEqual(expect.objectContaining({ dst: "10.42.1.0", prefixLen: 24, ifname: "vt0" }));

    // iproute2 sees the same state.
    const link = await net.exec(ns, ["ip", "-j", "link", "show", "vt0"]);
    const [info] = JSON.parse(link.stdout) as { mtu: number; txqlen: number; flags: string[] }[];
    expect(info!.mtu).toBe(1420);
    expect(info!.txqlen).toBe(500);
    expect(info!.flags).toContain("UP");
    const route = await net.exec(ns, ["ip", "route", "show", "10.42.2.0/24"]);
    expect(route.stdout).toContain("dev vt0");
    expect(route.stdout).toContain("src 10.42.1.1");

    const result = await net.ping(ns, "10.42.2.7", { count: 3, intervalS: 0.2 });
    expect(result.received).toBe(3);

    const requests = events(net, responder).filter((e) => e.event === "request");
    expect(requests.length).toBe(3);
    expect(requests[0]).toMatchObject({ src: "10.42.1.1", dst: "10.42.2.7", length: 84 });

    const done = await waitFor(() => events(net, responder).find((e) => e.event === "done"), { what: "responder done" });
    expect(done).toMatchObject({ replies: 3, routeAfterDelete: false, linkExists: false });
    expect(await responder.exited).toBe(0);
    const gone = await net.exec(ns, ["ip", "link", "show", "vt0"]);
    expect(gone.code).not.toBe(0);
  }, 60_000);

  test("without CAP_NET_ADMIN the error says what is missing; a bad name is refused before any syscall", async () => {
    const dropped = await net.exec(ns, ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", BUN, OPEN, "vt1"]);
    expect(JSON.parse(dropped.stdout)).toEqual({ ok: false, error: expect.stringMatching(/EPERM.*CAP_NET_ADMIN/) });
    const badName = await net.exec(ns, [BUN, OPEN, "much-too-long-name"]);
    expect(JSON.parse(badName.stdout)).toEqual({ ok: false, error: expect.stringContaining("not a valid interface name") });
    const fine = await net.exec(ns, [BUN, OPEN, "vt1"]);
    expect(JSON.parse(fine.stdout)).toEqual({ ok: true, name: "vt1" });
  }, 30_000);
});
