// The data-plane warm-up (src/dataplane/warmup.ts): a packet path over a socketpair (the TUN stand-in)
// and a loopback UDP socket, talking to itself through a private table. Packets come back unchanged
// after a real seal/open round, with and without the TUN's virtio header, with both AEAD backends; the
// warm-up closes every descriptor it opened and never needs the daemon's state.

import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { createAeads } from "../../src/crypto/aead.ts";
import { VNET_HDR_LEN } from "../../src/dataplane/tso.ts";
import { openLoopbackPath, warmUp, warmUpPacket, WARMUP_PACKETS } from "../../src/dataplane/warmup.ts";

const openFds = (): number => readdirSync("/proc/self/fd").length;

describe("loopback path", () => {
  for (const vnet of [true, false]) {
    test(`packets come back byte for byte, counted on both sides of the engine (vnet header: ${vnet})`, () => {
      const loop = openLoopbackPath({ aeads: createAeads(), mtu: 1400, vnet, uso: true })!;
      expect(loop).not.toBeNull();
      try {
        const hdr = vnet ? VNET_HDR_LEN : 0;
        for (const [proto, len] of [[1, 84], [6, 52], [6, 1400]] as const) {
          const pkt = warmUpPacket(hdr, proto, len);
          pkt[hdr + len - 1] = 0x5a; // a payload byte the AEAD must carry
          const out: Uint8Array[] = [];
          expect(loop.roundTrip(pkt, out)).toBe(1);
          // The IP packet is unchanged; a vnet header, if any, is the path's own (zero: no offload asked).
          expect(out[0]!.subarray(hdr)).toEqual(pkt.subarray(hdr));
        }
        expect(loop.views.nodeCounter("tx_packets")).toBe(3);
        expect(loop.views.nodeCounter("rx_packets")).toBe(3);
        expect(loop.views.nodeCounter("drop_decrypt_failed")).toBe(0);
      } finally {
        loop.close();
      }
    });
  }
});

describe("warmUp", () => {
  test("runs the default count through the worker's poll loop with the libcrypto backend and leaves no descriptor open", async () => {
    const before = openFds();
    const r = await warmUp({ aeads: createAeads(), mtu: 1400, vnet: true, uso: true });
    expect(r.packets).toBe(WARMUP_PACKETS);
    expect(r.ms).toBeGreaterThan(0);
    expect(openFds()).toBe(before);
  });

  test("works with the noble backend and without the virtio header", async () => {
    const r = await warmUp({ aeads: createAeads("noble"), mtu: 1280, vnet: false, uso: false, packets: 60 });
    expect(r.packets).toBe(60);
  });
});

describe("viaLoop", () => {
  test("a packet goes round through the worker's poll loop, counted once each way, on two loop instances", async () => {
    const o = { aeads: createAeads(), mtu: 1400, vnet: true, uso: true };
    for (let k = 0; k < 2; k++) {
      const loop = openLoopbackPath(o)!;
      try {
        for (const [proto, len] of [[1, 84], [6, 52], [6, 1400]] as const) expect(await loop.viaLoop(warmUpPacket(VNET_HDR_LEN, proto, len))).toBe(true);
        expect(loop.views.nodeCounter("tx_packets")).toBe(3);
        expect(loop.views.nodeCounter("rx_packets")).toBe(3);
      } finally {
        loop.close();
      }
    }
  });
});
