// SendGroups over loopback (no privileges needed): datagrams gathered into GSO groups arrive as the
// same datagrams, in order, whatever the mix of sizes and destinations, with and without UDP_SEGMENT.

import { describe, expect, test } from "bun:test";
import { SendGroups } from "../../src/dataplane/send-groups.ts";
import { Poller } from "../../src/linux/poll.ts";
import { UdpIo, boundPort } from "../../src/linux/udp.ts";
import { LOOPBACK, loopbackSockets } from "../lib/loopback.ts";

const open = loopbackSockets();

const memcpy = (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number) => dst.set(src.subarray(srcOff, srcOff + n), dstOff);

/** Datagram i: `len` bytes, its index in the first two bytes, then a pattern that depends on it. */
function datagram(i: number, len: number): Uint8Array {
  const d = new Uint8Array(len);
  d[0] = i >> 8;
  d[1] = i & 255;
  for (let k = 2; k < len; k++) d[k] = (i * 31 + k) & 255;
  return d;
}

/** Receive (no GRO: one datagram per slot) until `count` arrived or 5 s passed. */
function receive(fd: number, count: number): Uint8Array[] {
  const io = new UdpIo(fd, { batch: 64, bufSize: 2048 });
  const poller = new Poller([fd]);
  const got: Uint8Array[] = [];
  const deadline = Date.now() + 5000;
  while (got.length < count && Date.now() < deadline) {
    poller.wait(100);
    const n = io.recvBatch();
    for (let i = 0; i < n; i++) got.push(io.slot(i).slice(0, io.lengths[i]!));
  }
  return got;
}

describe("SendGroups", () => {
  for (const gso of [true, false]) {
    test(`${gso ? "with" : "without"} UDP_SEGMENT: sizes and destinations mixed, every datagram arrives intact and in order`, () => {
      const src = open();
      const dstA = open();
      const dstB = open();
      const refused: number[] = [];
      const groups = new SendGroups(src, 4, memcpy, (e) => refused.push(e), gso);
      // Runs of equal sizes (groupable), a shorter one ending a run, a datagram too big to segment,
      // destination changes, and more than 4 groups × 64 datagrams so groups flush early.
      const plan: [number, number][] = []; // [len, destination]
      for (let i = 0; i < 150; i++) plan.push([1200, 0]);
      plan.push([700, 0], [1200, 0], [1200, 1], [1200, 1], [1480, 1], [64, 0]);
      for (let i = 0; i < 120; i++) plan.push([100 + (i % 3), i % 2]);
      const sent: Uint8Array[][] = [[], []];
      plan.forEach(([len, to], i) => {
        const d = datagram(i, len);
        // The datagram sits inside a larger buffer, as in the packet path.
        const buf = new Uint8Array(len + 96);
        buf.set(d, 40);
        groups.add(buf, 40, len, LOOPBACK, boundPort(to === 0 ? dstA : dstB));
        sent[to]!.push(d);
      });
      groups.flush();
      expect(groups.takeLost()).toBe(0);
      expect(refused).toEqual([]);
      for (const [to, fd] of [dstA, dstB].entries()) {
        const got = receive(fd, sent[to]!.length);
        expect(got.length).toBe(sent[to]!.length);
        got.forEach((d, i) => expect(Buffer.from(d).equals(Buffer.from(sent[to]![i]!))).toBe(true));
      }
    });
  }

  test("flush with nothing queued sends nothing and loses nothing", () => {
    const groups = new SendGroups(open(), 2, memcpy, () => {});
    groups.flush();
    groups.flush();
    expect(groups.takeLost()).toBe(0);
  });
});
