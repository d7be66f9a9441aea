// Overlay prefixes and the longest-prefix-match route table: strict parsing and canonical formatting,
// containment and overlap, and RouteTable against a naive linear LPM on random tables.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { formatIPv4, maskOf, parseIPv4, parsePrefix, prefixContains, prefixesOverlap, prefixOf } from "../../src/overlay/prefix.ts";
import { RouteTable, type RouteEntry } from "../../src/overlay/routes.ts";

const ip = (s: string) => {
  const v = parseIPv4(s);
  if (v === null) throw new Error(`bad ip ${s}`);
  return v;
};
const pfx = (s: string) => {
  const p = parsePrefix(s);
  if (typeof p === "string") throw new Error(p);
  return p;
};

describe("parseIPv4 / formatIPv4", () => {
  test.each([
    ["0.0.0.0", 0],
    ["255.255.255.255", 0xffffffff],
    ["10.42.0.1", 0x0a2a0001],
    ["128.0.0.0", 0x80000000],
    ["1.2.3.4", 0x01020304],
    ["192.168.100.200", 0xc0a864c8],
  ])("%s = %d (unsigned) and formats back", (s, n) => {
    expect(parseIPv4(s)).toBe(n);
    expect(formatIPv4(n)).toBe(s);
  });

  test.each([
    "010.0.0.1", // leading zero (octal ambiguity)
    "10.00.0.1",
    "10.0.0.01",
    "256.0.0.1",
    "10.0.0.256",
    "999.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "1..2.3",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "1.2.3.-4",
    "+1.2.3.4",
    "0x0a.0.0.1",
    "1.2.3.4/24",
    "",
    "a.b.c.d",
    "１.2.3.4", // full-width digit
    "1000.1.1.1",
  ])("rejects %p", (s) => {
    expect(parseIPv4(s)).toBeNull();
  });

  test("random addresses round trip", () => {
    for (let i = 0; i < 2000; i++) {
      const n = randomBytes(4).readUInt32BE();
      expect(parseIPv4(formatIPv4(n))).toBe(n);
    }
  });
});

describe("maskOf", () => {
  test("edges", () => {
    expect(maskOf(0)).toBe(0);
    expect(maskOf(1)).toBe(0x80000000);
    expect(maskOf(8)).toBe(0xff000000);
    expect(maskOf(24)).toBe(0xffffff00);
    expect(maskOf(31)).toBe(0xfffffffe);
    expect(maskOf(32)).toBe(0xffffffff);
    for (let l = 0; l <= 32; l++) {
      expect(maskOf(l)).toBeGreaterThanOrEqual(0); // unsigned
      expect(maskOf(l).toString(2).replace(/^0+/, "").split("1").length - 1).toBe(l);
    }
  });
});

describe("parsePrefix", () => {
  test.each([
    ["0.0.0.0/0", 0, 0],
    ["10.0.0.0/8", 0x0a000000, 8],
    ["10.42.1.0/24", 0x0a2a0100, 24],
    ["10.42.1.128/25", 0x0a2a0180, 25],
    ["10.42.1.7/32", 0x0a2a0107, 32],
    ["255.255.255.255/32", 0xffffffff, 32],
    ["128.0.0.0/1", 0x80000000, 1],
  ])("%s", (s, addr, len) => {
    const p = pfx(s);
    expect(p).toEqual({ addr, len, text: s });
  });

  test("host bits set name the network to use", () => {
    expect(parsePrefix("10.42.1.9/24")).toBe('"10.42.1.9/24" has host bits set (did you mean 10.42.1.0/24?)');
    expect(parsePrefix("1.0.0.0/0")).toBe('"1.0.0.0/0" has host bits set (did you mean 0.0.0.0/0?)');
    expect(parsePrefix("10.42.1.129/31")).toBe('"10.42.1.129/31" has host bits set (did you mean 10.42.1.128/31?)');
    expect(parsePrefix("255.255.255.255/31")).toContain("did you mean 255.255.255.254/31?");
  });

  test("malformed input is a message, never a throw", () => {
    expect(parsePrefix("10.42.1.0/33")).toBe("prefix length 33 is over 32");
    expect(parsePrefix("10.42.1.0/99")).toBe("prefix length 99 is over 32");
    expect(parsePrefix("10.42.1.0")).toBe('"10.42.1.0" is not a prefix (expected a.b.c.d/len)');
    expect(parsePrefix("10.42.1.0/")).toContain("is not a prefix");
    expect(parsePrefix("10.42.1.0/100")).toContain("is not a prefix");
    expect(parsePrefix("10.42.1.0/-1")).toContain("is not a prefix");
    expect(parsePrefix("10.42.1.0/24/24")).toContain("is not a prefix");
    expect(parsePrefix("/24")).toContain("is not a prefix");
    expect(parsePrefix("10.42.01.0/24")).toBe('"10.42.01.0" is not an IPv4 address');
    expect(parsePrefix("10.42.256.0/24")).toBe('"10.42.256.0" is not an IPv4 address');
    for (let i = 0; i < 2000; i++) {
      const s = Buffer.from(randomBytes(1 + (i % 24))).toString("latin1");
      expect(() => parsePrefix(s)).not.toThrow();
    }
  });

  test("a zero-padded length is read as the number and canonicalised", () => {
    expect(pfx("10.0.0.0/08").text).toBe("10.0.0.0/8");
  });

  test("prefixOf clears host bits", () => {
    expect(prefixOf(ip("10.42.1.77"), 24)).toEqual(pfx("10.42.1.0/24"));
    expect(prefixOf(ip("10.42.1.77"), 32)).toEqual(pfx("10.42.1.77/32"));
    expect(prefixOf(ip("203.0.113.9"), 0)).toEqual(pfx("0.0.0.0/0"));
    expect(prefixOf(ip("255.255.255.255"), 1)).toEqual(pfx("128.0.0.0/1"));
  });
});

describe("containment and overlap", () => {
  test("prefixContains", () => {
    const p = pfx("10.42.1.0/24");
    expect(prefixContains(p, ip("10.42.1.0"))).toBe(true);
    expect(prefixContains(p, ip("10.42.1.255"))).toBe(true);
    expect(prefixContains(p, ip("10.42.2.0"))).toBe(false);
    expect(prefixContains(p, ip("10.42.0.255"))).toBe(false);
    expect(prefixContains(pfx("0.0.0.0/0"), ip("255.255.255.255"))).toBe(true);
    expect(prefixContains(pfx("255.255.255.255/32"), ip("255.255.255.255"))).toBe(true);
    expect(prefixContains(pfx("255.255.255.255/32"), ip("255.255.255.254"))).toBe(false);
    expect(prefixContains(pfx("128.0.0.0/1"), ip("128.0.0.0"))).toBe(true);
    expect(prefixContains(pfx("128.0.0.0/1"), ip("127.255.255.255"))).toBe(false);
  });

  test.each([
    ["10.42.0.0/24", "10.42.0.0/24", true],
    ["10.42.0.0/16", "10.42.7.0/24", true],
    ["10.42.7.0/24", "10.42.0.0/16", true],
    ["10.42.0.0/24", "10.42.1.0/24", false],
    ["10.42.0.0/25", "10.42.0.128/25", false],
    ["10.42.0.0/24", "10.42.0.255/32", true],
    ["0.0.0.0/0", "203.0.113.0/24", true],
    ["0.0.0.0/0", "0.0.0.0/0", true],
    ["128.0.0.0/1", "0.0.0.0/1", false],
    ["255.255.255.255/32", "255.255.255.254/32", false],
  ])("%s vs %s → %p (symmetric)", (a, b, want) => {
    expect(prefixesOverlap(pfx(a), pfx(b))).toBe(want);
    expect(prefixesOverlap(pfx(b), pfx(a))).toBe(want);
  });

  test("random: overlap iff one contains the other's network address", () => {
    for (let i = 0; i < 3000; i++) {
      const a = prefixOf(randomBytes(4).readUInt32BE() & 0xff0fffff, randomBytes(1)[0]! % 33);
      const b = prefixOf(randomBytes(4).readUInt32BE() & 0xff0fffff, randomBytes(1)[0]! % 33);
      expect(prefixesOverlap(a, b)).toBe(prefixContains(a, b.addr) || prefixContains(b, a.addr));
    }
  });
});

describe("RouteTable", () => {
  const t = new RouteTable([
    { addr: ip("10.0.0.0"), len: 8, peer: 8 },
    { addr: ip("10.42.0.0"), len: 16, peer: 16 },
    { addr: ip("10.42.1.0"), len: 24, peer: 24 },
    { addr: ip("10.42.1.7"), len: 32, peer: 32 },
    { addr: ip("10.42.2.0"), len: 24, peer: 2 },
  ]);

  test("/32 beats /24 beats /16 beats /8; miss is -1", () => {
    expect(t.size).toBe(5);
    expect(t.lookup(ip("10.42.1.7"))).toBe(32);
    expect(t.lookup(ip("10.42.1.8"))).toBe(24);
    expect(t.lookup(ip("10.42.1.6"))).toBe(24);
    expect(t.lookup(ip("10.42.2.200"))).toBe(2);
    expect(t.lookup(ip("10.42.3.1"))).toBe(16);
    expect(t.lookup(ip("10.43.0.1"))).toBe(8);
    expect(t.lookup(ip("11.0.0.1"))).toBe(-1);
    expect(t.lookup(ip("0.0.0.0"))).toBe(-1);
    expect(t.lookup(ip("255.255.255.255"))).toBe(-1);
  });

  test("empty table misses everything; a default route catches everything", () => {
    const e = new RouteTable();
    expect(e.size).toBe(0);
    expect(e.lookup(ip("10.42.1.7"))).toBe(-1);
    const d = new RouteTable([{ addr: 0, len: 0, peer: 0 }, { addr: ip("10.42.0.0"), len: 16, peer: 1 }]);
    expect(d.lookup(ip("255.255.255.255"))).toBe(0);
    expect(d.lookup(ip("10.42.255.255"))).toBe(1);
  });

  test("high addresses (sign bit set) work", () => {
    const h = new RouteTable([{ addr: ip("192.168.0.0"), len: 16, peer: 7 }, { addr: ip("255.255.255.255"), len: 32, peer: 9 }]);
    expect(h.lookup(ip("192.168.44.1"))).toBe(7);
    expect(h.lookup(0xffffffff)).toBe(9);
    expect(h.lookup(ip("192.169.0.0"))).toBe(-1);
  });

  test("host bits in an entry are ignored; replace() swaps the whole table (and forgets the last answer)", () => {
    const r = new RouteTable([{ addr: ip("10.42.1.99"), len: 24, peer: 3 }]);
    expect(r.lookup(ip("10.42.1.1"))).toBe(3);
    r.replace([{ addr: ip("10.42.9.0"), len: 24, peer: 4 }]);
    expect(r.size).toBe(1);
    expect(r.lookup(ip("10.42.1.1"))).toBe(-1);
    expect(r.lookup(ip("10.42.9.1"))).toBe(4);
    r.replace([]);
    expect(r.lookup(ip("10.42.9.1"))).toBe(-1);
  });

  test("randomized: agrees with a naive linear longest-prefix match", () => {
    const naive = (entries: RouteEntry[], a: number): number => {
      let best = -1;
      let bestLen = -1;
      for (const e of entries) {
        // later entries for the same prefix replace earlier ones, as in RouteTable.replace
        if (prefixContains({ addr: (e.addr & maskOf(e.len)) >>> 0, len: e.len }, a) && e.len >= bestLen) {
          best = e.peer;
          bestLen = e.len;
        }
      }
      return best;
    };
    const table = new RouteTable();
    for (let round = 0; round < 60; round++) {
      // clustered addresses so that prefixes nest and overlap often
      const base = randomBytes(4).readUInt32BE() & 0xffff0000;
      const entries: RouteEntry[] = [];
      const count = 1 + (round % 40);
      for (let i = 0; i < count; i++) {
        const len = [0, 8, 12, 16, 20, 23, 24, 25, 28, 30, 31, 32][randomBytes(1)[0]! % 12]!;
        const addr = (base | (randomBytes(2).readUInt16BE() & 0x0fff)) >>> 0;
        entries.push({ addr: i % 7 === 0 ? addr : (addr & maskOf(len)) >>> 0, len, peer: i });
      }
      table.replace(entries);
      for (let q = 0; q < 400; q++) {
        const a = q % 2 ? (base | (randomBytes(2).readUInt16BE() & 0x0fff)) >>> 0 : randomBytes(4).readUInt32BE();
        const got = table.lookup(a);
        const want = naive(entries, a);
        if (table.lookup(a) !== got) throw new Error(`lookup ${formatIPv4(a)} again (the last-address cache) gave another answer`);
        if (got !== want) throw new Error(`lookup ${formatIPv4(a)}: ${got} != naive ${want} in ${JSON.stringify(entries.map((e) => `${formatIPv4(e.addr)}/${e.len}→${e.peer}`))}`);
      }
    }
  });

  test("lookup of non-u32 numbers does not throw", () => {
    for (const v of [-1, 2 ** 32, 1.5, NaN, -0]) expect(() => t.lookup(v)).not.toThrow();
    expect(t.lookup(-1)).toBe(t.lookup(0xffffffff)); // same 32 bits
  });
});
