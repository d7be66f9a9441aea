import { describe, expect, test } from "bun:test";
import {
  SOCKADDR_IN_SIZE,
  formatIpv4,
  parseIpv4,
  readSockaddr,
  sockaddrIp,
  sockaddrPort,
  writeSockaddr,
} from "../../src/linux/sockaddr.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("sockaddr_in", () => {
  test("known answer: 10.42.0.1:4100", () => {
    const buf = new Uint8Array(SOCKADDR_IN_SIZE).fill(0xee);
    const view = new DataView(buf.buffer);
    writeSockaddr(view, 0, 0x0a2a0001, 4100);
    // family AF_INET (host order), port 0x1004 big endian, address big endian, 8 zero bytes.
    expect(hex(buf)).toBe("020010040a2a00010000000000000000");
    expect(readSockaddr(view, 0)).toEqual({ ip: 0x0a2a0001, port: 4100 });
    expect(sockaddrIp(view, 0)).toBe(0x0a2a0001);
    expect(sockaddrPort(view, 0)).toBe(4100);
  });

  test("round trip at an offset, extremes", () => {
    const view = new DataView(new ArrayBuffer(64));
    for (const [ip, port] of [[0, 0], [0xffffffff, 65535], [0xc6120002, 51820], [0x7f000001, 1]] as const) {
      writeSockaddr(view, 24, ip, port);
      expect(readSockaddr(view, 24)).toEqual({ ip, port });
    }
  });

  test("wrong family or out of bounds is null", () => {
    const view = new DataView(new ArrayBuffer(16));
    view.setUint16(0, 10, true); // AF_INET6
    expect(readSockaddr(view, 0)).toBeNull();
    expect(readSockaddr(view, 12)).toBeNull();
    expect(readSockaddr(view, -1)).toBeNull();
  });

  test("random bytes never throw", () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(1 + (i % 40)));
      const view = new DataView(bytes.buffer);
      const off = i % 20;
      const r = readSockaddr(view, off);
      if (r !== null) {
        expect(r.ip).toBeGreaterThanOrEqual(0);
        expect(r.port).toBeLessThan(65536);
      }
    }
  });
});

describe("IPv4 text", () => {
  test("parse and format", () => {
    expect(parseIpv4("10.42.1.7")).toBe(0x0a2a0107);
    expect(parseIpv4("255.255.255.255")).toBe(0xffffffff);
    expect(parseIpv4("0.0.0.0")).toBe(0);
    expect(formatIpv4(0xc6120002)).toBe("198.18.0.2");
    expect(formatIpv4(0xffffffff)).toBe("255.255.255.255");
  });

  test("malformed text is null", () => {
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.x", "1..2.3", " 1.2.3.4", "1.2.3.-1", "1234.1.1.1"]) {
      expect(parseIpv4(bad)).toBeNull();
    }
  });

  test("format/parse round trip on random addresses", () => {
    const words = crypto.getRandomValues(new Uint32Array(500));
    for (const w of words) expect(parseIpv4(formatIpv4(w))).toBe(w);
  });
});
