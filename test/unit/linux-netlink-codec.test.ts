import { describe, expect, test } from "bun:test";
import {
  NLMSG_ERROR,
  NlWriter,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  buildAddressRequest,
  buildLinkByNameRequest,
  buildRouteRequest,
  buildSetLinkRequest,
  parseAck,
  parseAddress,
  parseAttributes,
  parseLink,
  parseMessages,
  parseRoute,
} from "../../src/linux/netlink-codec.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const viewOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// Known answers, laid out by hand from linux/netlink.h and linux/rtnetlink.h (little-endian host).
const ADD_ROUTE =
  "34000000 1800 0505 01000000 00000000" + // nlmsghdr: len 52, RTM_NEWROUTE, REQUEST|ACK|REPLACE|CREATE, seq 1
  "02 18 00 00 fe 04 fd 01 00000000" + //       rtmsg: AF_INET, /24, main, static, scope link, unicast
  "0800 0f00 fe000000" + //                      RTA_TABLE 254
  "0800 0100 0a2a0100" + //                      RTA_DST 10.42.1.0
  "0800 0400 05000000"; //                       RTA_OIF 5
const ADD_ADDRESS =
  "28000000 1400 0506 02000000 00000000" + // len 40, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 2
  "02 18 00 00 07000000" + //                ifaddrmsg: AF_INET, /24, index 7
  "0800 0200 0a2a0101" + //                  IFA_LOCAL 10.42.1.1
  "0800 0100 0a2a0101"; //                   IFA_ADDRESS
// NLMSG_ERROR -EEXIST, capped, with an extended-ack message "File exists".
const ACK_EEXIST =
  "34000000 0200 0003 01000000 aa000000" +
  "efffffff" + //                               error -17
  "34000000 1800 0505 01000000 00000000" + //   the request's header (capped)
  "1000 0100 46696c65 20657869 73747300"; //   NLMSGERR_ATTR_MSG "File exists\0"
// RTM_NEWROUTE as the kernel dumps it: 10.42.2.0/24 dev 3 src 10.42.1.1, table main.
const ROUTE_REPLY =
  "3c000000 1800 0200 09000000 aa000000" +
  "02 18 00 00 fe 04 fd 01 00000000" +
  "0800 0f00 fe000000" +
  "0800 0100 0a2a0200" +
  "0800 0700 0a2a0101" +
  "0800 0400 03000000";

describe("netlink requests (known answers)", () => {
  test("add route 10.42.1.0/24 dev #5", () => {
    const w = new NlWriter();
    const msg = buildRouteRequest(w, RTM_NEWROUTE, 1, { dst: 0x0a2a0100, prefixLen: 24, oif: 5 });
    expect(hex(msg)).toBe(ADD_ROUTE.replace(/\s+/g, ""));
  });

  test("a route MTU is a nested RTA_METRICS { RTAX_MTU } after the other attributes", () => {
    const plain = buildRouteRequest(new NlWriter(), RTM_NEWROUTE, 1, { dst: 0x0a2a0100, prefixLen: 24, oif: 5 });
    const msg = buildRouteRequest(new NlWriter(), RTM_NEWROUTE, 1, { dst: 0x0a2a0100, prefixLen: 24, oif: 5, mtu: 1360 });
    expect(msg.length).toBe(plain.length + 12);
    expect(new DataView(msg.buffer, msg.byteOffset).getUint32(0, true)).toBe(msg.length);
    // rta_len 12, RTA_METRICS (8) | rta_len 8, RTAX_MTU (2), 1360 = 0x550
    expect(hex(msg.subarray(plain.length))).toBe("0c000800" + "08000200" + "50050000");
    // A delete never carries metrics.
    expect(buildRouteRequest(new NlWriter(), RTM_DELROUTE, 1, { dst: 0x0a2a0100, prefixLen: 24, oif: 5, mtu: 1360 }).length).toBe(52);
  });

  test("delete route uses scope nowhere and no create/replace flags", () => {
    const msg = buildRouteRequest(new NlWriter(), RTM_DELROUTE, 3, { dst: 0x0a2a0100, prefixLen: 24, oif: 5 });
    expect(hex(msg.subarray(0, 8))).toBe("3400000019000500");
    expect(hex(msg.subarray(16, 24))).toBe("02180000fe00ff00");
  });

  test("default route carries no RTA_DST; prefsrc is appended", () => {
    const msg = buildRouteRequest(new NlWriter(), RTM_NEWROUTE, 1, { dst: 0, prefixLen: 0, oif: 2, prefSrc: 0x0a2a0101 });
    expect(msg.length).toBe(16 + 12 + 8 + 8 + 8);
    expect(hex(msg.subarray(44))).toBe("080007000a2a0101");
  });

  test("add address 10.42.1.1/24 dev #7", () => {
    const msg = buildAddressRequest(new NlWriter(), RTM_NEWADDR, 2, 7, 0x0a2a0101, 24);
    expect(hex(msg)).toBe(ADD_ADDRESS.replace(/\s+/g, ""));
  });

  test("set link up, mtu 1420, txqueuelen 500", () => {
    const msg = buildSetLinkRequest(new NlWriter(), 4, 9, { up: true, mtu: 1420, txqueuelen: 500 });
    expect(hex(msg)).toBe(
      "30000000 1000 0500 04000000 00000000 00 00 0000 09000000 01000000 01000000 0800 0400 8c050000 0800 0d00 f4010000".replace(/\s+/g, ""),
    );
    expect(viewOf(msg).getUint16(4, true)).toBe(RTM_NEWLINK);
  });

  test("get and delete link by name (NUL-terminated, padded)", () => {
    const get = buildLinkByNameRequest(new NlWriter(), RTM_GETLINK, 5, "vine0");
    expect(hex(get)).toBe("2c000000120001000500000000000000" + "00".repeat(16) + "0a000300" + "76696e6530000000");
    const del = buildLinkByNameRequest(new NlWriter(), RTM_DELLINK, 6, "vine0");
    expect(viewOf(del).getUint16(6, true)).toBe(5);
  });
});

describe("netlink replies (known answers)", () => {
  test("ack with errno and extended-ack text", () => {
    const b = bytes(ACK_EEXIST);
    const msgs = parseMessages(viewOf(b), b.length)!;
    expect(msgs.length).toBe(1);
    expect(msgs[0]).toMatchObject({ type: NLMSG_ERROR, seq: 1, pid: 0xaa, length: 36 });
    expect(parseAck(viewOf(b), msgs[0]!)).toEqual({ errno: 17, message: "File exists" });
  });

  test("plain ack", () => {
    const b = bytes("24000000 0200 0001 07000000 00000000 00000000 24000000 1000 0500 07000000 00000000");
    const [msg] = parseMessages(viewOf(b), b.length)!;
    expect(parseAck(viewOf(b), msg!)).toEqual({ errno: 0, message: null });
  });

  test("route from a dump", () => {
    const b = bytes(ROUTE_REPLY);
    const [msg] = parseMessages(viewOf(b), b.length)!;
    expect(parseRoute(viewOf(b), msg!)).toEqual({
      dst: 0x0a2a0200,
      prefixLen: 24,
      table: 254,
      protocol: 4,
      scope: 253,
      type: 1,
      oif: 3,
      gateway: null,
      prefSrc: 0x0a2a0101,
    });
  });

  test("two messages in one datagram; link and address replies", () => {
    const link = "30000000 1000 0200 05000000 00000000 00 00 0100 03000000 43100100 00000000 0800 0300 76743000 0800 0400 8c050000";
    const addr = "28000000 1400 0200 05000000 00000000 02 18 80 00 03000000 0800 0100 0a2a0101 0800 0200 0a2a0101";
    const b = bytes(link + addr);
    const msgs = parseMessages(viewOf(b), b.length)!;
    expect(msgs.map((m) => m.type)).toEqual([16, 20]);
    expect(parseLink(viewOf(b), msgs[0]!)).toEqual({ index: 3, name: "vt0", flags: 0x11043, up: true, mtu: 1420 });
    expect(parseAddress(viewOf(b), msgs[1]!)).toEqual({ index: 3, prefixLen: 24, address: 0x0a2a0101 });
  });

  test("malformed framing is null", () => {
    const good = bytes(ROUTE_REPLY);
    const v = viewOf(good);
    expect(parseMessages(v, good.length - 1)).toBeNull(); // length runs past the end
    const short = good.slice();
    new DataView(short.buffer).setUint32(0, 8, true); // shorter than a header
    expect(parseMessages(viewOf(short), short.length)).toBeNull();
    const attrs = bytes("0800 0100 0a2a0200 2000 0200 00");
    expect(parseAttributes(viewOf(attrs), 0, attrs.length)).toBeNull();
    expect(parseAttributes(viewOf(attrs), 0, 8)!.get(1)).toEqual({ offset: 4, length: 4 });
  });
});

describe("decoders never throw", () => {
  const decodeAll = (b: Uint8Array) => {
    const v = viewOf(b);
    const msgs = parseMessages(v, b.length);
    parseAttributes(v, 0, b.length);
    parseAttributes(v, 3, Math.max(0, b.length - 3));
    if (msgs === null) return;
    for (const m of msgs) {
      parseAck(v, m);
      parseRoute(v, m);
      parseLink(v, m);
      parseAddress(v, m);
      // Decoders also see messages whose type was forged to theirs.
      for (const type of [2, 16, 20, 24]) {
        const forged = { ...m, type };
        parseAck(v, forged);
        parseRoute(v, forged);
        parseLink(v, forged);
        parseAddress(v, forged);
      }
    }
  };

  test("random bytes", () => {
    for (let i = 0; i < 5000; i++) {
      const b = crypto.getRandomValues(new Uint8Array(i % 200));
      // Give about half of them a plausible first length so parsing goes deeper.
      if (b.length >= 4 && i % 2 === 0) new DataView(b.buffer).setUint32(0, Math.min(b.length, 16 + (i % 64)), true);
      expect(() => decodeAll(b)).not.toThrow();
    }
  });

  test("mutations of valid replies", () => {
    const seeds = [ACK_EEXIST, ROUTE_REPLY, ADD_ROUTE, ADD_ADDRESS].map(bytes);
    for (let i = 0; i < 5000; i++) {
      const b = seeds[i % seeds.length]!.slice();
      const flips = 1 + (i % 4);
      for (let f = 0; f < flips; f++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
      const cut = i % 7 === 0 ? Math.floor(Math.random() * b.length) : b.length;
      expect(() => decodeAll(b.subarray(0, cut))).not.toThrow();
    }
  });
});
