// WireGuard cookies (whitepaper §5.4.7): under load a responder answers handshake messages with a
// cookie reply instead of doing Diffie-Hellman; the sender proves it owns its source address by
// putting mac2 = MAC(cookie, message) on its next attempt.
//
// Cookie reply (64 bytes): type 3 | reserved 3 | receiver 4 | nonce 24 | encrypted cookie 16+16

import { randomBytes } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hash, mac } from "../crypto/blake2s.ts";
import { COOKIE_REPLY_SIZE, COOKIE_SECRET_MAX_AGE, LABEL_COOKIE, REKEY_TIMEOUT } from "./constants.ts";
import { checkMac1, equal, mac1Key } from "./handshake.ts";

const enc = new TextEncoder();

/** Responder side: checks macs and makes cookie replies. */
export class CookieChecker {
  private secret = new Uint8Array(randomBytes(32));
  private secretAt = 0;
  private readonly myMac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;

  constructor(localPublic: Uint8Array) {
    this.myMac1Key = mac1Key(localPublic);
    this.cookieKey = hash(enc.encode(LABEL_COOKIE), localPublic);
  }

  checkMac1(msg: Uint8Array): boolean {
    return checkMac1(msg, this.myMac1Key);
  }

  private cookieFor(srcAddr: Uint8Array, now: number): Uint8Array {
    if (now - this.secretAt >= COOKIE_SECRET_MAX_AGE) {
      this.secret = new Uint8Array(randomBytes(32));
      this.secretAt = now;
    }
    return mac(this.secret, srcAddr);
  }

  checkMac2(msg: Uint8Array, srcAddr: Uint8Array, now: number): boolean {
    const m2 = msg.length - 16;
    const cookie = this.cookieFor(srcAddr, now);
    return equal(mac(cookie, msg.subarray(0, m2)), msg.subarray(m2));
  }

  /** A cookie reply to `msg` (whose sender index is `receiver`), bound to the source address. */
  createReply(msg: Uint8Array, srcAddr: Uint8Array, receiver: number, now: number): Uint8Array {
    const m1 = msg.length - 32;
    const reply = new Uint8Array(COOKIE_REPLY_SIZE);
    reply[0] = 3;
    new DataView(reply.buffer).setUint32(4, receiver >>> 0, true);
    const nonce = new Uint8Array(randomBytes(24));
    reply.set(nonce, 8);
    const sealed = xchacha20poly1305(this.cookieKey, nonce, msg.slice(m1, m1 + 16)).encrypt(this.cookieFor(srcAddr, now));
    reply.set(sealed, 32);
    return reply;
  }
}

/** Initiator side: remembers the cookie a responder gave us, for mac2. */
export class CookieJar {
  private cookieValue: Uint8Array | null = null;
  private receivedAt = 0;
  private readonly cookieKey: Uint8Array;

  constructor(peerPublic: Uint8Array) {
    this.cookieKey = hash(enc.encode(LABEL_COOKIE), peerPublic);
  }

  /** Decrypt a cookie reply to a message whose mac1 was `sentMac1`; false when it does not open. */
  consumeReply(reply: Uint8Array, sentMac1: Uint8Array, now: number): boolean {
    if (reply.length !== COOKIE_REPLY_SIZE || reply[0] !== 3) return false;
    try {
      const cookie = xchacha20poly1305(this.cookieKey, reply.slice(8, 32), sentMac1).decrypt(reply.slice(32, 64));
      if (cookie.length !== 16) return false;
      this.cookieValue = cookie;
      this.receivedAt = now;
      return true;
    } catch {
      return false;
    }
  }

  /** The cookie for mac2 while it is fresh (it expires with the responder's secret). */
  cookie(now: number): Uint8Array | null {
    if (!this.cookieValue || now - this.receivedAt >= COOKIE_SECRET_MAX_AGE - REKEY_TIMEOUT) return null;
    return this.cookieValue;
  }
}
