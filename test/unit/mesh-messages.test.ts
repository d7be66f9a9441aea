// Control message codecs: known-answer bytes for every message, exact rejections, and a bounded fuzz
// (a million random and mutated inputs) that checks decoders never throw and that everything they
// accept re-encodes to the same bytes (one encoding per message).

import { describe, expect, test } from "bun:test";
import {
  CLAIM_BODY_LEN,
  CLAIM_LEN,
  CTRL,
  controlTypeName,
  decodeControl,
  encodeClaim,
  encodeClaimInto,
  encodeEndpoints,
  encodeEndpointsInto,
  encodeLookup,
  encodeProbe,
  encodeProbeInto,
  encodeProbeReply,
  encodeRegister,
  encodeRegisterInto,
  encodeRelay,
  encodeRelayRefused,
  isControl,
  MAX_ENDPOINTS,
  type ControlMessage,
} from "../../src/mesh/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const KEY = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
const KEY_HEX = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
/** A minimal WireGuard transport message (type 4, empty payload + tag): 32 bytes. */
const WG_TRANSPORT = unhex("04000000" + "11223344" + "0000000000000001" + "ff".repeat(16));

/** Deterministic xorshift32 so a fuzz failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Re-encode a decoded message with the public encoders. */
function reencode(m: ControlMessage): Uint8Array {
  switch (m.type) {
    case "claim":
      return encodeClaim(m.bytes);
    case "register":
      return encodeRegister(m.endpoints);
    case "lookup":
      return encodeLookup(m.requestId, m.target);
    case "endpoints":
      return encodeEndpoints(m.requestId, m.subject, m.punchNow, m.endpoints);
    case "probe":
      return encodeProbe(m.probeId, m.sentAt);
    case "probe_reply":
      return encodeProbeReply(m.probeId, m.sentAt);
    case "relay":
      return encodeRelay(CTRL.RELAY, m.peer, m.inner);
    case "relay_deliver":
      return encodeRelay(CTRL.RELAY_DELIVER, m.peer, m.inner);
    case "relay_refused":
      return encodeRelayRefused(m.peer, m.reason);
  }
}

function validClaimMessage(): Uint8Array {
  const body = new Uint8Array(CLAIM_BODY_LEN);
  body[0] = 1;
  body.set(KEY, 1);
  body.set([10, 42, 1, 0], 65);
  body[69] = 24;
  body.set([0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0x7b], 70);
  return encodeClaim(body);
}

describe("type byte", () => {
  test("control range is 0x01..0x3f; IP packets and keepalives are not control", () => {
    expect(isControl(0x00)).toBe(false);
    expect(isControl(0x01)).toBe(true);
    expect(isControl(0x3f)).toBe(true);
    expect(isControl(0x45)).toBe(false); // IPv4
    expect(isControl(0x60)).toBe(false); // IPv6
  });
  test("names for logs and counters", () => {
    expect(controlTypeName(CTRL.PROBE_REPLY)).toBe("probe_reply");
    expect(controlTypeName(CTRL.RELAY_DELIVER)).toBe("relay_deliver");
    expect(controlTypeName(0x2a)).toBe("unknown_0x2a");
  });
});

describe("known answers", () => {
  const cases: [string, Uint8Array, string, ControlMessage][] = [
    [
      "REGISTER",
      encodeRegister([
        { ip: 0xc6120001, port: 4100 },
        { ip: 0xc0a80102, port: 51820 },
      ]),
      "02" + "02" + "c6120001" + "1004" + "c0a80102" + "ca6c",
      { type: "register", endpoints: [{ ip: 0xc6120001, port: 4100 }, { ip: 0xc0a80102, port: 51820 }] },
    ],
    ["LOOKUP", encodeLookup(0xdeadbeef, KEY), "03" + "deadbeef" + KEY_HEX, { type: "lookup", requestId: 0xdeadbeef, target: KEY }],
    [
      "ENDPOINTS",
      encodeEndpoints(7, KEY, true, [{ ip: 0xc6130005, port: 40000 }]),
      "04" + "00000007" + KEY_HEX + "01" + "01" + "c6130005" + "9c40",
      { type: "endpoints", requestId: 7, subject: KEY, punchNow: true, endpoints: [{ ip: 0xc6130005, port: 40000 }] },
    ],
    [
      "ENDPOINTS unknown",
      encodeEndpoints(8, KEY, false, []),
      "04" + "00000008" + KEY_HEX + "00" + "00",
      { type: "endpoints", requestId: 8, subject: KEY, punchNow: false, endpoints: [] },
    ],
    ["PROBE", encodeProbe(0x01020304, 1_700_000_000_123), "05" + "01020304" + "0000018bcfe5687b", { type: "probe", probeId: 0x01020304, sentAt: 1_700_000_000_123 }],
    [
      "PROBE_REPLY",
      encodeProbeReply(0xfffffffe, 2 ** 53 - 1),
      "06" + "fffffffe" + "001fffffffffffff",
      { type: "probe_reply", probeId: 0xfffffffe, sentAt: 2 ** 53 - 1 },
    ],
    ["RELAY", encodeRelay(CTRL.RELAY, KEY, WG_TRANSPORT), "07" + KEY_HEX + hex(WG_TRANSPORT), { type: "relay", peer: KEY, inner: WG_TRANSPORT }],
    [
      "RELAY_DELIVER",
      encodeRelay(CTRL.RELAY_DELIVER, KEY, WG_TRANSPORT),
      "09" + KEY_HEX + hex(WG_TRANSPORT),
      { type: "relay_deliver", peer: KEY, inner: WG_TRANSPORT },
    ],
    ["RELAY_REFUSED", encodeRelayRefused(KEY, 2), "08" + KEY_HEX + "02", { type: "relay_refused", peer: KEY, reason: 2 }],
  ];
  for (const [name, bytes, want, decoded] of cases) {
    test(`${name}: pinned bytes and decode`, () => {
      expect(hex(bytes)).toBe(want);
      expect(decodeControl(bytes)).toEqual(decoded);
    });
  }

  test("CLAIM: type byte + 142-byte body, fields parsed", () => {
    const msg = validClaimMessage();
    expect(msg.length).toBe(CLAIM_LEN);
    expect(msg[0]).toBe(0x01);
    const d = decodeControl(msg);
    expect(d?.type).toBe("claim");
    if (d?.type !== "claim") return;
    expect(d.bytes).toEqual(msg.subarray(1));
    expect(d.publicKey).toEqual(KEY);
    expect(d.prefix).toEqual({ addr: 0x0a2a0100, len: 24 });
    expect(d.issuedAt).toBe(1_700_000_000_123);
  });

  test("Into encoders write at an offset inside a bigger buffer and return the length", () => {
    const buf = new Uint8Array(100).fill(0xee);
    expect(encodeProbeInto(buf, 16, 0x01020304, 1_700_000_000_123)).toBe(13);
    expect(hex(buf.subarray(16, 29))).toBe("05010203040000018bcfe5687b");
    expect(buf[15]).toBe(0xee);
    expect(buf[29]).toBe(0xee);
    expect(decodeControl(buf, 16, 13)).toEqual({ type: "probe", probeId: 0x01020304, sentAt: 1_700_000_000_123 });
    const n = encodeEndpointsInto(buf, 3, 1, KEY, false, [{ ip: 1, port: 2 }]);
    expect(n).toBe(45);
    expect(decodeControl(buf, 3, n)?.type).toBe("endpoints");
    expect(() => encodeProbeInto(buf, 90, 1, 1)).toThrow(RangeError);
    expect(() => encodeClaimInto(buf, 0, new Uint8Array(10))).toThrow(RangeError);
  });

  test("endpoint lists: invalid entries skipped, at most 8 kept, signed IPs normalised", () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ip: 0xc6120000 + i + 1, port: 4100 + i }));
    const reg = decodeControl(encodeRegister([{ ip: 0, port: 1 }, { ip: 5, port: 0 }, ...many]));
    expect(reg).toEqual({ type: "register", endpoints: many.slice(0, MAX_ENDPOINTS) });
    const signed = decodeControl(encodeRegister([{ ip: 0xcb007101 | 0, port: 9 }]));
    expect(signed).toEqual({ type: "register", endpoints: [{ ip: 0xcb007101, port: 9 }] });
    const buf = new Uint8Array(64);
    expect(encodeRegisterInto(buf, 0, [])).toBe(2);
  });
});

describe("rejections", () => {
  const bad: [string, string][] = [
    ["empty", ""],
    ["type 0 (keepalive is not a message)", "00"],
    ["unknown type", "3f00"],
    ["IPv4 first byte", "450000"],
    ["REGISTER count 9", "0209" + "c61200011004".repeat(9)],
    ["REGISTER count/length mismatch", "0202c61200011004"],
    ["REGISTER trailing byte", "0201c6120001100400"],
    ["REGISTER port 0", "0201c61200010000"],
    ["REGISTER ip 0.0.0.0", "0201000000001004"],
    ["LOOKUP short", "03deadbeef" + KEY_HEX.slice(2)],
    ["LOOKUP long", "03deadbeef" + KEY_HEX + "00"],
    ["ENDPOINTS reserved flag bit", "0400000007" + KEY_HEX + "02" + "00"],
    ["ENDPOINTS count too big", "0400000007" + KEY_HEX + "00" + "09" + "c61300059c40".repeat(9)],
    ["ENDPOINTS truncated", "0400000007" + KEY_HEX + "00" + "01" + "c6130005"],
    ["PROBE short", "050102030400000000000000"],
    ["PROBE sentAt beyond 2^53", "0501020304" + "0020000000000000"],
    ["RELAY inner below 32 bytes", "07" + KEY_HEX + "04000000" + "00".repeat(27)],
    ["RELAY inner type 5", "07" + KEY_HEX + "05000000" + "00".repeat(28)],
    ["RELAY inner reserved byte set", "07" + KEY_HEX + "04000100" + "00".repeat(28)],
    ["RELAY_REFUSED reason 0", "08" + KEY_HEX + "00"],
    ["RELAY_REFUSED reason 5", "08" + KEY_HEX + "05"],
  ];
  for (const [name, h] of bad) test(name, () => expect(decodeControl(unhex(h))).toBeNull());

  test("CLAIM: wrong length, wrong version, non-canonical prefix, prefix length > 32", () => {
    const ok = validClaimMessage();
    expect(decodeControl(ok.subarray(0, CLAIM_LEN - 1))).toBeNull();
    expect(decodeControl(Uint8Array.from([...ok, 0]))).toBeNull();
    const v2 = ok.slice();
    v2[1] = 2;
    expect(decodeControl(v2)).toBeNull();
    const hostBits = ok.slice();
    hostBits[1 + 68] = 1; // 10.42.1.1/24
    expect(decodeControl(hostBits)).toBeNull();
    const len33 = ok.slice();
    len33[1 + 69] = 33;
    expect(decodeControl(len33)).toBeNull();
  });

  test("offsets outside the buffer are null, not a throw", () => {
    const p = encodeProbe(1, 1);
    expect(decodeControl(p, 5, 13)).toBeNull();
    expect(decodeControl(p, -1, 13)).toBeNull();
    expect(decodeControl(p, 0, 0)).toBeNull();
    expect(decodeControl(p, 0.5, 12)).toBeNull();
  });
});

describe("fuzz", () => {
  test("a million random and mutated inputs: no throw, and every accepted input re-encodes to itself", () => {
    const next = rng(0x5eed1234);
    const seeds: Uint8Array[] = [
      validClaimMessage(),
      encodeRegister([{ ip: 0xc6120001, port: 4100 }]),
      encodeRegister([]),
      encodeLookup(1, KEY),
      encodeEndpoints(7, KEY, true, [{ ip: 0xc6130005, port: 40000 }, { ip: 0x0a000001, port: 1 }]),
      encodeProbe(9, 1_700_000_000_000),
      encodeProbeReply(9, 1),
      encodeRelay(CTRL.RELAY, KEY, WG_TRANSPORT),
      encodeRelay(CTRL.RELAY_DELIVER, KEY, new Uint8Array(148).fill(0).map((_, i) => (i < 4 ? [1, 0, 0, 0][i]! : i))),
      encodeRelayRefused(KEY, 4),
    ];
    const scratch = new Uint8Array(512);
    let accepted = 0;
    const start = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      let input: Uint8Array;
      const r = next();
      if ((r & 3) === 0) {
        // Random bytes, usually with a plausible type byte.
        const len = next() % 200;
        input = scratch.subarray(0, len);
        for (let j = 0; j < len; j++) input[j] = next() & 0xff;
        if (len > 0 && (r & 4) !== 0) input[0] = 1 + (next() % 9);
      } else {
        // A valid message, mutated: bit flips, truncation or extension.
        const seed = seeds[next() % seeds.length]!;
        const kind = next() % 3;
        const len = kind === 1 ? next() % seed.length : kind === 2 ? seed.length + 1 + (next() % 8) : seed.length;
        input = scratch.subarray(0, len);
        input.set(seed.subarray(0, Math.min(len, seed.length)));
        for (let j = seed.length; j < len; j++) input[j] = next() & 0xff;
        const flips = 1 + (next() % 3);
        for (let f = 0; f < flips && len > 0; f++) input[next() % len]! ^= 1 << (next() & 7);
      }
      const m = decodeControl(input);
      if (m !== null) {
        accepted++;
        const again = reencode(m);
        if (hex(again) !== hex(input)) throw new Error(`not canonical: ${hex(input)} -> ${hex(again)}`);
      }
    }
    const ms = performance.now() - start;
    expect(accepted).toBeGreaterThan(10_000); // the mutations do reach the accepting paths
    expect(ms).toBeLessThan(20_000);
  });
});
