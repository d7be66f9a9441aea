// Protocol interop proof, with no vine daemon involved: the WireGuard engine in src/wg + src/crypto,
// driven by a small UDP script (test/e2e/wg-interop/peer.ts), against a stock wireguard-go.
//
//   namespace a: peer.ts on 198.18.50.1:51821 (overlay address 10.42.0.1, hand-built packets)
//   namespace b: wireguard-go wg0, 198.18.50.2:51820, overlay 10.42.1.1/24
//
// 1. vine's engine initiates, sends an ICMP echo request inside a transport message, and decrypts the
//    echo reply the kernel behind wireguard-go sends back.
// 2. wireguard-go initiates (after its peer is re-added, so it has no session), pings 10.42.0.1, and
//    the engine answers as responder: the ping in b succeeds.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { generateX25519KeyPair } from "../../src/crypto/x25519.ts";
import { TestNet, waitFor, type ProcessHandle } from "../lib/netns.ts";

const BUN = join(import.meta.dir, "../../node_modules/.bin/bun");
const PEER_SCRIPT = join(import.meta.dir, "wg-interop/peer.ts");
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

interface PeerEvent {
  event: string;
  [k: string]: unknown;
}

describe("WireGuard protocol engine against stock wireguard-go", () => {
  let net: TestNet;
  let nsA: string;
  let nsB: string;
  let peer: ProcessHandle;
  const vine = generateX25519KeyPair();
  const psk = new Uint8Array(randomBytes(32));
  let wgPub = "";

  const events = (): PeerEvent[] =>
    net
      .log(peer)
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as PeerEvent);
  const waitEvent = (pred: (e: PeerEvent) => boolean, what: string, timeoutMs = 15_000) =>
    waitFor(() => events().find(pred), { what: `${what} (peer log: ${net.log(peer).slice(-800)})`, timeoutMs });

  async function wg(args: string[], stdin?: string): Promise<string> {
    const r = await net.exec(nsB, args, { stdin });
    if (r.code !== 0) throw new Error(`${args.join(" ")} in ${nsB}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  beforeAll(async () => {
    // (timeout below: wireguard-go start-up plus key set-up)
    net = new TestNet();
    nsA = net.ns("wgi-a");
    nsB = net.ns("wgi-b");
    net.link(nsA, "eth0", "198.18.50.1/24", nsB, "eth0", "198.18.50.2/24");

    const wgPriv = (await net.exec(nsB, ["wg", "genkey"])).stdout.trim();
    wgPub = (await net.exec(nsB, ["wg", "pubkey"], { stdin: wgPriv + "\n" })).stdout.trim();
    net.spawn(nsB, ["wireguard-go", "-f", "wg0"], { env: { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1", LOG_LEVEL: "verbose" } });
    await waitFor(async () => (await net.exec(nsB, ["ip", "link", "show", "wg0"])).code === 0, { what: "wireguard-go to create wg0" });
    // Keys go through files (mode 0600, removed with the log dir), never through argv.
    const privFile = join(net.logDir, "wg.key");
    const pskFile = join(net.logDir, "wg.psk");
    await Bun.write(privFile, wgPriv + "\n");
    await Bun.write(pskFile, b64(psk) + "\n");
    await Bun.spawn(["chmod", "600", privFile, pskFile]).exited;
    await wg(["wg", "set", "wg0", "private-key", privFile, "listen-port", "51820", "peer", b64(vine.publicKey), "preshared-key", pskFile, "allowed-ips", "10.42.0.0/24"]);
    await wg(["ip", "addr", "add", "10.42.1.1/24", "dev", "wg0"]);
    await wg(["ip", "link", "set", "wg0", "up"]);
    // wg(8) installs no routes (wg-quick would): the echo reply needs one back to 10.42.0.0/24.
    await wg(["ip", "route", "add", "10.42.0.0/24", "dev", "wg0"]);

    const config = { privateKey: b64(vine.privateKey), peerPublic: wgPub, psk: b64(psk), peer: "198.18.50.2:51820", listen: "198.18.50.1:51821" };
    peer = net.spawn(nsA, [BUN, PEER_SCRIPT], { env: { VINE_WGI_CONFIG: JSON.stringify(config) } });
  }, 30_000);

  afterAll(async () => {
    await net?.cleanup();
  });

  test("vine's engine initiates: handshake, echo request out, echo reply decrypted", async () => {
    const done = await waitEvent((e) => e.event === "handshake-complete" && e.role === "initiator", "the handshake initiated by vine's engine");
    expect(typeof done.remoteIndex).toBe("number");
    const reply = await waitEvent((e) => e.event === "echo-reply" || e.event === "echo-reply-mismatch", "the ICMP echo reply through wireguard-go");
    expect(reply).toMatchObject({ event: "echo-reply", src: "10.42.1.1", dst: "10.42.0.1", seq: 1 });
    // wireguard-go agrees a handshake happened with our key.
    const hs = await wg(["wg", "show", "wg0", "latest-handshakes"]);
    const [key, when] = hs.trim().split(/\s+/);
    expect(key).toBe(b64(vine.publicKey));
    expect(Number(when)).toBeGreaterThan(0);
    expect(events().filter((e) => e.event === "drop")).toEqual([]);
  }, 30_000);

  test("wireguard-go initiates: vine's engine responds and answers pings", async () => {
    // Re-adding the peer drops wireguard-go's keypairs, so the next packet needs a new handshake,
    // which wireguard-go now initiates towards our endpoint.
    await wg(["wg", "set", "wg0", "peer", b64(vine.publicKey), "remove"]);
    const pskFile = join(net.logDir, "wg.psk");
    await wg(["wg", "set", "wg0", "peer", b64(vine.publicKey), "preshared-key", pskFile, "allowed-ips", "10.42.0.0/24", "endpoint", "198.18.50.1:51821"]);

    await waitFor(async () => (await net.ping(nsB, "10.42.0.1", { count: 1, waitS: 1 })).received === 1, {
      what: "a ping from wireguard-go's side answered by vine's engine",
      timeoutMs: 20_000,
    });
    const responded = events().find((e) => e.event === "handshake-complete" && e.role === "responder");
    expect(responded).toBeDefined();
    expect(events().some((e) => e.event === "session-confirmed" && e.localIndex === responded!.localIndex)).toBe(true);
    expect(events().some((e) => e.event === "echo-request" && e.src === "10.42.1.1" && e.localIndex === responded!.localIndex)).toBe(true);

    // A steady exchange on the new session: five pings, five answers.
    const r = await net.ping(nsB, "10.42.0.1", { count: 5, intervalS: 0.1 });
    expect(r.received).toBe(5);
    expect(events().filter((e) => e.event === "drop")).toEqual([]);
  }, 40_000);
});
