// Property tests: random and mutated bytes fed to every decoder and consumer of untrusted input never
// throw and come back null/false/0; every single-byte change to a real handshake message is caught.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { createLibcryptoAead } from "../../src/crypto/aead-libcrypto.ts";
import { createNobleAead } from "../../src/crypto/aead-noble.ts";
import { tai64nCompare } from "../../src/crypto/tai64n.ts";
import { generateX25519KeyPair, x25519, x25519Noble } from "../../src/crypto/x25519.ts";
import { CookieChecker, CookieJar } from "../../src/wg/cookie.ts";
import { checkMac1, Handshaker, mac1Key } from "../../src/wg/handshake.ts";
import {
  decodeCookieReply,
  decodeInitiation,
  decodeResponse,
  messageType,
  senderIndex,
  transportCounter,
  transportReceiver,
} from "../../src/wg/messages.ts";
import { ReplayWindow } from "../../src/wg/replay.ts";

const rand = (n: number) => new Uint8Array(randomBytes(n));
const psk = rand(32);
const a = generateX25519KeyPair();
const b = generateX25519KeyPair();
const ha = new Handshaker(a);
const hb = new Handshaker(b);
const aeads = [createNobleAead(), createLibcryptoAead()].filter((x) => x !== null);

/** Random bytes, sometimes dressed with a valid type and zero reserved bytes and a real size. */
function randomMessage(): Uint8Array {
  const sizes = [0, 1, 4, 16, 31, 32, 63, 64, 65, 91, 92, 93, 147, 148, 149, 200, 1500];
  const m = rand(sizes[Math.floor(Math.random() * sizes.length)]!);
  if (m.length >= 4 && Math.random() < 0.7) {
    m[0] = 1 + Math.floor(Math.random() * 4);
    m[1] = m[2] = m[3] = 0;
  }
  return m;
}

function mutate(m: Uint8Array): Uint8Array {
  const r = Math.random();
  if (r < 0.2) return m.slice(0, Math.floor(Math.random() * m.length));
  if (r < 0.3) return Uint8Array.from([...m, ...rand(1 + Math.floor(Math.random() * 8))]);
  const c = m.slice();
  const flips = 1 + Math.floor(Math.random() * 4);
  for (let i = 0; i < flips; i++) c[Math.floor(Math.random() * c.length)]! ^= 1 << Math.floor(Math.random() * 8);
  return c;
}

function feedEverything(m: Uint8Array, pending: ReturnType<Handshaker["createInitiation"]>["pending"]): void {
  const checker = new CookieChecker(b.publicKey);
  const jar = new CookieJar(b.publicKey);
  const window = new ReplayWindow();
  expect(() => {
    messageType(m, m.length);
    messageType(m, m.length + 5);
    decodeInitiation(m);
    decodeResponse(m);
    decodeCookieReply(m);
    senderIndex(m);
    const r = transportReceiver(m, 0, m.length);
    if (r >= 0) window.accept(transportCounter(m, 0));
    checkMac1(m, mac1Key(b.publicKey));
    checker.checkMac1(m);
    checker.checkMac2(m, rand(6), 0);
    jar.consumeReply(m, pending.mac1, 0);
    tai64nCompare(m, rand(12));
    x25519(a.privateKey, m);
    x25519Noble(a.privateKey, m);
    for (const aead of aeads) {
      aead.open(rand(32), 0, m, 0, m.length);
      aead.openAd(rand(32), 0, m, rand(32));
    }
  }).not.toThrow();
  // Nothing random authenticates.
  expect(hb.consumeInitiation(m)).toBeNull();
  expect(ha.consumeResponse(pending, psk, m)).toBeNull();
}

describe("random bytes", () => {
  test("2,000 random messages: no throw, no acceptance", () => {
    const { pending } = ha.createInitiation(b.publicKey, psk, 1);
    for (let i = 0; i < 2000; i++) feedEverything(randomMessage(), pending);
  });
});

describe("mutated real messages", () => {
  test("1,000 mutations of real initiations, responses and cookie replies: no throw", () => {
    const { message, pending } = ha.createInitiation(b.publicKey, psk, 1);
    const got = hb.consumeInitiation(message)!;
    const resp = hb.createResponse(got.state, psk, 2).message;
    const reply = new CookieChecker(b.publicKey).createReply(message, rand(6), 1, 0);
    for (let i = 0; i < 1000; i++) {
      const base = [message, resp, reply][i % 3]!;
      const m = mutate(base);
      expect(() => feedEverything(m, pending)).not.toThrow();
    }
  });

  test("every single-byte change to an initiation is caught (mac1, or authentication)", () => {
    const { message } = ha.createInitiation(b.publicKey, psk, 1);
    const key = mac1Key(b.publicKey);
    for (let i = 0; i < 148; i++) {
      const m = message.slice();
      m[i]! ^= 0x01;
      if (i < 132) expect(checkMac1(m, key)).toBe(false); // mac1 covers everything before it
      if (i < 4 || (i >= 8 && i < 116)) expect(hb.consumeInitiation(m)).toBeNull(); // the AEADs cover these
    }
  });

  test("every single-byte change to a response is caught (mac1, or authentication)", () => {
    const { message, pending } = ha.createInitiation(b.publicKey, psk, 1);
    const got = hb.consumeInitiation(message)!;
    const resp = hb.createResponse(got.state, psk, 2).message;
    const key = mac1Key(a.publicKey);
    for (let i = 0; i < 92; i++) {
      const m = resp.slice();
      m[i]! ^= 0x80;
      if (i < 76) expect(checkMac1(m, key)).toBe(false);
      if (i < 4 || (i >= 8 && i < 60)) expect(ha.consumeResponse(pending, psk, m)).toBeNull();
    }
    expect(ha.consumeResponse(pending, psk, resp)).not.toBeNull();
  });
});
