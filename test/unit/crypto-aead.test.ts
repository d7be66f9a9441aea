// Transport AEAD: both backends agree byte for byte, open each other's output, reject every flipped
// bit, pass RFC 8439 §2.8.2, and work in place on views of ArrayBuffers and SharedArrayBuffers.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { ptr } from "bun:ffi";
import { heapStats } from "bun:jsc";
import { aeadBackendInfo, createAead, writeNonce, type AeadWithNonce } from "../../src/crypto/aead.ts";
import { createLibcryptoAead } from "../../src/crypto/aead-libcrypto.ts";
import { createNobleAead } from "../../src/crypto/aead-noble.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const rand = (n: number) => new Uint8Array(randomBytes(n));

const lib = createLibcryptoAead();
const noble = createNobleAead();
const backends: [string, AeadWithNonce][] = [["noble", noble]];
if (lib) backends.push(["libcrypto", lib]);

test("libcrypto is available on this host (the data plane's fast path)", () => {
  expect(lib).not.toBeNull();
  const info = aeadBackendInfo();
  expect(info.libcrypto).toMatch(/^OpenSSL 3\./);
  expect(createAead().name).toBe(info.active);
  expect(createAead("noble").name).toBe("noble");
});

test("WireGuard nonce: 4 zero bytes then the counter, little endian", () => {
  const n = new Uint8Array(12).fill(0xee);
  writeNonce(n, 0x0102030405);
  expect(hex(n)).toBe("000000000504030201000000");
  writeNonce(n, 2 ** 53 - 1);
  expect(hex(n)).toBe("00000000ffffffffffff1f00");
});

// RFC 8439 §2.8.2.
const RFC_KEY = bytes("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
const RFC_NONCE = bytes("070000004041424344454647");
const RFC_AD = bytes("50515253c0c1c2c3c4c5c6c7");
const RFC_PT = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const RFC_CT = `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
  1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4
  def08e4b7a9de576d26586cec64b6116`;
const RFC_TAG = "1ae10b594f09e26a7e902ecbd0600691";

describe.each(backends)("%s backend", (_name, aead) => {
  test("RFC 8439 §2.8.2 seal and open", () => {
    const sealed = aead.sealWithNonce(RFC_KEY, RFC_NONCE, RFC_PT, RFC_AD);
    expect(hex(sealed)).toBe(RFC_CT.replace(/\s+/g, "") + RFC_TAG);
    expect(hex(aead.openWithNonce(RFC_KEY, RFC_NONCE, sealed, RFC_AD)!)).toBe(hex(RFC_PT));
    const bad = sealed.slice();
    bad[0]! ^= 1;
    expect(aead.openWithNonce(RFC_KEY, RFC_NONCE, bad, RFC_AD)).toBeNull();
  });

  test("WireGuard-form known answer (Python cryptography reference)", () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const pt = new TextEncoder().encode("hello wireguard");
    expect(hex(aead.sealAd(key, 0x0102030405, pt, new Uint8Array(0)))).toBe("59e666bcbcebc4a5a1786b5cad70c3f9b63810f052208ab04027b4684382b9");
    const buf = new Uint8Array(64);
    buf.set(pt, 7);
    aead.seal(key, 0x0102030405, buf, 7, pt.length);
    expect(hex(buf.subarray(7, 7 + pt.length + 16))).toBe("59e666bcbcebc4a5a1786b5cad70c3f9b63810f052208ab04027b4684382b9");
  });

  test("empty plaintext (a keepalive) seals to a bare tag and opens", () => {
    const key = rand(32);
    const buf = new Uint8Array(16);
    aead.seal(key, 9, buf, 0, 0);
    expect(hex(buf)).not.toBe("00".repeat(16));
    expect(aead.open(key, 9, buf, 0, 16)).toBe(true);
    expect(aead.open(key, 10, buf, 0, 16)).toBe(false);
  });

  test("open refuses lengths below the tag and wrong key sizes without throwing", () => {
    const buf = new Uint8Array(64);
    expect(aead.open(rand(32), 0, buf, 0, 15)).toBe(false);
    expect(aead.open(rand(16), 0, buf, 0, 32)).toBe(false);
    expect(aead.openAd(rand(32), 0, new Uint8Array(5), new Uint8Array(0))).toBeNull();
  });

  test("handshake form with associated data round-trips and binds the ad", () => {
    const key = rand(32);
    const ad = rand(32);
    const ct = aead.sealAd(key, 0, rand(32), ad);
    expect(ct.length).toBe(48);
    expect(aead.openAd(key, 0, ct, ad)).not.toBeNull();
    const ad2 = ad.slice();
    ad2[31]! ^= 0x80;
    expect(aead.openAd(key, 0, ct, ad2)).toBeNull();
  });
});

describe.skipIf(!lib)("libcrypto and noble agree", () => {
  test("random keys, counters, lengths 0..1500 and offsets: identical output, cross-open", () => {
    const offsets = [0, 1, 3, 16, 61];
    for (let round = 0; round < 300; round++) {
      const key = rand(32);
      const counter = round < 5 ? [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1][round]! : Math.floor(Math.random() * 2 ** 40);
      const len = round === 0 ? 0 : round === 1 ? 1500 : Math.floor(Math.random() * 1501);
      const off = offsets[round % offsets.length]!;
      const pt = rand(len);
      const a = new Uint8Array(off + len + 16 + 5);
      a.set(pt, off);
      const b = a.slice();
      lib!.seal(key, counter, a, off, len);
      noble.seal(key, counter, b, off, len);
      expect(hex(a)).toBe(hex(b));
      // Bytes around the message are untouched.
      expect(hex(a.subarray(off + len + 16))).toBe("0000000000");
      // Cross-open: noble opens libcrypto's output and vice versa.
      expect(noble.open(key, counter, a, off, len + 16)).toBe(true);
      expect(lib!.open(key, counter, b, off, len + 16)).toBe(true);
      expect(hex(a.subarray(off, off + len))).toBe(hex(pt));
      expect(hex(b.subarray(off, off + len))).toBe(hex(pt));
    }
  });

  test("any single flipped bit (ciphertext or tag), key or counter is rejected by both", () => {
    const key = rand(32);
    const len = 40;
    const sealed = new Uint8Array(len + 16);
    sealed.set(rand(len));
    lib!.seal(key, 77, sealed, 0, len);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      for (const aead of [lib!, noble]) {
        const c = sealed.slice();
        c[bit >> 3]! ^= 1 << (bit & 7);
        expect(aead.open(key, 77, c, 0, c.length)).toBe(false);
      }
    }
    for (const aead of [lib!, noble]) {
      const k2 = key.slice();
      k2[5]! ^= 4;
      expect(aead.open(k2, 77, sealed.slice(), 0, sealed.length)).toBe(false);
      expect(aead.open(key, 78, sealed.slice(), 0, sealed.length)).toBe(false);
      expect(aead.open(key, 77, sealed.slice(), 0, sealed.length)).toBe(true);
    }
  });

  test("buffers and keys may live in a SharedArrayBuffer (the data plane's session tables)", () => {
    const sab = new SharedArrayBuffer(4096);
    expect(typeof ptr(new Uint8Array(sab))).toBe("number");
    const keys = new Uint8Array(sab, 0, 64);
    keys.set(rand(64));
    const key = keys.subarray(32, 64);
    const pkt = new Uint8Array(sab, 128, 2048);
    const pt = rand(1400);
    pkt.set(pt, 16);
    const ref = new Uint8Array(2048);
    ref.set(pt, 16);
    lib!.seal(key, 5, pkt, 16, 1400);
    noble.seal(key.slice(), 5, ref, 16, 1400);
    expect(hex(pkt)).toBe(hex(ref));
    // The key changes in place (a rekey writes the table): the next packet uses the new key.
    keys.set(rand(32), 32);
    const again = new Uint8Array(2048);
    again.set(pt, 16);
    lib!.seal(key, 5, again, 16, 1400);
    expect(hex(again)).not.toBe(hex(ref));
    expect(noble.open(key.slice(), 5, again, 16, 1416)).toBe(true);
    expect(hex(again.subarray(16, 1416))).toBe(hex(pt));
  });

  test("small typed arrays whose storage the engine may move still work", () => {
    // A fresh 32-byte key array each time: its pointer must be taken after `.buffer` pins it.
    for (let i = 0; i < 50; i++) {
      const key = rand(32);
      const buf = new Uint8Array(48);
      buf.set(rand(32));
      const ref = buf.slice();
      lib!.seal(key, i, buf, 0, 32);
      noble.seal(key, i, ref, 0, 32);
      expect(hex(buf)).toBe(hex(ref));
    }
  });

  test("seal refuses a range outside the buffer instead of writing past it", () => {
    expect(() => lib!.seal(rand(32), 0, new Uint8Array(20), 0, 8)).toThrow(RangeError);
    expect(() => lib!.seal(rand(16), 0, new Uint8Array(64), 0, 8)).toThrow(RangeError);
    expect(lib!.open(rand(32), 0, new Uint8Array(20), 10, 20)).toBe(false);
  });

  test("the per-packet path allocates no heap objects", () => {
    const key = new Uint8Array(new SharedArrayBuffer(32)).fill(3);
    const buf = new Uint8Array(new SharedArrayBuffer(2048));
    for (let i = 0; i < 1000; i++) lib!.seal(key, i, buf, 16, 1400); // warm-up: pointer cache, JIT
    Bun.gc(true);
    const before = heapStats().objectCount;
    for (let i = 0; i < 20_000; i++) {
      lib!.seal(key, i, buf, 16, 1400);
      if (!lib!.open(key, i, buf, 16, 1416)) throw new Error("open failed");
    }
    // 40,000 calls; a single allocation per call would show as tens of thousands of objects.
    expect(heapStats().objectCount - before).toBeLessThan(100);
  });
});

// Through the public factory, as the data plane and the handshake get them.
describe.each(["libcrypto", "noble"] as const)("createAead(%j)", (which) => {
  const aead = createAead(which) as AeadWithNonce;
  const WG_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
  const WG_PT = new TextEncoder().encode("hello wireguard");
  const WG_SEALED = "59e666bcbcebc4a5a1786b5cad70c3f9b63810f052208ab04027b4684382b9";

  test("is the backend asked for", () => {
    expect(aead.name).toBe(which);
  });

  test("RFC 8439 §2.8.2 with key, nonce, plaintext and ad as views at offsets in one SharedArrayBuffer", () => {
    for (const shift of [0, 1, 3, 7, 16, 33]) {
      const sab = new SharedArrayBuffer(1024);
      const at = (o: number, src: Uint8Array) => {
        const v = new Uint8Array(sab, o, src.length);
        v.set(src);
        return v;
      };
      const key = at(shift, RFC_KEY);
      const nonce = at(64 + shift, RFC_NONCE);
      const ad = at(96 + shift, RFC_AD);
      const pt = at(128 + shift, RFC_PT);
      const sealed = aead.sealWithNonce(key, nonce, pt, ad);
      expect(hex(sealed)).toBe(RFC_CT.replace(/\s+/g, "") + RFC_TAG);
      // Inputs are not modified.
      expect(hex(pt)).toBe(hex(RFC_PT));
      const ct = at(512 + shift, sealed);
      expect(hex(aead.openWithNonce(key, nonce, ct, ad)!)).toBe(hex(RFC_PT));
      ad[0]! ^= 1;
      expect(aead.openWithNonce(key, nonce, ct, ad)).toBeNull();
    }
  });

  test("in place at several offsets, on ArrayBuffers and SharedArrayBuffers (known answer)", () => {
    for (const shared of [false, true]) {
      for (const off of [0, 1, 2, 3, 7, 13, 16, 64, 1000]) {
        const mem = shared ? new SharedArrayBuffer(2048) : new ArrayBuffer(2048);
        // The key is a view inside the same memory, at an odd offset.
        const key = new Uint8Array(mem, 1501, 32);
        key.set(WG_KEY);
        const buf = new Uint8Array(mem, 0, 1400);
        buf.set(WG_PT, off);
        aead.seal(key, 0x0102030405, buf, off, WG_PT.length);
        expect(hex(buf.subarray(off, off + WG_PT.length + 16))).toBe(WG_SEALED);
        expect(buf.subarray(0, off).every((x) => x === 0)).toBe(true);
        expect(buf.subarray(off + WG_PT.length + 16).every((x) => x === 0)).toBe(true);
        expect(aead.open(key, 0x0102030405, buf, off, WG_PT.length + 16)).toBe(true);
        expect(hex(buf.subarray(off, off + WG_PT.length))).toBe(hex(WG_PT));
        // A view that starts inside the buffer: offsets are relative to the view.
        const view = new Uint8Array(mem, off, 64);
        view.fill(0);
        view.set(WG_PT, 5);
        aead.seal(key, 0x0102030405, view, 5, WG_PT.length);
        expect(hex(view.subarray(5, 5 + WG_PT.length + 16))).toBe(WG_SEALED);
      }
    }
  });

  test("sealAd/openAd: empty and non-empty plaintext and ad; the ad, key and counter are bound", () => {
    for (const [plen, alen] of [[0, 0], [0, 32], [32, 0], [32, 32], [12, 32], [100, 7]] as const) {
      const key = rand(32);
      const pt = rand(plen);
      const ad = rand(alen);
      const ct = aead.sealAd(key, 3, pt, ad);
      expect(ct.length).toBe(plen + 16);
      expect(hex(aead.openAd(key, 3, ct, ad)!)).toBe(hex(pt));
      expect(aead.openAd(key, 4, ct, ad)).toBeNull();
      expect(aead.openAd(rand(32), 3, ct, ad)).toBeNull();
      expect(aead.openAd(key, 3, ct, new Uint8Array([...ad, 0]))).toBeNull();
      if (alen > 0) expect(aead.openAd(key, 3, ct, ad.subarray(1))).toBeNull();
      const bad = ct.slice();
      bad[Math.floor(Math.random() * bad.length)]! ^= 1 << Math.floor(Math.random() * 8);
      expect(aead.openAd(key, 3, bad, ad)).toBeNull();
    }
  });
});

describe.skipIf(!lib)("sealAd/openAd: libcrypto and noble agree", () => {
  test("random keys, counters (incl. > 2^32), plaintexts and ad up to 128 bytes", () => {
    for (let i = 0; i < 300; i++) {
      const key = rand(32);
      const counter = i < 4 ? [0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1][i]! : Math.floor(Math.random() * 2 ** 48);
      const pt = rand(Math.floor(Math.random() * 200));
      const ad = rand(Math.floor(Math.random() * 129));
      const a = lib!.sealAd(key, counter, pt, ad);
      const b = noble.sealAd(key, counter, pt, ad);
      expect(hex(a)).toBe(hex(b));
      expect(hex(noble.openAd(key, counter, a, ad)!)).toBe(hex(pt));
      expect(hex(lib!.openAd(key, counter, b, ad)!)).toBe(hex(pt));
    }
  });

  test("the handshake form equals the transport form when ad is empty", () => {
    const key = rand(32);
    const pt = rand(77);
    const buf = new Uint8Array(77 + 16);
    buf.set(pt);
    lib!.seal(key, 2 ** 40 + 5, buf, 0, 77);
    expect(hex(noble.sealAd(key, 2 ** 40 + 5, pt, new Uint8Array(0)))).toBe(hex(buf));
  });

  test("libcrypto refuses ad over its 128-byte scratch area (handshake ad is 32 bytes)", () => {
    expect(() => lib!.sealAd(rand(32), 0, rand(4), rand(129))).toThrow(RangeError);
    expect(lib!.openAd(rand(32), 0, rand(40), rand(129))).toBeNull();
  });
});

// AES-256-GCM: the suite two vine hosts may negotiate (src/wg/handshake.ts).
describe("AES-256-GCM suite", () => {
  // The GCM specification's Test Case 16 (McGrew & Viega): 256-bit key, 96-bit IV, with AAD.
  const GCM_KEY = bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const GCM_IV = bytes("cafebabefacedbaddecaf888");
  const GCM_PT = bytes("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  const GCM_AD = bytes("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const GCM_OUT =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662" +
    "76fc6ece0f4e1768cddf8853bb2d551b";
  const gcmLib = createLibcryptoAead("aes-256-gcm");
  const gcmNoble = createNobleAead("aes-256-gcm");
  const gcmBackends: [string, AeadWithNonce][] = [["noble", gcmNoble]];
  if (gcmLib) gcmBackends.push(["libcrypto", gcmLib]);

  test.each(gcmBackends)("%s: GCM Test Case 16 seals and opens", (_n, aead) => {
    expect(aead.suite).toBe("aes-256-gcm");
    expect(hex(aead.sealWithNonce(GCM_KEY, GCM_IV, GCM_PT, GCM_AD))).toBe(GCM_OUT);
    expect(hex(aead.openWithNonce(GCM_KEY, GCM_IV, bytes(GCM_OUT), GCM_AD)!)).toBe(hex(GCM_PT));
    const bad = bytes(GCM_OUT);
    bad[5]! ^= 1;
    expect(aead.openWithNonce(GCM_KEY, GCM_IV, bad, GCM_AD)).toBeNull();
  });

  test.skipIf(!gcmLib)("libcrypto and noble agree on random keys, counters, lengths and offsets; cross-open", () => {
    for (let round = 0; round < 150; round++) {
      const key = rand(32);
      const counter = Math.floor(Math.random() * 2 ** 40);
      const len = round === 0 ? 0 : Math.floor(Math.random() * 1501);
      const off = [0, 1, 16, 61][round % 4]!;
      const a = new Uint8Array(off + len + 16 + 3);
      a.set(rand(len), off);
      const pt = hex(a.subarray(off, off + len));
      const b = a.slice();
      gcmLib!.seal(key, counter, a, off, len);
      gcmNoble.seal(key, counter, b, off, len);
      expect(hex(a)).toBe(hex(b));
      expect(gcmNoble.open(key, counter, a, off, len + 16)).toBe(true);
      expect(gcmLib!.open(key, counter, b, off, len + 16)).toBe(true);
      expect(hex(a.subarray(off, off + len))).toBe(pt);
      expect(hex(b.subarray(off, off + len))).toBe(pt);
    }
  });

  test.skipIf(!gcmLib)("a suite's ciphertext never opens under the other suite with the same key", () => {
    const key = rand(32);
    const buf = new Uint8Array(200);
    buf.set(rand(100), 16);
    gcmLib!.seal(key, 7, buf, 16, 100);
    expect(lib!.open(key, 7, buf.slice(), 16, 116)).toBe(false);
    expect(gcmLib!.open(key, 7, buf, 16, 116)).toBe(true);
  });
});

describe.skipIf(!lib)("libcrypto key contexts (one cipher context per key, re-keyed when the key changes)", () => {
  test.each(["chacha20-poly1305", "aes-256-gcm"] as const)("%s: a key rewritten in place (a reused session slot) is used, not the old one", (suite) => {
    const fast = createLibcryptoAead(suite)!;
    const ref = createNobleAead(suite);
    const table = new Uint8Array(new SharedArrayBuffer(64));
    const key = table.subarray(32, 64); // the same address every time, as in the data plane
    for (let gen = 0; gen < 5; gen++) {
      key.set(rand(32));
      const a = new Uint8Array(300);
      a.set(rand(200), 16);
      const b = a.slice();
      fast.seal(key, gen, a, 16, 200);
      ref.seal(key.slice(), gen, b, 16, 200);
      expect(hex(a)).toBe(hex(b));
      expect(fast.open(key, gen, a, 16, 216)).toBe(true);
    }
  });

  test("more keys than the context cache holds still seal correctly (the cache is emptied, not overrun)", () => {
    const fast = createLibcryptoAead("aes-256-gcm")!;
    const keys = Array.from({ length: 1100 }, () => rand(32));
    const buf = new Uint8Array(64);
    for (const k of keys) {
      buf.fill(1);
      fast.seal(k, 1, buf, 0, 32);
      expect(fast.open(k, 1, buf, 0, 48)).toBe(true);
    }
  });

  test("the AES-GCM per-packet path allocates no heap objects", () => {
    const fast = createLibcryptoAead("aes-256-gcm")!;
    const key = new Uint8Array(new SharedArrayBuffer(32)).fill(5);
    const buf = new Uint8Array(new SharedArrayBuffer(2048));
    for (let i = 0; i < 1000; i++) fast.seal(key, i, buf, 16, 1400);
    Bun.gc(true);
    const before = heapStats().objectCount;
    for (let i = 0; i < 20_000; i++) {
      fast.seal(key, i, buf, 16, 1400);
      if (!fast.open(key, i, buf, 16, 1416)) throw new Error("open failed");
      if (i % 4 === 0) fast.prime();
    }
    expect(heapStats().objectCount - before).toBeLessThan(100);
  });
});

describe.skipIf(!lib)("libcrypto nonces set ahead by prime() (the worker calls it before it sleeps)", () => {
  const suites = ["chacha20-poly1305", "aes-256-gcm"] as const;
  /** Seal `counter` with both backends on fresh random plaintext; the outputs must match, then open. */
  const check = (fast: AeadWithNonce, ref: AeadWithNonce, key: Uint8Array, counter: number, len: number) => {
    const a = new Uint8Array(len + 64);
    a.set(rand(len), 16);
    const b = a.slice();
    fast.seal(key, counter, a, 16, len);
    ref.seal(key.slice(), counter, b, 16, len);
    expect(hex(a)).toBe(hex(b));
    return a;
  };

  test.each(suites)("%s: in-order, skipped, repeated and backward counters around prime() seal as noble does", (suite) => {
    const fast = createLibcryptoAead(suite)!;
    const ref = createNobleAead(suite);
    const key = new Uint8Array(new SharedArrayBuffer(32));
    key.set(rand(32));
    // prime() after each packet prepares counter+1; the next packet uses it, skips past it, or goes back.
    const counters = [0, 1, 2, 5, 6, 6 + 2 ** 32, 7, 3, 4, 4, 2 ** 40, 2 ** 40 + 1];
    for (const [i, c] of counters.entries()) {
      check(fast, ref, key, c, 1 + ((i * 97) % 1400));
      if (i % 3 !== 2) fast.prime();
      if (i % 5 === 4) fast.prime(); // twice in a row: nothing listed the second time
    }
  });

  test.each(suites)("%s: opens on prepared and unprepared counters; a forged packet in between changes nothing", (suite) => {
    const fast = createLibcryptoAead(suite)!;
    const sender = createNobleAead(suite);
    const key = new Uint8Array(new SharedArrayBuffer(32));
    key.set(rand(32));
    const packet = (counter: number) => {
      const a = new Uint8Array(200);
      a.set(rand(100), 16);
      const plain = a.slice(16, 116);
      sender.seal(key.slice(), counter, a, 16, 100);
      return { a, plain };
    };
    for (const c of [10, 11, 12, 14, 13, 15, 15, 16]) {
      const { a, plain } = packet(c);
      if (c === 15) {
        const forged = a.slice();
        forged[20]! ^= 1;
        expect(fast.open(key, c, forged, 16, 116)).toBe(false);
        fast.prime();
      }
      expect(fast.open(key, c, a, 16, 116)).toBe(true);
      expect(hex(a.subarray(16, 116))).toBe(hex(plain));
      fast.prime();
    }
  });

  test.each(suites)("%s: a key rewritten in place after prime() is used for the prepared counter", (suite) => {
    const fast = createLibcryptoAead(suite)!;
    const ref = createNobleAead(suite);
    const table = new Uint8Array(new SharedArrayBuffer(64));
    const key = table.subarray(32, 64);
    for (let gen = 0; gen < 4; gen++) {
      key.set(rand(32));
      check(fast, ref, key, 100, 64);
      fast.prime(); // prepares 101 under this key; the next generation's 101 is under another
      key.set(rand(32));
      check(fast, ref, key, 101, 64);
      fast.prime();
    }
  });

  test("the context cache emptied while contexts wait for prime() frees nothing still listed", () => {
    const fast = createLibcryptoAead("aes-256-gcm")!;
    const ref = createNobleAead("aes-256-gcm");
    const kept = rand(32);
    const buf = new Uint8Array(64);
    for (let round = 0; round < 3; round++) {
      // 1,100 seal keys overflow the cache (1,024) mid-round; the open context of `kept` stays listed.
      const sealed = check(fast, ref, kept, round * 2, 32);
      expect(fast.open(kept, round * 2, sealed, 16, 48)).toBe(true);
      for (let k = 0; k < 1100; k++) fast.seal(rand(32), 1, buf, 0, 32);
      fast.prime();
      const again = check(fast, ref, kept, round * 2 + 1, 32);
      expect(fast.open(kept, round * 2 + 1, again, 16, 48)).toBe(true);
      fast.prime();
    }
  });
});
