// Message layouts: offsets, encoders and decoders against hand-written bytes, and messageType's
// length/type/reserved checks.

import { describe, expect, test } from "bun:test";
import {
  decodeCookieReply,
  decodeInitiation,
  decodeResponse,
  encodeCookieReply,
  encodeInitiation,
  encodeResponse,
  messageType,
  senderIndex,
  transportCounter,
  transportReceiver,
  writeTransportHeader,
} from "../../src/wg/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

describe("messageType", () => {
  const make = (type: number, len: number) => {
    const b = new Uint8Array(len);
    b[0] = type;
    return b;
  };
  test("accepts exactly the sizes of each type", () => {
    expect(messageType(make(1, 148), 148)).toBe(1);
    expect(messageType(make(2, 92), 92)).toBe(2);
    expect(messageType(make(3, 64), 64)).toBe(3);
    expect(messageType(make(4, 32), 32)).toBe(4);
    expect(messageType(make(4, 1500), 1500)).toBe(4);
  });
  test("refuses wrong lengths, unknown types and non-zero reserved bytes", () => {
    expect(messageType(make(1, 149), 149)).toBe(0);
    expect(messageType(make(2, 91), 91)).toBe(0);
    expect(messageType(make(3, 65), 65)).toBe(0);
    expect(messageType(make(4, 31), 31)).toBe(0);
    expect(messageType(make(5, 148), 148)).toBe(0);
    expect(messageType(make(0, 148), 148)).toBe(0);
    for (const i of [2, 3]) {
      const b = make(1, 148);
      b[i] = 1;
      expect(messageType(b, 148)).toBe(0);
    }
    // Byte 1 of messages 1 and 2 carries a transport suite (0 or 1); of 3 and 4 it must be zero.
    for (const [type, len] of [[1, 148], [2, 92]] as const) {
      const b = make(type, len);
      b[1] = 1;
      expect(messageType(b, len)).toBe(type);
      for (const v of [2, 3, 0x80, 0xff]) {
        b[1] = v;
        expect(messageType(b, len)).toBe(0);
      }
    }
    for (const [type, len] of [[3, 64], [4, 32]] as const) {
      const b = make(type, len);
      b[1] = 1;
      expect(messageType(b, len)).toBe(0);
    }
    expect(messageType(make(1, 3), 3)).toBe(0);
    // A length beyond the buffer is refused, not read past.
    expect(messageType(make(4, 40), 41)).toBe(0);
  });
  test("len selects a prefix of a larger receive buffer", () => {
    const b = make(2, 2048);
    expect(messageType(b, 92)).toBe(2);
  });
});

describe("handshake messages", () => {
  test("initiation layout", () => {
    const m = encodeInitiation({ sender: 0x04030201, ephemeral: fill(32, 0xe0), encryptedStatic: fill(48, 0x5a), encryptedTimestamp: fill(28, 0x7b) });
    expect(m.length).toBe(148);
    expect(hex(m.subarray(0, 8))).toBe("0100000001020304");
    expect(hex(m.subarray(8, 40))).toBe("e0".repeat(32));
    expect(hex(m.subarray(40, 88))).toBe("5a".repeat(48));
    expect(hex(m.subarray(88, 116))).toBe("7b".repeat(28));
    expect(hex(m.subarray(116))).toBe("00".repeat(32));
    m.set(fill(16, 0x11), 116);
    m.set(fill(16, 0x22), 132);
    const d = decodeInitiation(m)!;
    expect(d.sender).toBe(0x04030201);
    expect(hex(d.ephemeral)).toBe("e0".repeat(32));
    expect(hex(d.encryptedStatic)).toBe("5a".repeat(48));
    expect(hex(d.encryptedTimestamp)).toBe("7b".repeat(28));
    expect(hex(d.mac1)).toBe("11".repeat(16));
    expect(hex(d.mac2)).toBe("22".repeat(16));
    expect(senderIndex(m)).toBe(0x04030201);
  });

  test("response layout", () => {
    const m = encodeResponse({ sender: 0xaabbccdd, receiver: 0x01020304, ephemeral: fill(32, 0xe1), encryptedEmpty: fill(16, 0x33) });
    expect(m.length).toBe(92);
    expect(hex(m.subarray(0, 12))).toBe("02000000ddccbbaa04030201");
    expect(hex(m.subarray(12, 44))).toBe("e1".repeat(32));
    expect(hex(m.subarray(44, 60))).toBe("33".repeat(16));
    const d = decodeResponse(m)!;
    expect(d).toMatchObject({ sender: 0xaabbccdd, receiver: 0x01020304 });
    expect(hex(d.encryptedEmpty)).toBe("33".repeat(16));
    expect(d.mac1.length).toBe(16);
    expect(d.mac2.length).toBe(16);
  });

  test("cookie reply layout", () => {
    const m = encodeCookieReply({ receiver: 7, nonce: fill(24, 0x99), encryptedCookie: fill(32, 0x44) });
    expect(hex(m)).toBe("0300000007000000" + "99".repeat(24) + "44".repeat(32));
    const d = decodeCookieReply(m)!;
    expect(d.receiver).toBe(7);
    expect(hex(d.nonce)).toBe("99".repeat(24));
    expect(hex(d.encryptedCookie)).toBe("44".repeat(32));
  });

  test("decoders refuse the other types", () => {
    const init = encodeInitiation({ sender: 1, ephemeral: fill(32, 1), encryptedStatic: fill(48, 1), encryptedTimestamp: fill(28, 1) });
    expect(decodeResponse(init)).toBeNull();
    expect(decodeCookieReply(init)).toBeNull();
    expect(decodeInitiation(init.subarray(0, 147))).toBeNull();
  });
});

describe("transport header", () => {
  test("layout: type 4, zero reserved, receiver and counter little endian", () => {
    const b = new Uint8Array(40).fill(0xff);
    writeTransportHeader(b, 4, 0x0a0b0c0d, 0x0102030405);
    expect(hex(b.subarray(4, 20))).toBe("040000000d0c0b0a0504030201000000");
    expect(transportReceiver(b, 4, 36)).toBe(0x0a0b0c0d);
    expect(transportCounter(b, 4)).toBe(0x0102030405);
  });
  test("counters up to 2^53 - 1 are exact; beyond that they read as Infinity", () => {
    const b = new Uint8Array(32);
    writeTransportHeader(b, 0, 1, 2 ** 53 - 1);
    expect(transportCounter(b, 0)).toBe(2 ** 53 - 1);
    b.set([0, 0, 0, 0, 0, 0, 0x20, 0], 8);
    expect(transportCounter(b, 0)).toBe(Infinity);
    b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 8);
    expect(transportCounter(b, 0)).toBe(Infinity);
  });
  test("transportReceiver refuses short, foreign or out-of-range messages", () => {
    const b = new Uint8Array(64);
    writeTransportHeader(b, 0, 9, 0);
    expect(transportReceiver(b, 0, 31)).toBe(-1);
    expect(transportReceiver(b, 40, 32)).toBe(-1);
    b[2] = 1;
    expect(transportReceiver(b, 0, 32)).toBe(-1);
  });
});
