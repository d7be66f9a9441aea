// releasePages: whole pages inside a buffer are given back (they read as zeros and leave the resident
// set), bytes outside them are never touched; UdpIo, SendGroups and the GRO coalescer release their
// packet memory only when nothing is queued, and keep working afterwards.

import { describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import { PAGE_SIZE, releasePages } from "../../src/linux/memory.ts";
import { Poller } from "../../src/linux/poll.ts";
import { UdpIo, boundPort } from "../../src/linux/udp.ts";
import { LOOPBACK, loopbackSockets } from "../lib/loopback.ts";
import { SendGroups } from "../../src/dataplane/send-groups.ts";
import { TcpCoalescer } from "../../src/dataplane/gro.ts";

const open = loopbackSockets();

const rssAnonKb = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
const memcpy = (dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number) => dst.set(src.subarray(srcOff, srcOff + n), dstOff);

describe("releasePages", () => {
  test("only the whole pages inside the range are released: they read as zeros, the edges keep their bytes", () => {
    const buf = new Uint8Array(new ArrayBuffer(16 * PAGE_SIZE));
    buf.fill(0xab);
    const base = ptr(buf.buffer);
    // An unaligned window: from 100 bytes into the buffer to 200 bytes before its end.
    const from = 100;
    const to = buf.length - 200;
    const released = releasePages(base + from, to - from);
    const first = Math.ceil((base + from) / PAGE_SIZE) * PAGE_SIZE - base;
    const last = Math.floor((base + to) / PAGE_SIZE) * PAGE_SIZE - base;
    expect(released).toBe(last - first);
    expect(released).toBeGreaterThanOrEqual(13 * PAGE_SIZE);
    for (let i = 0; i < buf.length; i += 97) expect(buf[i]).toBe(i >= first && i < last ? 0 : 0xab);
    expect(buf[first - 1]).toBe(0xab);
    expect(buf[first]).toBe(0);
    expect(buf[last - 1]).toBe(0);
    expect(buf[last]).toBe(0xab);
  });

  test("a range without a whole page releases nothing", () => {
    const buf = new Uint8Array(new ArrayBuffer(2 * PAGE_SIZE)).fill(7);
    const base = ptr(buf.buffer);
    const start = Math.ceil(base / PAGE_SIZE) * PAGE_SIZE + 1;
    expect(releasePages(start, PAGE_SIZE - 2)).toBe(0);
    expect(releasePages(base, 0)).toBe(0);
    expect(buf.every((b) => b === 7)).toBe(true);
  });

  test("released pages leave the resident set", () => {
    const mib = 32;
    const buf = new Uint8Array(new ArrayBuffer(mib << 20));
    buf.fill(1);
    const before = rssAnonKb();
    expect(releasePages(ptr(buf.buffer), buf.length)).toBeGreaterThan((mib - 1) << 20);
    const after = rssAnonKb();
    expect(before - after).toBeGreaterThan((mib - 4) * 1024);
    buf[0] = 2; // still usable: the page comes back, zero-filled
    expect(buf[0]).toBe(2);
    expect(buf[PAGE_SIZE]).toBe(0);
  });
});

describe("packet buffers released while idle", () => {
  test("UdpIo: slots released when nothing is queued; sending and receiving still work", () => {
    const a = open();
    const b = open();
    const tx = new UdpIo(a, { batch: 8, bufSize: 65536 });
    const rx = new UdpIo(b, { batch: 8, bufSize: 65536 });
    for (let i = 0; i < 8; i++) tx.sendSlot(i).fill(0x5a);
    tx.queue(0, 10, LOOPBACK, boundPort(b));
    expect(tx.releaseData()).toBe(0); // something is queued: nothing released
    expect(tx.flush()).toBe(1);
    expect(tx.releaseData()).toBeGreaterThan(14 * 65536);
    expect(tx.sendSlot(3)[PAGE_SIZE]).toBe(0);
    expect(rx.releaseData()).toBeGreaterThan(14 * 65536);
    // The message headers were not touched: a datagram still goes out and comes in whole.
    new TextEncoder().encodeInto("after release", tx.sendSlot(1));
    tx.queue(1, 13, LOOPBACK, boundPort(b));
    expect(tx.flush()).toBe(1);
    const poller = new Poller([b]);
    const texts: string[] = [];
    const deadline = Date.now() + 5000;
    while (texts.length < 2 && Date.now() < deadline) {
      poller.wait(100);
      const n = rx.recvBatch();
      for (let i = 0; i < n; i++) texts.push(Buffer.from(rx.slot(i).subarray(0, rx.lengths[i]!)).toString("latin1"));
    }
    expect(texts).toEqual(["\x5a".repeat(10), "after release"]);
  });

  test("SendGroups: nothing released while a group is open", () => {
    const dst = open();
    const groups = new SendGroups(open(), 4, memcpy, () => {});
    const d = new Uint8Array(1200).fill(9);
    groups.add(d, 0, 1200, LOOPBACK, boundPort(dst));
    expect(groups.releaseData()).toBe(0);
    groups.flush();
    expect(groups.releaseData()).toBeGreaterThan(3 * 65536);
  });

  test("GRO coalescer: nothing released while a flow holds data", () => {
    const written: number[] = [];
    const g = new TcpCoalescer(
      (_b, _o, len) => written.push(len) > 0,
      memcpy,
      (_b, _o, len) => written.push(len) > 0,
    );
    // An IPv4/TCP segment with a payload (held by the coalescer until flushAll).
    const p = new Uint8Array(16 + 20 + 20 + 100);
    const o = 16;
    p[o] = 0x45;
    p[o + 2] = 0;
    p[o + 3] = 140;
    p[o + 8] = 64;
    p[o + 9] = 6;
    p[o + 20 + 12] = 5 << 4;
    p[o + 20 + 13] = 0x10; // ACK
    const calls: number[] = [];
    const release = (buf: Uint8Array) => {
      calls.push(buf.length);
      return buf.length;
    };
    expect(g.add(p, o, 140)).toBe(true);
    expect(written.length).toBe(0); // held: more segments of the flow may follow
    expect(g.releaseData(release)).toBe(0);
    expect(calls.length).toBe(0);
    g.flushAll();
    expect(written.length).toBe(1);
    expect(g.releaseData(release)).toBeGreaterThan(0);
    expect(calls.length).toBe(1);
  });
});
