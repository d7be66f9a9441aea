// Cookies under load: the responder's CookieChecker and the initiator's CookieJar, end to end with
// real handshake messages, plus the key derivations pinned against the Python reference (hashlib).

import { describe, expect, test } from "bun:test";
import { generateX25519KeyPair, x25519PublicKey } from "../../src/crypto/x25519.ts";
import { COOKIE_SECRET_MAX_AGE, REKEY_TIMEOUT } from "../../src/wg/constants.ts";
import { cookieKey, CookieChecker, CookieJar } from "../../src/wg/cookie.ts";
import { Handshaker, mac1Key, writeMacs } from "../../src/wg/handshake.ts";
import { decodeCookieReply, INITIATION, messageType } from "../../src/wg/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const psk = new Uint8Array(32);
const SRC = new Uint8Array([198, 18, 0, 1, 0x10, 0x04]);
const OTHER_SRC = new Uint8Array([198, 18, 0, 2, 0x10, 0x04]);

test("key derivations: HASH(\"mac1----\" ‖ pub) and HASH(\"cookie--\" ‖ pub)", () => {
  const pub = x25519PublicKey(Uint8Array.from({ length: 32 }, (_, i) => 33 + i));
  expect(hex(mac1Key(pub))).toBe("5c5cbbfd0c782a2539047315dc2b629f825570bc6a8686d245dd060463b85e1b");
  expect(hex(cookieKey(pub))).toBe("17728e626505a9a7054fda9a980a5209fb72714de5d9e476848ec7214cc83713");
});

describe("cookie round trip", () => {
  const initiatorKeys = generateX25519KeyPair();
  const responderKeys = generateX25519KeyPair();
  const initiator = new Handshaker(initiatorKeys);
  const responder = new Handshaker(responderKeys);
  const t0 = 1_000_000;

  function setup() {
    return { checker: new CookieChecker(responderKeys.publicKey), jar: new CookieJar(responderKeys.publicKey) };
  }

  test("mac1 passes, mac2 fails without a cookie, the reply's cookie makes mac2 pass", () => {
    const { checker, jar } = setup();
    const first = initiator.createInitiation(responderKeys.publicKey, psk, 42, jar.cookie(t0));
    expect(checker.checkMac1(first.message)).toBe(true);
    expect(checker.checkMac2(first.message, SRC, t0)).toBe(false);

    const reply = checker.createReply(first.message, SRC, 42, t0);
    expect(reply.length).toBe(64);
    expect(messageType(reply, 64)).toBe(3);
    expect(decodeCookieReply(reply)!.receiver).toBe(42);

    expect(jar.consumeReply(reply, first.pending.mac1, t0 + 10)).toBe(true);
    const cookie = jar.cookie(t0 + 20);
    expect(cookie).not.toBeNull();
    const second = initiator.createInitiation(responderKeys.publicKey, psk, 43, cookie);
    expect(checker.checkMac1(second.message)).toBe(true);
    expect(checker.checkMac2(second.message, SRC, t0 + 30)).toBe(true);
    // The cookie is bound to the source address.
    expect(checker.checkMac2(second.message, OTHER_SRC, t0 + 30)).toBe(false);
    // And the handshake itself still completes with mac2 present.
    expect(responder.consumeInitiation(second.message)).not.toBeNull();
  });

  test("a cookie also works on a response (message 2)", () => {
    const { checker, jar } = setup();
    const init = initiator.createInitiation(responderKeys.publicKey, psk, 1);
    const reply = checker.createReply(init.message, SRC, 1, t0);
    expect(jar.consumeReply(reply, init.pending.mac1, t0)).toBe(true);
    // Pretend the responder-side roles are swapped: a 92-byte message carrying mac2 from the jar.
    const got = new Handshaker(responderKeys).consumeInitiation(initiator.createInitiation(responderKeys.publicKey, psk, 2).message)!;
    const resp = new Handshaker(responderKeys).createResponse(got.state, psk, 3, jar.cookie(t0)).message;
    expect(checker.checkMac2(resp, SRC, t0)).toBe(true);
  });

  test("a reply opens only with the mac1 it answered and only untampered", () => {
    const { checker, jar } = setup();
    const init = initiator.createInitiation(responderKeys.publicKey, psk, 1);
    const reply = checker.createReply(init.message, SRC, 1, t0);
    const wrongMac1 = init.pending.mac1.slice();
    wrongMac1[0]! ^= 1;
    expect(jar.consumeReply(reply, wrongMac1, t0)).toBe(false);
    for (const at of [8, 31, 32, 63]) {
      const bad = reply.slice();
      bad[at]! ^= 0x40;
      expect(jar.consumeReply(bad, init.pending.mac1, t0)).toBe(false);
    }
    expect(jar.cookie(t0)).toBeNull();
    // A jar for another responder cannot open it either.
    expect(new CookieJar(initiatorKeys.publicKey).consumeReply(reply, init.pending.mac1, t0)).toBe(false);
    expect(jar.consumeReply(reply, init.message.slice(INITIATION.mac1, INITIATION.mac2), t0)).toBe(true);
  });

  test("the responder's secret rotates after 2 minutes: old cookies stop working", () => {
    const { checker, jar } = setup();
    const init = initiator.createInitiation(responderKeys.publicKey, psk, 1);
    jar.consumeReply(checker.createReply(init.message, SRC, 1, t0), init.pending.mac1, t0);
    const withCookie = initiator.createInitiation(responderKeys.publicKey, psk, 2, jar.cookie(t0)).message;
    expect(checker.checkMac2(withCookie, SRC, t0 + COOKIE_SECRET_MAX_AGE - 1)).toBe(true);
    expect(checker.checkMac2(withCookie, SRC, t0 + COOKIE_SECRET_MAX_AGE)).toBe(false);
  });

  test("the jar stops offering a cookie before the responder forgets it", () => {
    const { checker, jar } = setup();
    const init = initiator.createInitiation(responderKeys.publicKey, psk, 1);
    jar.consumeReply(checker.createReply(init.message, SRC, 1, t0), init.pending.mac1, t0);
    expect(jar.cookie(t0 + COOKIE_SECRET_MAX_AGE - REKEY_TIMEOUT - 1)).not.toBeNull();
    expect(jar.cookie(t0 + COOKIE_SECRET_MAX_AGE - REKEY_TIMEOUT)).toBeNull();
  });

  test("macs of non-handshake sizes are refused without throwing", () => {
    const { checker } = setup();
    for (const n of [0, 1, 31, 32, 64, 147, 149]) {
      expect(checker.checkMac1(new Uint8Array(n))).toBe(false);
      expect(checker.checkMac2(new Uint8Array(n), SRC, t0)).toBe(false);
    }
  });
});

test("writeMacs with the jar's cookie: checkMac2 passes for that source only, and mac2 covers mac1", () => {
  const ik = generateX25519KeyPair();
  const rk = generateX25519KeyPair();
  const checker = new CookieChecker(rk.publicKey);
  const jar = new CookieJar(rk.publicKey);
  const hs = new Handshaker(ik);
  const t = 5_000_000;
  const first = hs.createInitiation(rk.publicKey, psk, 9);
  expect(jar.consumeReply(checker.createReply(first.message, SRC, 9, t), first.pending.mac1, t)).toBe(true);
  // Re-mac the same initiation by hand, as a retransmission under load does.
  const msg = first.message.slice();
  writeMacs(msg, mac1Key(rk.publicKey), jar.cookie(t));
  expect(checker.checkMac1(msg)).toBe(true);
  expect(checker.checkMac2(msg, SRC, t)).toBe(true);
  expect(checker.checkMac2(msg, OTHER_SRC, t)).toBe(false);
  expect(checker.checkMac2(msg, SRC.subarray(0, 4), t)).toBe(false); // same IP, no port
  const badMac1 = msg.slice();
  badMac1[INITIATION.mac1]! ^= 1;
  expect(checker.checkMac1(badMac1)).toBe(false);
  expect(checker.checkMac2(badMac1, SRC, t)).toBe(false);
  // Another responder's checker knows neither the mac1 key nor the cookie secret.
  const stranger = new CookieChecker(generateX25519KeyPair().publicKey);
  expect(stranger.checkMac1(msg)).toBe(false);
  expect(stranger.checkMac2(msg, SRC, t)).toBe(false);
});
