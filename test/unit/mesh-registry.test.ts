// The bootstrap endpoint registry: reflexive first, deduplicated, expiry, refresh, the entry bound.

import { describe, expect, test } from "bun:test";
import { EndpointRegistry } from "../../src/mesh/registry.ts";

const key = (n: number) => new Uint8Array(32).fill(n);
const ep = (ip: number, port: number) => ({ ip, port });
const REFL = ep(0xc6120001, 40001); // 198.18.0.1:40001 (NAT mapping)
const LAN = ep(0xc6130a02, 4100); // 198.19.10.2:4100

describe("EndpointRegistry", () => {
  test("lookup: reflexive first, then locals, duplicates removed", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [LAN, REFL, LAN, ep(0xc6130a03, 4100)], 0);
    expect(r.lookup(key(1), 10)).toEqual([REFL, LAN, ep(0xc6130a03, 4100)]);
    expect(r.lookup(key(2), 10)).toEqual([]);
    expect(r.size).toBe(1);
  });

  test("invalid endpoints are skipped; a registration without a valid reflexive endpoint is ignored", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [ep(0, 4100), ep(LAN.ip, 0), LAN], 0);
    expect(r.lookup(key(1), 0)).toEqual([REFL, LAN]);
    r.register(key(2), ep(0, 0), [LAN], 0);
    expect(r.lookup(key(2), 0)).toEqual([]);
  });

  test("at most 8 locals are kept", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    const locals = Array.from({ length: 12 }, (_, i) => ep(0xc6130000 + i + 1, 4100));
    r.register(key(1), REFL, locals, 0);
    expect(r.lookup(key(1), 0)).toEqual([REFL, ...locals.slice(0, 8)]);
  });

  test("entries expire ttlMs after the last registration; re-registering refreshes and replaces", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [LAN], 0);
    r.register(key(2), REFL, [], 0);
    expect(r.lookup(key(1), 1000)).toEqual([REFL, LAN]);
    r.register(key(1), ep(0xc6120001, 40002), [], 900); // the NAT mapping changed
    expect(r.lookup(key(1), 1500)).toEqual([ep(0xc6120001, 40002)]);
    expect(r.lookup(key(2), 1001)).toEqual([]); // expired, and dropped on the way
    expect(r.size).toBe(1);
    r.expire(1901);
    expect(r.size).toBe(0);
  });

  test("the bound holds: expired entries go first, then the least recently registered", () => {
    const r = new EndpointRegistry({ ttlMs: 1000, maxEntries: 3 });
    r.register(key(1), REFL, [], 0);
    r.register(key(2), REFL, [], 500);
    r.register(key(3), REFL, [], 600);
    r.register(key(1), REFL, [], 700); // refresh: key 2 is now the oldest
    r.register(key(4), REFL, [], 800);
    expect(r.size).toBe(3);
    expect(r.lookup(key(2), 800)).toEqual([]);
    expect(r.lookup(key(1), 800)).toEqual([REFL]);
    // Everything but key 4 expired by now: room without evicting live entries.
    r.register(key(5), REFL, [], 1750);
    expect(r.lookup(key(4), 1750)).toEqual([REFL]);
    expect(r.lookup(key(5), 1750)).toEqual([REFL]);
    for (let i = 10; i < 1000; i++) r.register(key(i & 0xff).map((b, j) => (j === 0 ? i >> 8 : b)), REFL, [], 2000);
    expect(r.size).toBe(3);
  });

  test("lookup returns copies: callers cannot change what is stored", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), { ...REFL }, [], 0);
    r.lookup(key(1), 0)[0]!.port = 1;
    expect(r.lookup(key(1), 0)).toEqual([REFL]);
  });
});

describe("EndpointRegistry: edges and a random model check", () => {
  test("reflexive first even when the peer also lists it among its locals, signed or not", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [LAN, { ip: REFL.ip | 0, port: REFL.port }, REFL, { ip: LAN.ip | 0, port: LAN.port }], 0);
    expect(r.lookup(key(1), 0)).toEqual([REFL, LAN]);
    r.register(key(2), { ip: REFL.ip | 0, port: REFL.port }, Array(8).fill(REFL), 0);
    expect(r.lookup(key(2), 0)).toEqual([REFL]); // stored unsigned, duplicates gone
  });

  test("same port on another address, or another port on the same address, is not a duplicate", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [ep(REFL.ip, REFL.port + 1), ep(REFL.ip + 1, REFL.port)], 0);
    expect(r.lookup(key(1), 0)).toEqual([REFL, ep(REFL.ip, REFL.port + 1), ep(REFL.ip + 1, REFL.port)]);
  });

  test("TTL boundary: alive at exactly ttlMs after registering, gone 1 ms later", () => {
    const r = new EndpointRegistry({ ttlMs: 90_000 });
    r.register(key(1), REFL, [], 1_000);
    r.expire(91_000);
    expect(r.size).toBe(1);
    expect(r.lookup(key(1), 91_000)).toEqual([REFL]);
    expect(r.lookup(key(1), 91_001)).toEqual([]);
    expect(r.size).toBe(0);
  });

  test("keys are compared by value, not by array identity", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(7), REFL, [], 0);
    expect(r.lookup(Uint8Array.from(key(7)), 0)).toEqual([REFL]);
    r.register(Uint8Array.from(key(7)), ep(0xc6120009, 9), [], 1);
    expect(r.size).toBe(1);
    expect(r.lookup(key(7), 1)).toEqual([ep(0xc6120009, 9)]);
  });

  test("maxEntries = 1: every new peer replaces the previous one; the default bound is 4096", () => {
    const one = new EndpointRegistry({ ttlMs: 1000, maxEntries: 1 });
    one.register(key(1), REFL, [], 0);
    one.register(key(2), LAN, [], 0);
    expect(one.size).toBe(1);
    expect(one.lookup(key(1), 0)).toEqual([]);
    expect(one.lookup(key(2), 0)).toEqual([LAN]);
    const zero = new EndpointRegistry({ ttlMs: 1000, maxEntries: 0 }); // clamped to 1
    zero.register(key(1), REFL, [], 0);
    expect(zero.lookup(key(1), 0)).toEqual([REFL]);

    const big = new EndpointRegistry({ ttlMs: 1_000_000 });
    const k = (i: number) => Uint8Array.from({ length: 32 }, (_, j) => (j < 4 ? (i >>> (8 * j)) & 0xff : 0));
    for (let i = 0; i < 5000; i++) big.register(k(i), REFL, [], i);
    expect(big.size).toBe(4096);
    expect(big.lookup(k(903), 5000)).toEqual([]); // the 904 oldest went
    expect(big.lookup(k(904), 5000)).toEqual([REFL]);
    expect(big.lookup(k(4999), 5000)).toEqual([REFL]);
  });

  test("random operations against a simple model: bound, order, dedup and expiry agree (20k ops)", () => {
    let x = 0x2545f491;
    const next = () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>>= 0);
    };
    const TTL = 500;
    const MAX = 5;
    const r = new EndpointRegistry({ ttlMs: TTL, maxEntries: MAX });
    // Model: ordered list of [id, reflexive, locals, at] by last registration.
    let model: { id: number; refl: { ip: number; port: number }; locals: { ip: number; port: number }[]; at: number }[] = [];
    const rndEp = () => ep(next() % 4 === 0 ? 0 : 0xc6120000 + (next() % 4), next() % 5 === 0 ? 0 : 4100 + (next() % 3));
    let now = 0;
    for (let i = 0; i < 20_000; i++) {
      now += next() % 40;
      const id = next() % 9;
      const op = next() % 4;
      if (op < 2) {
        const refl = rndEp();
        const locals = Array.from({ length: next() % 12 }, rndEp);
        r.register(key(id), refl, locals, now);
        if (refl.ip !== 0 && refl.port !== 0) {
          model = model.filter((e) => e.id !== id);
          if (model.length >= MAX) model = model.filter((e) => now - e.at <= TTL);
          while (model.length >= MAX) model.shift();
          model.push({ id, refl, locals: locals.filter((l) => l.ip !== 0 && l.port !== 0).slice(0, 8), at: now });
        }
      } else if (op === 2) {
        const got = r.lookup(key(id), now);
        const e = model.find((m) => m.id === id);
        let want: { ip: number; port: number }[] = [];
        if (e && now - e.at <= TTL) {
          want = [e.refl];
          for (const l of e.locals) if (!want.some((w) => w.ip === l.ip && w.port === l.port)) want.push(l);
        }
        if (e && now - e.at > TTL) model = model.filter((m) => m !== e);
        expect(got).toEqual(want);
        expect(got.length).toBeLessThanOrEqual(9);
      } else {
        r.expire(now);
        model = model.filter((e) => now - e.at <= TTL);
      }
      expect(r.size).toBe(model.length);
      expect(r.size).toBeLessThanOrEqual(MAX);
    }
  });
});

describe("EndpointRegistry.follow: the reflexive endpoint follows a moved NAT mapping", () => {
  test("a registered peer seen from a new source: lookups name the new one at once, locals and lifetime kept", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    r.register(key(1), REFL, [LAN], 0);
    const moved = ep(REFL.ip, 51630);
    expect(r.follow(key(1), moved)).toBe(true);
    expect(r.lookup(key(1), 10)).toEqual([moved, LAN]);
    expect(r.follow(key(1), moved)).toBe(false); // same endpoint: nothing to do
    // The lifetime still runs from the registration, not from the packet that moved it.
    expect(r.lookup(key(1), 1001)).toEqual([]);
  });

  test("an unregistered peer, or an unusable source, changes nothing", () => {
    const r = new EndpointRegistry({ ttlMs: 1000 });
    expect(r.follow(key(2), REFL)).toBe(false);
    expect(r.size).toBe(0);
    r.register(key(1), REFL, [], 0);
    expect(r.follow(key(1), ep(0, 4100))).toBe(false);
    expect(r.follow(key(1), ep(REFL.ip, 0))).toBe(false);
    expect(r.lookup(key(1), 0)).toEqual([REFL]);
  });
});
