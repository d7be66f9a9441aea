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
