// The warm-up's compiled code must hold for the worker's own packet path, another instance built by the
// same openPath(). With a single private path, JavaScriptCore compiled calls to that path's own closures
// (the engine's TUN writer, the GRO writers); a second instance then failed those checks on every packet
// (OSR exits) until its code was thrown away and recompiled. src/dataplane/warmup.ts alternates two
// private paths so the compiled calls hold for any instance. Own file: the JIT state is per process, and
// other tests' paths would already have shown the compiler several instances.

import { expect, test } from "bun:test";
import { numberOfDFGCompiles, reoptimizationRetryCount } from "bun:jsc";
import { createAeads } from "../../src/crypto/aead.ts";
import { PacketEngine } from "../../src/dataplane/engine.ts";
import { TcpCoalescer } from "../../src/dataplane/gro.ts";
import { VNET_HDR_LEN } from "../../src/dataplane/tso.ts";
import { openLoopbackPath, warmUp, warmUpPacket } from "../../src/dataplane/warmup.ts";

test("code the warm-up compiled is not recompiled when another path instance carries packets", async () => {
  const o = { aeads: createAeads(), mtu: 1400, vnet: true, uso: true };
  // More packets than the daemon's warm-up, so the optimizing compiler has certainly run by the end.
  expect((await warmUp({ ...o, packets: 20_000 })).packets).toBe(20_000);
  // The two call sites that exited on every ping with one private path (deliverIPv4 calls the TUN
  // writer; the coalescer calls its single-packet writer).
  const hot = [(PacketEngine.prototype as unknown as { deliverIPv4: () => void }).deliverIPv4, TcpCoalescer.prototype.add];
  const compiles = () => hot.flatMap((f) => [numberOfDFGCompiles(f), reoptimizationRetryCount(f)]);
  const before = compiles();
  expect(before[0]).toBeGreaterThan(0); // deliverIPv4 was optimized by the warm-up
  const own = openLoopbackPath(o)!; // stands in for the worker's own path
  try {
    const ping = warmUpPacket(VNET_HDR_LEN, 1, 84);
    for (let i = 0; i < 3000; i++) expect(own.roundTrip(ping)).toBe(1);
  } finally {
    own.close();
  }
  expect(compiles()).toEqual(before);
});
